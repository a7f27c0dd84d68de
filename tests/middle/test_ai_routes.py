"""The AI routes through FastAPI's TestClient over in-memory stores: validation, 503 with no
image service, moderation refusals, idempotency (also under ten concurrent requests),
budgets and refunds, tenancy. Over HTTP on the real environment: tests/e2e/test_ai.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from mediaplane.api.app import create_app
from mediaplane.api.context import ApiContext
from mediaplane.api.settings import ApiSettings
from mediaplane.core import names
from mediaplane.core.ai import BUILTIN_VOICE, ImageService
from mediaplane.core.resources import GenerationStatus, MediaAsset, MediaAssetStatus
from mediaplane.core.states import AssetPhase, VariantState
from mediaplane.core.tasks import ImageProviderKind
from mediaplane.devcluster.tokens import mint_dev_token
from tests.support.memkube import MemoryAssets, MemoryObjects, MemoryTenants

SECRET = "s" * 40
SERVICE = ImageService(kind=ImageProviderKind.OPENAI, url="http://127.0.0.1:9",
                       models=["gpt-image-1", "dall-e-3"],
                       sizes=["1024x1024", "1536x1024", "1024x1536"])


@dataclass
class Ai:
    client: TestClient
    assets: MemoryAssets
    tenants: MemoryTenants
    catalog: Path

    def post(self, path: str, body: dict[str, Any], tenant: str = "acme",
             user: str = "alice") -> Any:
        token = mint_dev_token(SECRET, tenant, user, 600)
        return self.client.post(f"/api/v1/media/ai/{path}", json=body,
                                headers={"Authorization": f"Bearer {token}"})

    def image(self, prompt: str = "a red kite over the sea", **extra: Any) -> Any:
        tenant = extra.pop("tenant", "acme")
        return self.post("generate-image", {"prompt": prompt, "size": "medium", **extra},
                         tenant=tenant)

    def speech(self, text: str = "Hello there.", **extra: Any) -> Any:
        tenant = extra.pop("tenant", "acme")
        return self.post("generate-audio", {"text": text, "voice": BUILTIN_VOICE,
                                            "language": "en-US", **extra}, tenant=tenant)

    def get(self, path: str, tenant: str = "acme") -> Any:
        token = mint_dev_token(SECRET, tenant, "alice", 600)
        return self.client.get(path, headers={"Authorization": f"Bearer {token}"})

    @property
    def context(self) -> ApiContext:
        context: ApiContext = self.client.app.state.context  # type: ignore[attr-defined]
        return context


def configure(path: Path, service: ImageService | None) -> None:
    body = {"image": service.model_dump(mode="json", by_alias=True, exclude_none=True)} \
        if service else {}
    path.write_text(json.dumps(body))


@pytest.fixture
def ai(tmp_path: Path) -> Iterator[Ai]:
    assets, objects = MemoryAssets(), MemoryObjects()
    tenants = MemoryTenants({"acme": 10_000, "other": 10_000})
    catalog = tmp_path / "catalog.json"
    configure(catalog, SERVICE)
    settings = ApiSettings(jwt_secret=SecretStr(SECRET), stream_signing_key=SecretStr("k" * 40),
                           ai_catalog_file=catalog, ai_image_budget="5/hour",
                           ai_speech_budget="5/hour")

    async def context(settings: ApiSettings) -> ApiContext:
        return ApiContext.with_settings(settings, assets=assets, tenants=tenants,
                                        storage=objects)

    with TestClient(create_app(settings, context)) as client:
        yield Ai(client, assets, tenants, catalog)


def error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_an_image_request_makes_a_generating_ai_asset(ai: Ai) -> None:
    response = ai.image(style="watercolor", aspectRatio="16:9")
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert (data["source"], data["kind"], data["mime"]) == ("ai", "image", "image/png")
    assert data["sha256"] is None
    assert data["sizeBytes"] is None
    assert data["generation"] == {"type": "image", "model": "gpt-image-1", "state": "pending",
                                  "reason": None, "message": None, "providerSeconds": None}
    assert response.headers["X-AI-Budget-Remaining"] == "4"
    stored = ai.assets.items[("acme", names.name_from_asset_id(data["id"]))]
    generation = stored["spec"]["generation"]
    assert generation["image"] == {"size": "medium", "aspectRatio": "16:9", "width": 1024,
                                   "height": 576, "style": "watercolor"}
    assert generation["prompt"] == "a red kite over the sea"
    assert stored["spec"]["source"]["origin"] == "ai"
    assert stored["metadata"]["finalizers"] == [names.FINALIZER]
    assert stored["metadata"]["annotations"][names.AI_BUDGET_WINDOW_ANNOTATION].startswith(
        "image:3600:")


def test_a_speech_request_makes_an_audio_asset_in_the_asked_format(ai: Ai) -> None:
    response = ai.speech(format="ogg")
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert (data["kind"], data["mime"], data["source"]) == ("audio", "audio/ogg", "ai")
    assert data["generation"]["model"] == f"piper:{BUILTIN_VOICE}"
    default = ai.speech("Another sentence.").json()["data"]
    assert default["mime"] == "audio/mpeg", "mp3 unless asked otherwise"


@pytest.mark.parametrize(("body", "fragment"), [
    ({"size": "gigantic"}, "unknown size"),
    ({"aspectRatio": "5:1"}, "unknown aspect ratio"),
    ({"style": "cubism"}, "unknown style"),
    ({"model": "sdxl"}, "unknown model"),
    ({"prompt": "   "}, "empty"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": "x" * 2001}, "at most 2000"),
])
def test_image_validation_errors(ai: Ai, body: dict[str, Any], fragment: str) -> None:
    request = {"prompt": "a kite", "size": "medium", **body}
    response = ai.post("generate-image", request)
    assert error(response) == (422, "validation.invalid")
    assert fragment in response.json()["error"]["message"]
    assert ai.assets.items == {}


@pytest.mark.parametrize(("body", "fragment"), [
    ({"voice": "nobody"}, "unknown voice"),
    ({"language": "fr-FR"}, "speaks en-US, not fr-FR"),
    ({"format": "flac"}, "format"),
    ({"text": "\u200b  \t"}, "empty"),
    ({"text": "y" * 5001}, "at most 5000"),
])
def test_speech_validation_errors(ai: Ai, body: dict[str, Any], fragment: str) -> None:
    request = {"text": "hello", "voice": BUILTIN_VOICE, "language": "en-US", **body}
    response = ai.post("generate-audio", request)
    assert error(response) == (422, "validation.invalid")
    assert fragment in response.text
    assert ai.assets.items == {}


def test_no_image_service_is_a_503_before_anything_is_made_or_charged(ai: Ai) -> None:
    configure(ai.catalog, None)
    response = ai.image()
    assert error(response) == (503, "ai.unavailable")
    assert ai.assets.items == {}
    capabilities = ai.get("/api/v1/media/ai/capabilities").json()["data"]
    assert capabilities["image"]["available"] is False
    assert capabilities["budgets"]["image"]["remaining"] == 5, "nothing was charged"
    assert ai.speech().status_code == 202, "speech needs no configuration"


def test_a_refused_prompt_names_the_category_and_never_the_prompt(ai: Ai) -> None:
    prompt = "a n u d e woman on a beach"
    response = ai.image(prompt)
    assert error(response) == (422, "ai.refused.safety")
    body = response.json()["error"]
    assert body["details"] == [{"category": "sexual"}]
    assert "beach" not in response.text
    assert "n u d e" not in response.text
    assert ai.assets.items == {}
    assert len(ai.tenants.events) == 1
    namespace, reason, message = ai.tenants.events[0]
    assert (namespace, reason) == ("acme", "PromptRefused")
    assert "sexual" in message
    assert "beach" not in message
    assert error(ai.speech("I want to kill myself")) == (422, "ai.refused.safety")
    capabilities = ai.get("/api/v1/media/ai/capabilities").json()["data"]
    assert capabilities["budgets"]["image"]["remaining"] == 5
    assert capabilities["budgets"]["speech"]["remaining"] == 5


def test_a_tenant_adds_its_own_refused_terms(ai: Ai) -> None:
    ai.tenants.annotations["acme"] = {names.AI_BLOCKED_TERMS_ANNOTATION: "globex,rival brand"}
    response = ai.image("a billboard for G L O B E X")
    assert error(response) == (422, "ai.refused.safety")
    assert response.json()["error"]["details"] == [{"category": "tenant"}]
    assert ai.image("a billboard for G L O B E X", tenant="other").status_code == 202


def test_a_repeat_answers_200_with_the_same_asset_at_no_cost(ai: Ai) -> None:
    first = ai.image("A red kite  over the sea")
    assert first.status_code == 202
    again = ai.image("a red kite over the sea".replace("a red", "A red") + "  ")
    assert again.status_code == 200
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    assert again.headers["X-AI-Budget-Remaining"] == "4"
    other_size = ai.image("A red kite over the sea", size="small")
    assert other_size.status_code == 202, "other parameters, another asset"
    other_model = ai.image("A red kite over the sea", model="dall-e-3")
    assert other_model.json()["data"]["id"] != first.json()["data"]["id"]
    other_tenant = ai.image("A red kite over the sea", tenant="other")
    assert other_tenant.status_code == 202
    assert other_tenant.json()["data"]["id"] != first.json()["data"]["id"]
    assert len(ai.assets.items) == 4


def test_ten_concurrent_identical_requests_make_one_asset_and_take_one_unit(ai: Ai) -> None:
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda _: ai.speech("Same words, ten times."), range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 9 + [202]
    assert len({r.json()["data"]["id"] for r in responses}) == 1
    assert len(ai.assets.items) == 1
    capabilities = ai.get("/api/v1/media/ai/capabilities").json()["data"]
    assert capabilities["budgets"]["speech"]["remaining"] == 4


def test_an_exhausted_budget_is_a_429_with_its_renewal(ai: Ai) -> None:
    ai.tenants.annotations["acme"] = {names.AI_IMAGE_BUDGET_ANNOTATION: "2 per hour"}
    assert ai.image("one").status_code == 202
    second = ai.image("two")
    assert second.headers["X-AI-Budget-Remaining"] == "0"
    refused = ai.image("three")
    assert error(refused) == (429, "ai.refused.budget")
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert refused.headers["X-AI-Budget-Limit"] == "2"
    assert refused.headers["X-AI-Budget-Remaining"] == "0"
    assert "renewsAt" in refused.json()["error"]["details"][0]
    assert len(ai.assets.items) == 2, "a refused request makes nothing"
    assert ai.image("one").status_code == 200, "a repeat is still answered, for free"
    assert ai.speech().status_code == 202, "speech has a budget of its own"
    assert ai.image("three", tenant="other").status_code == 202


def test_a_failed_generation_gives_its_unit_back_once(ai: Ai) -> None:
    data = ai.image("a lighthouse").json()["data"]
    name = names.name_from_asset_id(data["id"])
    ai.assets.set_status("acme", name, MediaAssetStatus(
        phase=AssetPhase.FAILED, generation=GenerationStatus(
            state=VariantState.FAILED, reason="ProviderRefused", message="400: no")))
    failed = MediaAsset.model_validate(ai.assets.items[("acme", name)])

    async def refund_twice() -> tuple[bool, bool]:
        return await ai.context.ai.refund(failed), await ai.context.ai.refund(failed)

    first, second = ai.client.portal.call(refund_twice)  # type: ignore[union-attr]
    assert (first, second) == (True, False)
    capabilities = ai.get("/api/v1/media/ai/capabilities").json()["data"]
    assert capabilities["budgets"]["image"]["remaining"] == 5
    shown = ai.get(f"/api/v1/media/{data['id']}").json()["data"]
    assert shown["status"] == "failed"
    assert shown["generation"]["reason"] == "ProviderRefused"


def test_capabilities_list_what_is_on_offer(ai: Ai) -> None:
    data = ai.get("/api/v1/media/ai/capabilities").json()["data"]
    assert data["image"]["available"] is True
    assert data["image"]["provider"] == "openai"
    assert data["image"]["models"] == ["gpt-image-1", "dall-e-3"]
    assert data["image"]["sizes"] == {"small": 512, "medium": 1024, "large": 1536}
    assert "16:9" in data["image"]["aspectRatios"]
    assert data["speech"]["voices"][0]["id"] == BUILTIN_VOICE
    assert data["speech"]["formats"] == ["mp3", "wav", "ogg", "m4a"]
    assert data["budgets"]["image"]["limit"] == 5
    assert ai.client.get("/api/v1/media/ai/capabilities").status_code == 401


def test_another_tenants_generated_asset_is_not_found(ai: Ai) -> None:
    data = ai.image().json()["data"]
    assert error(ai.get(f"/api/v1/media/{data['id']}", tenant="other")) == \
        (404, "media.not_found")
    assert ai.get(f"/api/v1/media/{data['id']}").status_code == 200


def test_the_openapi_document_lists_the_ai_codes(ai: Ai) -> None:
    paths = ai.client.get("/openapi.json").json()["paths"]
    image = paths["/api/v1/media/ai/generate-image"]["post"]["responses"]
    assert "ai.refused.safety" in image["422"]["description"]
    assert "ai.refused.budget" in image["429"]["description"]
    assert "ai.unavailable" in image["503"]["description"]
    assert "202" in image
    assert "200" in image
    asyncio.get_event_loop_policy()  # the module imports asyncio for the portal call's type
