"""REST latency: upload-url and stream-url at 1, 10 and 50 concurrent clients.

The whole system runs as in `make dev`: control plane, node agent, SeaweedFS, the operator
and one API process (one uvicorn worker). Clients are closed-loop (each sends its next
request when the last one answered) from this process, on the same 2 cores. Each
upload-url declares new bytes (a new asset, never a dedup hit); the per-user rate limit is
raised for the run, the limiter itself still runs.

stream-url is `GET …/stream/hls/all/index.m3u8` with a signed link (the request a player
makes first); `GET /api/v1/media/{id}` (which signs the stream URLs) is reported beside it.

Each route is also compared with a floor measured in the same run at the same
concurrency: `/bench/floor`, a route of the same API process that does nothing but answer
a body of the same size, so the ratio is what the route's own work costs over the server,
the middleware and the client. stream-url's floor is a GET; upload-url's is a POST of a
JSON body like its own (the floor reads it and drops it). Route and floor alternate in
rounds and each pools its rounds, so a hiccup of the machine (another process's timer, a
collection) lands on both alike; a p95 of a sub-second run was mostly such hiccups.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import uvloop

from bench.stats import load_note, percentile, row_ms
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
JSON = {"Content-Type": "application/json"}

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


def upload_url_body(run: str, index: int) -> bytes:
    """A declaration of new bytes (a new asset, never a dedup hit), as the JSON it is sent
    as: encoded here for the route and its floor alike."""
    data = f"{run}-{index}".encode()
    return json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "sizeBytes": 1000 + index,
                       "mime": "video/mp4", "filename": f"bench-{index}.mp4"}).encode()


def post_request(path: str, body: Callable[[int], bytes]) -> Request:
    async def request(session: aiohttp.ClientSession, index: int) -> int:
        async with session.post(path, data=body(index), headers=JSON) as response:
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


def timed(work: Coroutine[Any, Any, list[float]]) -> tuple[list[float], float]:
    """The latencies of one load run and how long it took."""
    started = time.perf_counter()
    latencies = uvloop.run(work)  # the client's own overhead as low as the server's
    return latencies, time.perf_counter() - started


def floor_request(size: int) -> Request:
    return get_request(f"/bench/floor?size={size}")


def interleaved(base: str, headers: dict[str, str], floor: Request, route: Request,
                clients: int, total: int, rounds: int
                ) -> tuple[list[float], float, list[float], float]:
    """The floor and the route in alternating rounds, latencies pooled: whatever else the
    machine does meanwhile (a controller's resync, a collection in another process) falls
    on both alike instead of on whichever ran at that moment."""
    floor_all: list[float] = []
    route_all: list[float] = []
    floor_time = route_time = 0.0
    for _ in range(rounds):
        latencies, seconds = timed(load(base, headers, floor, clients, total // rounds))
        floor_all += latencies
        floor_time += seconds
        latencies, seconds = timed(load(base, headers, route, clients, total // rounds))
        route_all += latencies
        route_time += seconds
    return floor_all, len(floor_all) / floor_time, route_all, len(route_all) / route_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-per-client", type=int, default=100)
    parser.add_argument("--min-requests", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternations of each route with its floor")
    args = parser.parse_args()
    os.environ.setdefault("MEDIAPLANE_API_UPLOAD_URL_RATE", "1000000/minute")
    os.environ["MEDIAPLANE_API_BENCH_FLOOR"] = "true"
    with tempfile.TemporaryDirectory(prefix="mediaplane-bench-api-") as tmp:
        work = Path(tmp)
        clip = video_clip(work, seconds=4)
        with DevCluster(work / "cluster", api_port=free_port()) as cluster:
            start_operator(cluster)
            start_api(cluster)
            env = cluster.env()
            subprocess_env = {**os.environ, **env}
            import subprocess

            subprocess.run([sys.executable, "-m", "mediaplane.cli", "tenant", "create",
                            "bench"], env=subprocess_env, check=True, capture_output=True)
            token = mint_dev_token(env["MEDIAPLANE_API_JWT_SECRET"], "bench", "bencher", 7200)
            user = ApiUser(cluster.api_url, "bench", "bencher", token)
            asset_id = user.upload(clip)
            asset = user.wait_status(asset_id, AssetPhase.READY)
            stream_path = asset["streams"]["hls"].removeprefix(cluster.api_url)
            stream_size = len(httpx.get(asset["streams"]["hls"]).content)
            headers = {"Authorization": f"Bearer {token}"}
            grant_size = len(user.client.post("/api/v1/media/upload-url", json={
                "sha256": "0" * 64, "sizeBytes": 1000, "mime": "video/mp4",
                "filename": "bench-0.mp4"}).content)
            results: list[str] = []
            for clients in CONCURRENCY:
                total = max(args.min_requests, clients * args.requests_per_client)
                run = f"{time.time_ns()}-{clients}"
                stream_floor, stream_floor_rate, stream, stream_rate = interleaved(
                    cluster.api_url, {}, floor_request(stream_size), get_request(stream_path),
                    clients, total, args.rounds)
                read, read_time = timed(load(cluster.api_url, headers,
                                             get_request(f"/api/v1/media/{asset_id}"),
                                             clients, total))
                grant_floor, grant_floor_rate, upload, upload_rate = interleaved(
                    cluster.api_url, headers,
                    post_request(f"/bench/floor?size={grant_size}",
                                 functools.partial(upload_url_body, "floor")),
                    post_request("/api/v1/media/upload-url",
                                 functools.partial(upload_url_body, run)),
                    clients, total, args.rounds)
                results += [
                    row_ms(f"floor GET ({stream_size} B), {clients} clients", stream_floor)
                    + f"  {stream_floor_rate:6.0f} req/s",
                    row_ms(f"stream-url (HLS master), {clients} clients", stream,
                           [(SLO_STREAM_URL, "SLO100ms"), (TARGET_STREAM_URL, "10ms"),
                            (percentile(stream_floor, 95), "floor")])
                    + f"  {stream_rate:6.0f} req/s",
                    row_ms(f"GET asset (signs links), {clients} clients", read,
                           [(SLO_STREAM_URL, "SLO100ms")])
                    + f"  {len(read) / read_time:6.0f} req/s",
                    row_ms(f"floor POST ({grant_size} B), {clients} clients", grant_floor)
                    + f"  {grant_floor_rate:6.0f} req/s",
                    row_ms(f"upload-url, {clients} clients", upload,
                           [(SLO_UPLOAD_URL, "SLO200ms"), (TARGET_UPLOAD_URL, "40ms"),
                            (percentile(grant_floor, 95), "floor")])
                    + f"  {upload_rate:6.0f} req/s",
                ]
            user.close()
    print("\nREST latency on this machine (one API process, closed-loop clients; each "
          "route against a\ntrivial route of the same process with a body of the same size, "
          f"measured alongside; {load_note()}):")
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
