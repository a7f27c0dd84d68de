"""Image services behind one interface: an OpenAI-compatible images API and the
AUTOMATIC1111/Forge `sdapi` API.

Each provider turns (prompt, width, height) into one request and reads one picture (base64)
out of the answer. The calling loop is shared: a timeout per call, retries with back-off on
what may pass (timeouts, dropped connections, 5xx, 429 with its Retry-After), and a
permanent refusal (any other 4xx, e.g. a content policy) reported at once with the
service's own reason, so the Job is not retried for nothing.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from mediaplane.core.ai import nearest_size
from mediaplane.core.tasks import PROVIDER_KEY_ENV, ImageJob, ImageProviderKind
from mediaplane.worker.errors import EXIT_PROVIDER, EXIT_REFUSED, InfraError

log = logging.getLogger(__name__)

# The Secret's key reaches the Job as this variable (secretKeyRef), never in the task.
API_KEY_ENV = PROVIDER_KEY_ENV
MAX_IMAGE_BYTES = 64 * 1024 * 1024
MAX_REASON = 300
MAX_RETRY_AFTER = 30.0


@dataclass(frozen=True)
class Call:
    path: str
    body: dict[str, Any]


class ImageApi(Protocol):
    def request(self, prompt: str, job: ImageJob) -> Call: ...

    def picture(self, answer: Any) -> str:
        """The base64 picture in a successful answer."""
        ...


class OpenAiImages:
    """`POST /v1/images/generations` with `response_format: b64_json` (OpenAI, LocalAI, and
    other compatible servers). Sizes are snapped to the service's list."""

    def request(self, prompt: str, job: ImageJob) -> Call:
        provider = job.provider
        width, height = nearest_size(job.width, job.height, list(provider.sizes))
        body: dict[str, Any] = {"model": provider.model, "prompt": prompt, "n": 1,
                                "size": f"{width}x{height}"}
        # gpt-image models always answer base64 and refuse the parameter.
        if not provider.model.startswith("gpt-image"):
            body["response_format"] = "b64_json"
        return Call("/v1/images/generations", body)

    def picture(self, answer: Any) -> str:
        data = answer.get("data") if isinstance(answer, dict) else None
        if not data or not isinstance(data[0], dict) or not data[0].get("b64_json"):
            raise InfraError("ProviderInvalidAnswer", "no data[0].b64_json in the answer",
                             exit_code=EXIT_PROVIDER)
        return str(data[0]["b64_json"])


class Automatic1111:
    """`POST /sdapi/v1/txt2img` (AUTOMATIC1111 and Forge): any multiple of 8 is a size."""

    def request(self, prompt: str, job: ImageJob) -> Call:
        provider = job.provider
        body: dict[str, Any] = {
            "prompt": prompt, "width": job.width, "height": job.height,
            "batch_size": 1, "n_iter": 1,
            "override_settings": {"sd_model_checkpoint": provider.model},
            "override_settings_restore_afterwards": True,
            "send_images": True, "save_images": False,
        }
        if provider.steps:
            body["steps"] = provider.steps
        if provider.negative_prompt:
            body["negative_prompt"] = provider.negative_prompt
        return Call("/sdapi/v1/txt2img", body)

    def picture(self, answer: Any) -> str:
        images = answer.get("images") if isinstance(answer, dict) else None
        if not images or not isinstance(images[0], str):
            raise InfraError("ProviderInvalidAnswer", "no images[0] in the answer",
                             exit_code=EXIT_PROVIDER)
        return images[0]


APIS: dict[ImageProviderKind, ImageApi] = {
    ImageProviderKind.OPENAI: OpenAiImages(),
    ImageProviderKind.AUTOMATIC1111: Automatic1111(),
}


def _reason(response: httpx.Response) -> str:
    """The service's own words: OpenAI's error.message, A1111's detail/error, else text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:MAX_REASON]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:MAX_REASON]
        for key in ("detail", "error", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])[:MAX_REASON]
    return response.text[:MAX_REASON]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return min(MAX_RETRY_AFTER, float(value)) if value.isdigit() else None


def decode_picture(encoded: str) -> bytes:
    if "," in encoded[:64] and encoded.startswith("data:"):
        encoded = encoded.split(",", 1)[1]  # a data: URL
    if len(encoded) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise InfraError("ProviderInvalidAnswer", "the picture is too large",
                         exit_code=EXIT_PROVIDER)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InfraError("ProviderInvalidAnswer", f"the picture is not base64: {exc}",
                         exit_code=EXIT_PROVIDER) from exc


def generate_image(prompt: str, job: ImageJob, *, sleep: Any = time.sleep) -> bytes:
    """The picture's bytes, or InfraError: ProviderRefused (permanent, exit 6) or
    ProviderTimeout / ProviderUnavailable (the Job tries again, exit 7)."""
    provider = job.provider
    api = APIS[provider.kind]
    call = api.request(prompt, job)
    url = provider.url.rstrip("/") + call.path
    headers = {"Accept": "application/json"}
    key = os.environ.get(API_KEY_ENV)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    timeout = httpx.Timeout(provider.timeout_seconds, connect=min(10.0, provider.timeout_seconds))
    failure = InfraError("ProviderUnavailable", "no attempt made", exit_code=EXIT_PROVIDER)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for attempt in range(provider.attempts):
            wait = None
            try:
                response = client.post(url, json=call.body, headers=headers)
            except httpx.TimeoutException:
                failure = InfraError("ProviderTimeout", f"no answer within "
                                     f"{provider.timeout_seconds:g} s", exit_code=EXIT_PROVIDER)
            except httpx.TransportError as exc:
                failure = InfraError("ProviderUnavailable", str(exc) or type(exc).__name__,
                                     exit_code=EXIT_PROVIDER)
            else:
                if response.status_code == 200:
                    try:
                        answer = response.json()
                    except ValueError as exc:
                        raise InfraError("ProviderInvalidAnswer", "the answer is not JSON",
                                         exit_code=EXIT_PROVIDER) from exc
                    return decode_picture(api.picture(answer))
                reason = _reason(response)
                if response.status_code < 500 and response.status_code not in (408, 429):
                    raise InfraError("ProviderRefused", f"{response.status_code}: {reason}",
                                     exit_code=EXIT_REFUSED)
                failure = InfraError("ProviderUnavailable", f"{response.status_code}: {reason}",
                                     exit_code=EXIT_PROVIDER)
                wait = _retry_after(response)
            log.warning("image service attempt %d: %s", attempt + 1, failure)
            if attempt + 1 < provider.attempts:
                sleep(wait if wait is not None else
                      min(8.0, 0.5 * 2**attempt) * (0.5 + random.random()))  # noqa: S311
    raise failure
