"""Scale: thousands of finished assets, the operator at rest and restarting, a list page.

Not a test. A loader creates finished MediaAssets straight through the API server (the
spec, then the status a complete transcode leaves: probe, conditions, a full ladder of
variants, manifests; and the annotations kopf leaves on an object it has handled), with the
operator stopped, so nothing is transcoded. Then:

- the operator (installed as its image installs it) starts over them (a resync): time
  until it is quiet, TranscodeJobs and Jobs
  created (target: none), its RSS (target ≤ 150 MB) and its CPU over a minute at rest;
- it is killed and started again: the same figures (target ≤ 30 s);
- a page of 200 with a filter from the REST API, p50/p95/p99 (target p95 ≤ 50 ms);
- bytes per asset as stored, for the loaded asset and a long ladder with captions.

    .venv/bin/python -m bench.scale [--tenants 10] [--per-tenant 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import aiohttp
import httpx
import kopf
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.config import new_client_from_config
from prometheus_client.parser import text_string_to_metric_families

from bench.stats import row_ms
from mediaplane.core import keys, names
from mediaplane.core.resources import MediaAsset, MediaAssetStatus
from mediaplane.core.tasks import MediaKind
from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.ports import free_port
from mediaplane.devcluster.processes import ManagedProcess
from mediaplane.devcluster.services import operator_env, start_api
from mediaplane.devcluster.tokens import mint_dev_token
from tests.support.images import build_wheelhouse, install
from tests.support.resources import rendition

TARGET_RSS_MB = 150
TARGET_RESYNC_S = 30.0
TARGET_LIST_S = 0.050
RUNGS = (("240p", 426, 240, 400), ("360p", 640, 360, 800), ("480p", 854, 480, 1400),
         ("720p", 1280, 720, 2800), ("1080p", 1920, 1080, 5000))


def finished_status(tenant: str, asset_id: str, captions: int = 0) -> MediaAssetStatus:
    """What the operator leaves on a complete 1080p video with audio and a poster."""
    prefix = keys.asset_prefix(tenant, asset_id)
    now = "2026-12-01T00:00:00Z"
    conditions = [{"type": t, "status": s, "reason": r, "message": m, "observedGeneration": 1,
                   "lastTransitionTime": now} for t, s, r, m in (
        ("Uploaded", "True", "Uploaded", f"12345678 bytes at {prefix}source"),
        ("Probed", "True", "Probed", "checksum, type and streams verified"),
        ("Quarantined", "False", "Clean", "the source passed the ingest checks"),
        ("Ready", "True", "Playable", "7/7 variants ready"),
        ("Complete", "True", "AllVariantsSucceeded", "every variant is done"))]
    variants = [rendition(prefix, name, "video", width=w, height=h, bandwidth=kbps * 1000,
                          codecs="avc1.64001f", durationSeconds=600.0, bytes=kbps * 75_000,
                          transcodeJob=names.child_name(names.name_from_asset_id(asset_id),
                                                        name))
                for name, w, h, kbps in RUNGS]
    variants.append(rendition(prefix, "audio", "audio", bandwidth=130_000, codecs="mp4a.40.2",
                              durationSeconds=600.0, bytes=9_750_000))
    variants.append({"name": "poster", "type": "poster", "state": "succeeded", "width": 1280,
                     "height": 720, "bytes": 90_000,
                     "file": f"{prefix}variants/poster/poster.jpg"})
    return MediaAssetStatus.model_validate({
        "observedGeneration": 1, "phase": "ready", "playable": True, "variantSummary": "7/7",
        "conditions": conditions,
        "probe": {"detectedMime": "video/mp4", "formatName": "mov,mp4,m4a,3gp,3g2,mj2",
                  "durationSeconds": 600.0, "width": 1920, "height": 1080,
                  "videoCodec": "h264", "audioCodec": "aac", "hasVideo": True,
                  "hasAudio": True},
        "manifests": {"hls": prefix + "master.m3u8", "dash": prefix + "manifest.mpd",
                      "variants": [r[0] for r in RUNGS] + ["audio"]},
        "variants": variants,
        "captions": [{"language": f"l{i}", "key": f"{prefix}captions/l{i}.vtt",
                      "approved": True, "transcodeJob": "x" * 40} for i in range(captions)]})


def handled(body: dict[str, Any]) -> dict[str, str]:
    """The annotations kopf writes on an object it has handled (the spec it compares a
    later one with), made from the object as stored (with the schema's defaults: from the
    manifest as sent, kopf would see a spec change). An asset the operator finished carries
    them; an operator meeting thousands of objects without them writes them all once."""
    storage = kopf.AnnotationsDiffBaseStorage(prefix=names.GROUP,
                                              key="last-handled-configuration")
    patch, raw = kopf.Patch(), kopf.Body(cast("kopf.RawBody", body))
    storage.store(body=raw, patch=patch, essence=storage.build(body=raw))
    annotations: dict[str, str] = patch["metadata"]["annotations"]
    return annotations


async def load(kubeconfig: str, tenants: list[str], per_tenant: int,
               concurrency: int = 16) -> int:
    api = await new_client_from_config(config_file=kubeconfig)
    custom, core = k8s.CustomObjectsApi(api), k8s.CoreV1Api(api)
    for tenant in tenants:
        await core.create_namespace({"metadata": {"name": tenant, "labels": {  # type: ignore[arg-type]
            names.TENANT_LABEL: "true"}}})
    work = [(tenant, i) for tenant in tenants for i in range(per_tenant)]
    queue = iter(work)

    async def worker() -> None:
        for tenant, index in queue:
            asset_id = names.new_asset_id()
            asset = MediaAsset.new(tenant, asset_id, kind=MediaKind.VIDEO, mime="video/mp4",
                                   sha256=f"{index:064x}", size_bytes=12_345_678,
                                   filename=f"clip-{index}.mp4",
                                   finalizers=[names.FINALIZER])
            created = await custom.create_namespaced_custom_object(
                names.GROUP, names.VERSION, tenant, names.ASSET_PLURAL, asset.to_body())
            await custom.patch_namespaced_custom_object(
                names.GROUP, names.VERSION, tenant, names.ASSET_PLURAL, asset.name,
                {"metadata": {"annotations": handled(created)}},
                _content_type="application/merge-patch+json")  # type: ignore[call-arg]
            await custom.patch_namespaced_custom_object_status(
                names.GROUP, names.VERSION, tenant, names.ASSET_PLURAL, asset.name,
                {"status": finished_status(tenant, asset_id).to_body()},
                _content_type="application/merge-patch+json")  # type: ignore[call-arg]

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await api.close()
    return len(work)


def children(kubeconfig: str) -> tuple[int, int]:
    """(TranscodeJobs, Jobs) in the cluster."""
    def count(*what: str) -> int:
        out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", *what, "-A",
                              "--no-headers"], capture_output=True, text=True, check=True)
        return len([line for line in out.stdout.splitlines() if line.strip()])
    return count("transcodejobs"), count("jobs")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def assets_seen(metrics_port: int) -> int:
    """MediaAssets the operator has seen, all phases, from its own /metrics."""
    try:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("mediaplane_operator_assets{")))


def until_quiet(process: ManagedProcess, started: float, quiet_share: float = 0.05,
                window: float = 3.0, timeout: float = 600.0,
                ready: Callable[[], bool] = lambda: True) -> float:
    """Seconds from `started` until the process used under `quiet_share` of a core for a
    whole window (its resync is over) after `ready()` first held: without that, a quiet
    moment before the operator lists anything would count as the end of its resync."""
    while not ready():
        if time.monotonic() - started > timeout:
            raise RuntimeError("the operator never saw every asset")
        time.sleep(0.2)
    pid = process.popen.pid
    last_time, last_cpu = time.monotonic(), cpu_seconds(pid)
    quiet_since: float | None = None
    while time.monotonic() - started < timeout:
        time.sleep(0.5)
        now, cpu = time.monotonic(), cpu_seconds(pid)
        busy = (cpu - last_cpu) / (now - last_time) > quiet_share
        last_time, last_cpu = now, cpu
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= window and now - started > window:
            return quiet_since - started
    raise RuntimeError("the operator never became quiet")


def start_image_operator(cluster: DevCluster, python: Path,
                         metrics_port: int) -> ManagedProcess:
    """The operator as its image runs it: its own distribution alone in a virtualenv (the
    dev one also holds the Kubernetes clients, which kopf would import)."""
    env = {**operator_env(cluster.env()), "MEDIAPLANE_METRICS_PORT": str(metrics_port)}
    return cluster.spawn("operator", [str(python), "-m", "mediaplane.operator", "--standalone"],
                         env, stop_timeout=10.0)


def measure_operator(cluster: DevCluster, label: str, kubeconfig: str,
                     rest_seconds: float, python: Path, count: int) -> list[str]:
    before = children(kubeconfig)
    port = free_port()
    started = time.monotonic()
    operator = start_image_operator(cluster, python, port)
    resync = until_quiet(operator, started, ready=lambda: assets_seen(port) >= count)
    rss = rss_mb(operator.popen.pid)
    cpu0 = cpu_seconds(operator.popen.pid)
    time.sleep(rest_seconds)
    idle = (cpu_seconds(operator.popen.pid) - cpu0) / rest_seconds
    after = children(kubeconfig)
    lines = [
        f"{label}: resync until quiet {resync:6.1f}s (target <= {TARGET_RESYNC_S:.0f}s, "
        f"ratio {resync / TARGET_RESYNC_S:4.2f}); created TranscodeJobs "
        f"{after[0] - before[0]}, Jobs {after[1] - before[1]} (target 0)",
        f"{label}: RSS {rss:6.1f} MB (target <= {TARGET_RSS_MB} MB, ratio "
        f"{rss / TARGET_RSS_MB:4.2f}); CPU at rest over {rest_seconds:.0f} s: "
        f"{idle * 100:5.2f}% of a core",
    ]
    operator.popen.kill()
    operator.popen.wait()
    for line in lines:
        print(line, flush=True)
    return lines


def list_latency(cluster: DevCluster, tenant: str, clients: int, total: int,
                 expected: int, new_users: bool = False) -> list[float]:
    """A page of 200 polled by one user, or (`new_users`) by a user of its own each time:
    the API keeps presented assets per user, asset version and minute (`api.presented`),
    so the first is a dashboard's refresh and the second a first view."""
    secret = cluster.env()["MEDIAPLANE_API_JWT_SECRET"]
    users = [f"bench-{n}" if new_users else "bench" for n in range(total)]
    bearers = {user: {"Authorization": f"Bearer {mint_dev_token(secret, tenant, user, 3600)}"}
               for user in users}
    params = {"page[size]": "200", "filter[status]": "ready", "filter[kind]": "video"}
    latencies: list[float] = []
    answers: list[tuple[int, bytes]] = []

    async def run() -> None:
        # aiohttp, and the pages parsed only after the run: with ten clients in one event
        # loop, httpx's reading and the JSON parsing of each 1.5 MB page held the other
        # nine's answers back, and that was the client's time, not the API's.
        async with aiohttp.ClientSession(base_url=cluster.api_url,
                                         timeout=aiohttp.ClientTimeout(total=30)) as http:
            counter = iter(users)

            async def worker() -> None:
                for user in counter:
                    started = time.perf_counter()
                    async with http.get("/api/v1/media", params=params,
                                        headers=bearers[user]) as response:
                        body = await response.read()
                    latencies.append(time.perf_counter() - started)
                    answers.append((response.status, body))

            await asyncio.gather(*(worker() for _ in range(clients)))

    asyncio.run(run())
    for status, body in answers:
        if status != 200 or len(json.loads(body)["data"]) != expected:
            raise RuntimeError(f"list answered {status}: {body[:300]!r}")
    return latencies


