"""Errors for bad requests (never a 500), stream states, metrics, Redis-backed limits."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mediaplane.api.auth import Principal
from mediaplane.api.signing import StreamSigner
from mediaplane.core import names
from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.ports import free_port
from mediaplane.devcluster.processes import ManagedProcess, wait_until
from tests.support.api import ApiUser, error_code, post_form
from tests.support.assets import Assets, manifest
from tests.support.media import Media


def test_bad_requests_get_envelopes(alice: ApiUser, api_url: str) -> None:
    cases = [
        (alice.client.get("/api/v1/nothing-here"), 404, "not_found"),
        (alice.client.put("/api/v1/media/upload-url"), 405, "method_not_allowed"),
        (alice.client.post("/api/v1/media/upload-url", content=b"{not json",
                           headers={"Content-Type": "application/json"}),
         400, "validation.malformed"),
        (alice.client.post("/api/v1/media/upload-url", json={"sha256": 5}), 422,
         "validation.invalid"),
        (alice.client.post("/api/v1/media/upload-url", json=[1, 2]), 422, "validation.invalid"),
        (alice.client.post("/api/v1/media/upload-url", content=b"x" * (3 * 1024 * 1024),
                           headers={"Content-Type": "application/json"}),
         413, "request.too_large"),
        (alice.client.get("/api/v1/media/not-an-id"), 422, "validation.invalid"),
        (alice.client.get("/api/v1/media", params={"page[size]": "many"}), 422,
         "validation.invalid"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert error_code(response) == code
        assert response.headers["X-Request-ID"] == response.json()["error"]["requestId"]


def test_chunked_oversize_body_is_cut_off(alice: ApiUser) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b"x" * 65536

    response = alice.client.post("/api/v1/media/upload-url", content=chunks(),
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert error_code(response) == "request.too_large"


def test_stream_before_playable_is_409_and_quarantined_is_451(
        alice: ApiUser, stream_key: str, clip: Media, image: Media, assets: Assets) -> None:
    signer = StreamSigner(stream_key, 600)
    owner = Principal(alice.tenant, alice.user)
    pending = names.new_asset_id()  # applied with kubectl, its bytes never put: not playable
    assets.create(manifest(alice.tenant, pending, clip))
    token = signer.token(signer.sign(owner, pending))
    for path in (f"/api/v1/media/{pending}/stream/hls/all/index.m3u8",
                 f"/api/v1/media/{pending}/stream/dash/all.mpd"):
        response = httpx.get(f"{alice.base_url}{path}?token={token}")
        assert response.status_code == 409
        assert error_code(response) == "media.transcoding"
        assert response.headers["Retry-After"]
    # Declared a video, the bytes are a PNG: the probe quarantines it.
    grant = alice.upload_url(image, mime="video/mp4", kind="video")
    etag = post_form(grant, image.data, "fake.mp4")
    alice.finalize(grant["assetId"], etag)
    asset = alice.wait_status(grant["assetId"], "quarantined")
    assert asset["streams"] is None
    assert asset["quarantineReason"]
    token = signer.token(signer.sign(owner, grant["assetId"]))
    response = httpx.get(f"{alice.base_url}/api/v1/media/{grant['assetId']}"
                         f"/stream/hls/all/index.m3u8?token={token}")
    assert response.status_code == 451
    assert error_code(response) == "media.quarantined"


def test_metrics_have_route_latency_and_error_codes(alice: ApiUser, api_url: str) -> None:
    alice.client.get("/api/v1/media")
    alice.client.get("/api/v1/media/mda_00000000000000000000000000")
    text = httpx.get(f"{api_url}/metrics").text
    assert 'mediaplane_api_request_duration_seconds_bucket{le="0.04",method="GET",' \
           'route="/api/v1/media",status="200"}' in text
    assert 'route="/api/v1/media/{asset_id}"' in text
    assert "mda_0000" not in text  # ids never become labels
    assert 'mediaplane_api_errors_total{code="media.not_found"}' in text


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    assert server, "redis-server is installed by scripts/setup.sh (apt package redis-server)"
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up() -> bool:
            import socket

            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_until(up, what="redis", timeout=10)
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _start_replica(cluster: DevCluster, redis: str, rate: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    env = {**os.environ, **cluster.env(), "MEDIAPLANE_API_RATE_LIMIT_STORAGE": redis,
           "MEDIAPLANE_API_UPLOAD_URL_RATE": rate}
    process = cluster.spawn(f"api-replica-{port}",
                            [sys.executable, "-m", "mediaplane.api", "--port", str(port),
                             "--log-level", "warning"], env)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, what="an API replica", timeout=30, watch=[process])
    return process, url


def test_redis_limits_are_shared_by_replicas(cluster: DevCluster, redis_url: str,
                                             alice: ApiUser) -> None:
    first, first_url = _start_replica(cluster, redis_url, "6/minute")
    second, second_url = _start_replica(cluster, redis_url, "6/minute")
    try:
        statuses = []
        for index in range(7):
            data = b"\x89PNG\r\n\x1a\n" + f"redis-{index}-{time.time()}".encode()
            url = (first_url, second_url)[index % 2]
            response = httpx.post(f"{url}/api/v1/media/upload-url", headers=alice.client.headers,
                                  json={"sha256": hashlib.sha256(data).hexdigest(),
                                        "sizeBytes": len(data), "mime": "image/png",
                                        "filename": "r.png"})
            statuses.append(response.status_code)
        assert statuses == [200] * 6 + [429], statuses
        assert error_code(response) == "rate.limited"
    finally:
        first.stop()
        second.stop()
