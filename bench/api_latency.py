"""REST latency: upload-url and stream-url at 1, 10 and 50 concurrent clients.

The whole system runs as in `make dev`: control plane, node agent, SeaweedFS, the operator
and one API process (one uvicorn worker). Clients are closed-loop (each sends its next
request when the last one answered) from this process, on the same 2 cores. Each
upload-url declares new bytes, so every request creates a MediaAsset (the expensive path);
the per-user rate limit is raised for the run, the limiter itself still runs.

stream-url is `GET …/stream/hls/all/index.m3u8` with a signed link (the request a player
makes first); `GET /api/v1/media/{id}` (which signs the stream URLs) is reported beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from bench.stats import row_ms
from mediaplane.core.states import AssetPhase
from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.ports import free_port
from mediaplane.devcluster.services import start_api, start_operator
from mediaplane.devcluster.tokens import mint_dev_token
from tests.support.api import ApiUser
from tests.support.media import video_clip

SLO_UPLOAD_URL = 0.200
SLO_STREAM_URL = 0.100
TARGET_UPLOAD_URL = 0.040
TARGET_STREAM_URL = 0.010
CONCURRENCY = (1, 10, 50)

Request = Callable[[aiohttp.ClientSession, int], Awaitable[int]]


async def load(base: str, headers: dict[str, str], request: Request, clients: int,
               total: int) -> list[float]:
    """Closed-loop clients on aiohttp (httpx's pool costs more CPU per request than the
    API itself under 50 connections, and would measure the client)."""
    latencies: list[float] = []
    counter = iter(range(total))
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:
        async def worker() -> None:
            for index in counter:
                started = time.perf_counter()
                status = await request(session, index)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    raise RuntimeError(f"request {index} answered {status}")

        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies


def upload_url_request(run: str) -> Request:
    async def request(session: aiohttp.ClientSession, index: int) -> int:
        data = f"{run}-{index}".encode()
        async with session.post("/api/v1/media/upload-url", json={
                "sha256": hashlib.sha256(data).hexdigest(), "sizeBytes": 1000 + index,
                "mime": "video/mp4", "filename": f"bench-{index}.mp4"}) as response:
            await response.read()
            return response.status
    return request


def get_request(path: str) -> Request:
    async def request(session: aiohttp.ClientSession, index: int) -> int:
        del index
        async with session.get(path) as response:
            await response.read()
            return response.status
    return request


async def raw_creates(clients: int, total: int, tenant: str) -> list[float]:
    """The floor under upload-url: the same MediaAsset create, straight to the API server
    (kubernetes_asyncio, like the API), with no HTTP façade in front."""
    from kubernetes_asyncio import client as k8s

    from mediaplane.core import names
    from mediaplane.core.kubeclient import connect
    from mediaplane.core.resources import MediaAsset
    from mediaplane.core.states import SourceOrigin
    from mediaplane.core.tasks import MediaKind

    api = await connect()
    custom = k8s.CustomObjectsApi(api)
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for _ in counter:
            body = MediaAsset.new(tenant, names.new_asset_id(), kind=MediaKind.VIDEO,
                                  mime="video/mp4", sha256="0" * 64, size_bytes=1000,
                                  filename="raw.mp4", origin=SourceOrigin.UPLOAD).to_body()
            started = time.perf_counter()
            await custom.create_namespaced_custom_object(
                names.GROUP, names.VERSION, tenant, names.ASSET_PLURAL, body)
            latencies.append(time.perf_counter() - started)

    try:
        await asyncio.gather(*(worker() for _ in range(clients)))
    finally:
        await api.close()
    return latencies


def timed(work: Coroutine[Any, Any, list[float]]) -> tuple[list[float], float]:
    """The latencies and the throughput (requests per second) of one load run."""
    started = time.perf_counter()
    latencies = uvloop.run(work)  # the client's own overhead as low as the server's
    return latencies, len(latencies) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-per-client", type=int, default=20)
    parser.add_argument("--min-requests", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("MEDIAPLANE_API_UPLOAD_URL_RATE", "1000000/minute")
    with tempfile.TemporaryDirectory(prefix="mediaplane-bench-api-") as tmp:
        work = Path(tmp)
        clip = video_clip(work, seconds=4)
        with DevCluster(work / "cluster", api_port=free_port()) as cluster:
            start_operator(cluster)
            start_api(cluster)
            env = cluster.env()
            subprocess_env = {**os.environ, **env}
            import subprocess

            subprocess.run([sys.executable, "-m", "mediaplane.cli.main", "tenant", "create",
                            "bench"], env=subprocess_env, check=True, capture_output=True)
            token = mint_dev_token(env["MEDIAPLANE_API_JWT_SECRET"], "bench", "bencher", 7200)
            user = ApiUser(cluster.api_url, "bench", "bencher", token)
            asset_id = user.upload(clip)
            asset = user.wait_status(asset_id, AssetPhase.READY)
            stream_path = asset["streams"]["hls"].removeprefix(cluster.api_url)
            headers = {"Authorization": f"Bearer {token}"}
            results: list[str] = []
            # Reads first, on a quiet system; then creates, which keep the operator busy.
            for clients in CONCURRENCY:
                total = max(args.min_requests, clients * args.requests_per_client)
                stream, stream_rate = timed(load(cluster.api_url, {}, get_request(stream_path),
                                                 clients, total))
                read, read_rate = timed(load(cluster.api_url, headers,
                                             get_request(f"/api/v1/media/{asset_id}"),
                                             clients, total))
                results += [
                    row_ms(f"stream-url (HLS master), {clients} clients", stream,
                           [(SLO_STREAM_URL, "SLO100ms"), (TARGET_STREAM_URL, "10ms")])
                    + f"  {stream_rate:6.0f} req/s",
                    row_ms(f"GET asset (signs links), {clients} clients", read,
                           [(SLO_STREAM_URL, "SLO100ms")]) + f"  {read_rate:6.0f} req/s",
                ]
            os.environ["KUBECONFIG"] = env["KUBECONFIG"]
            for clients in CONCURRENCY:
                total = max(args.min_requests, clients * args.requests_per_client)
                run = f"{time.time_ns()}-{clients}"
                upload, upload_rate = timed(load(cluster.api_url, headers,
                                                 upload_url_request(run), clients, total))
                raw, raw_rate = timed(raw_creates(clients, total, "bench"))
                results += [
                    row_ms(f"upload-url, {clients} clients", upload,
                           [(SLO_UPLOAD_URL, "SLO200ms"), (TARGET_UPLOAD_URL, "40ms")])
                    + f"  {upload_rate:6.0f} req/s",
                    row_ms(f"  floor: raw MediaAsset create, {clients}", raw)
                    + f"  {raw_rate:6.0f} req/s",
                ]
            user.close()
    print("\nREST latency on this machine (one API process, closed-loop clients):")
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