def api_counters(api_url: str) -> dict[str, float]:
    """What explains a list's time, from the API's /metrics (`api.metrics`): assets written
    from kept JSON and made anew, and the informer's complete lists of every asset."""
    scraped = httpx.get(f"{api_url}/metrics", timeout=10).text
    counters: dict[str, float] = {}
    for family in text_string_to_metric_families(scraped):
        for sample in family.samples:
            if sample.name == "mediaplane_api_presented_assets_total":
                counters[sample.labels["result"]] = sample.value
            elif sample.name == "mediaplane_api_asset_lists_total":
                counters["lists"] = sample.value
    return counters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--per-tenant", type=int, default=1000)
    parser.add_argument("--rest-seconds", type=float, default=60.0,
                        help="how long the operator's idle CPU is measured")
    args = parser.parse_args()
    tenants = [f"scale-{i}" for i in range(args.tenants)]
    with tempfile.TemporaryDirectory(prefix="mediaplane-bench-scale-") as tmp, \
            DevCluster(Path(tmp) / "cluster") as cluster:
        kubeconfig = cluster.env()["KUBECONFIG"]
        os.environ["PATH"] = cluster.env()["PATH"]
        started = time.monotonic()
        count = asyncio.run(load(kubeconfig, tenants, args.per_tenant))
        print(f"loaded {count} finished assets in {args.tenants} tenants in "
              f"{time.monotonic() - started:.0f}s (operator stopped)")
        python = install("operator", build_wheelhouse(), Path(tmp)).python
        results = measure_operator(cluster, "first start over them", kubeconfig,
                                   args.rest_seconds, python, count)
        results += measure_operator(cluster, "restart", kubeconfig, args.rest_seconds, python,
                                    count)
        start_api(cluster)
        expected = min(200, args.per_tenant)
        list_latency(cluster, tenants[0], 1, 10, expected)  # warm the cache, the connection
        for new_users, what in ((False, "polled"), (True, "first view")):
            for clients in (1, 10):
                before = api_counters(cluster.api_url)
                latencies = list_latency(cluster, tenants[0], clients, 100, expected,
                                         new_users)
                after = api_counters(cluster.api_url)
                results.append(row_ms(f"list {expected} of {args.per_tenant} (filtered), "
                                      f"{what}, {clients} cl.", latencies,
                                      [(TARGET_LIST_S, "50ms")]))
                kept, made, lists = (after[key] - before[key] for key in ("kept", "made", "lists"))
                results.append(f"  assets from kept JSON {kept:.0f}, made anew {made:.0f} "
                               f"({kept / max(1.0, kept + made):.1%} kept); the API's informer "
                               f"listed every asset {lists:.0f} more time(s) meanwhile")
        sample = finished_status("scale-0", names.new_asset_id())
        body = MediaAsset.new("scale-0", names.new_asset_id(), kind=MediaKind.VIDEO,
                              mime="video/mp4", sha256="0" * 64, size_bytes=1).to_body()
        stored = len(json.dumps({**body, "status": sample.to_body()}))
        long = len(json.dumps({**body, "status": finished_status(
            "scale-0", names.new_asset_id(), captions=20).to_body()}))
        results.append(f"bytes per asset as stored: {stored} (7 variants); with 20 caption "
                       f"tracks: {long}; the API server's limit is 1.5 MB "
                       f"({long / 1.5e6 * 100:.2f}%)")
    print(f"\nScale on this machine ({args.tenants} tenants x {args.per_tenant} assets):")
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
