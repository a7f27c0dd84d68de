"""Publishing outputs through the presigned POST policy, the worker's only write access.

The policy accepts any key under the variant's prefix and any Content-Type, so the worker
names each object and sets the type the players need. Manifests go last: a reader must
never see a playlist or MPD naming a segment that is not there yet.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx

from mediaplane.worker.errors import EXIT_UPLOAD, InfraError

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from mediaplane.core.tasks import PresignedPost

log = logging.getLogger(__name__)

ATTEMPTS = 5
POOL = 4
TIMEOUT = httpx.Timeout(120.0, connect=10.0)

_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".webp": "image/webp",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".vtt": "text/vtt",
    ".json": "application/json",
}
_MANIFESTS = (".m3u8", ".mpd")


@functools.cache
def _trusted_context() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CAs, or SSL_CERT_FILE / SSL_CERT_DIR), made once
    per pod: loading the CAs costs 16 to 40 ms of CPU."""
    return httpx.create_ssl_context()


@functools.cache
def _context_trusting_nothing() -> ssl.SSLContext:
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, with no CA to verify against


def tls_context(url: str) -> ssl.SSLContext:
    """The TLS context for a client of `url`. An https endpoint gets the trusted CAs. A plain
    HTTP one (the S3 of the dev cluster and of the kind path) never uses TLS, since neither
    the download nor the uploads follow redirects: it gets a context that would refuse every
    certificate, made without loading the CAs, which are 20 ms of every pod's CPU."""
    return _trusted_context() if url.lower().startswith("https:") else _context_trusting_nothing()


def content_type(name: str, *, audio_only: bool = False) -> str:
    """fMP4 segments are audio/mp4 in an audio rendition, video/mp4 otherwise (RFC 4337)."""
    suffix = name[name.rfind("."):].lower() if "." in name else ""
    if suffix in (".m4s", ".mp4"):
        return "audio/mp4" if audio_only else "video/mp4"
    return _TYPES.get(suffix, "application/octet-stream")


def is_manifest(name: str) -> bool:
    return name.lower().endswith(_MANIFESTS)


def upload_order(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(media first, manifests last); each batch may go in parallel."""
    media = sorted(n for n in names if not is_manifest(n))
    manifests = sorted(n for n in names if is_manifest(n))
    return media, manifests


def form_fields(post: PresignedPost, name: str, ctype: str) -> dict[str, str]:
    """The policy's fields with `key` and `Content-Type` set for this file. Field names are
    case-insensitive in S3 POST forms, so stale variants of them are dropped."""
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in name.split("/")):
        raise ValueError(f"not a plain relative name: {name!r}")
    fields = {k: v for k, v in post.fields.items() if k.lower() not in ("key", "content-type")}
    fields["key"] = post.key_prefix + name
    fields["Content-Type"] = ctype
    return fields


def _transient(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def client(url: str) -> httpx.Client:
    """A client for the endpoint of `url` (every policy of a task names the same one)."""
    return httpx.Client(timeout=TIMEOUT, verify=tls_context(url), follow_redirects=False)


def post_one(client: httpx.Client, post: PresignedPost, root: Path, name: str,
             audio_only: bool) -> int:
    """Uploads `root / name` under the policy's prefix, retrying what S3 may answer
    differently next time; its size in bytes."""
    ctype = content_type(name, audio_only=audio_only)
    data = form_fields(post, name, ctype)
    path = root / name
    last = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(min(10.0, 0.5 * 2**attempt) * (0.5 + random.random()))  # noqa: S311
        try:
            with path.open("rb") as handle:
                response = client.post(post.url, data=data,
                                       files={"file": (path.name, handle, ctype)})
        except httpx.TransportError as exc:
            last = str(exc) or type(exc).__name__
            continue
        if response.status_code < 300:
            return path.stat().st_size
        last = f"{response.status_code} {response.text[:200]}"
        if not _transient(response.status_code):
            break
    raise InfraError("UploadFailed", f"{name}: {last}", exit_code=EXIT_UPLOAD)


def upload_all(post: PresignedPost, root: Path, names: Sequence[str], *,
               audio_only: bool = False,
               before_manifests: Callable[[], None] | None = None) -> int:
    """Upload `names` (relative to `root`) under the policy's prefix; returns bytes sent.
    `before_manifests` runs between the media and the manifests, and stops the upload
    there if it raises (a shared encode's other outputs failing their proof)."""
    media, manifests = upload_order(names)
    started = time.monotonic()
    total = 0
    with (client(post.url) as http,
          ThreadPoolExecutor(max_workers=POOL, thread_name_prefix="upload") as pool):
        for batch in (media, manifests):
            if batch is manifests and before_manifests is not None:
                before_manifests()
            futures = [pool.submit(post_one, http, post, root, n, audio_only) for n in batch]
            try:
                total += sum(f.result() for f in futures)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    log.info("uploaded %d files, %d bytes in %.2f s", len(names), total,
             time.monotonic() - started)
    return total
