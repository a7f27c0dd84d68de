"""Pipeline latency on the dev environment: MediaAsset creation → first variant pod running,
→ playable, → complete, with raw ffmpeg for the lowest rung measured in the same run.

Not a test: it prints p50/p95/p99 and ratios against the contract's SLO ("transcode start
p95 < 30 s after upload"), our own targets (first variant pod ≤ 3 s, first playable within
1.25x the raw ffmpeg time of the lowest rung) and raw ffmpeg.

    .venv/bin/python -m bench.pipeline [--runs N] [--seconds S] [--height H]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from bench.stats import load_note, row
from mediaplane.core import keys, names
from mediaplane.core.ladder import Ladder, plan_variants
from mediaplane.core.states import PodPhase
from mediaplane.core.storage import Storage
from mediaplane.core.tasks import MediaKind, ProbeResult, VariantType
from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.services import start_operator
from mediaplane.worker.commands import video_command
from tests.support.assets import manifest
from tests.support.media import Media, video_clip

SLO_TRANSCODE_START = 30.0  # contract: transcode start p95 < 30 s after upload
TARGET_FIRST_POD = 3.0
TARGET_PLAYABLE_RATIO = 1.25


def raw_ffmpeg_lowest_rung(storage: Storage, key: str, height: int, runs: int,
                           scratch: Path) -> list[float]:
    """The lowest rung exactly as the worker encodes it, read through a presigned URL."""
    probe = ProbeResult(detected_mime="video/mp4", format_name="mov", width=height * 16 // 9,
                        height=height, has_video=True, has_audio=True, duration_seconds=1)
    lowest = next(v for v in plan_variants(MediaKind.VIDEO, Ladder(), probe)
                  if v.type is VariantType.VIDEO)
    times = []
    for i in range(runs):
        out = scratch / f"raw-{i}"
        out.mkdir()
        argv = video_command(storage.presign_get(key, 600), lowest, out)
        started = time.monotonic()
        subprocess.run(argv, check=True, capture_output=True, timeout=600)
        times.append(time.monotonic() - started)
    return times


def measure_one(custom: k8s.CustomObjectsApi, core: k8s.CoreV1Api, storage: Storage,
                tenant: str, clip: Any, *, until: str = "complete", timeout: float = 600,
                asset_id: str | None = None) -> dict[str, float]:
    """Seconds from the MediaAsset's creation to its first video pod running, to playable
    and to complete (or only until `until` is "playable")."""
    asset_id = asset_id or names.new_asset_id()
    name = names.name_from_asset_id(asset_id)
    storage.client.put_object(Bucket=storage.bucket, Key=keys.source_key(tenant, asset_id),
                              Body=clip.data, ContentType=clip.mime)
    body = manifest(tenant, asset_id, clip)
    started = time.monotonic()
    custom.create_namespaced_custom_object(names.GROUP, names.VERSION, tenant,
                                           names.ASSET_PLURAL, body)
    marks: dict[str, float] = {}
    selector = f"{names.LABEL_ASSET}={name},{names.LABEL_TASK}=video"
    while time.monotonic() - started < timeout:
        now = time.monotonic() - started
        if "first_pod" not in marks:
            pods = core.list_namespaced_pod(tenant, label_selector=selector).items
            if any(p.status.phase in (PodPhase.RUNNING, PodPhase.SUCCEEDED) for p in pods):
                marks["first_pod"] = now
        status = custom.get_namespaced_custom_object(
            names.GROUP, names.VERSION, tenant, names.ASSET_PLURAL, name).get("status", {})
        if status.get("playable") and "playable" not in marks:
            marks["playable"] = now
            if until == "playable":
                return marks
        complete = [c for c in status.get("conditions", []) if c["type"] == "Complete"]
        if complete and complete[0]["status"] == "True":
            marks["complete"] = now
            return marks
        time.sleep(0.02)
    raise RuntimeError(f"{name} did not complete: {status}")


def bench_tenant(cluster: DevCluster, clip: Media) -> tuple[
        k8s.CustomObjectsApi, k8s.CoreV1Api, Storage, str, str]:
    """Clients of the dev cluster, its "bench" tenant, and the clip stored once under a
    key of its own for raw ffmpeg to read (custom, core, storage, tenant, that key)."""
    env = cluster.env()
    api = k8s_config.new_client_from_config(config_file=env["KUBECONFIG"])
    custom, core = k8s.CustomObjectsApi(api), k8s.CoreV1Api(api)
    storage = Storage.from_env(env)
    tenant = "bench"
    core.create_namespace({"metadata": {"name": tenant}})
    raw_key = keys.asset_prefix(tenant, names.new_asset_id()) + "source"
    storage.client.put_object(Bucket=storage.bucket, Key=raw_key, Body=clip.data)
    return custom, core, storage, tenant, raw_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=20, help="clip duration")
    parser.add_argument("--height", type=int, default=720, help="clip height (16:9)")
    parser.add_argument("--channels", type=int, default=2,
                        help="audio channels: 2 (stereo AAC, copied into the audio "
                        "rendition as a phone's or camera's would be) or 1 (encoded)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mediaplane-bench-") as tmp:
        work = Path(tmp)
        clip = video_clip(work, seconds=args.seconds, width=args.height * 16 // 9,
                          height=args.height, channels=args.channels)
        clip_mb = clip.size / 1e6
        with DevCluster(work / "cluster") as cluster:
            start_operator(cluster)
            custom, core, storage, tenant, raw_key = bench_tenant(cluster, clip)
            raw = raw_ffmpeg_lowest_rung(storage, raw_key, args.height, 3, work)
            measure_one(custom, core, storage, tenant, clip)  # warm-up: caches, imports
            runs = [measure_one(custom, core, storage, tenant, clip) for _ in range(args.runs)]

    raw_median = statistics.median(raw)
    first_pod = [r["first_pod"] for r in runs]
    playable = [r["playable"] for r in runs]
    sound = "stereo, copied" if args.channels == 2 else f"{args.channels} ch, encoded"
    print(f"\nclip: {args.seconds}s {args.height * 16 // 9}x{args.height} H.264/AAC "
          f"({sound}), {clip_mb:.1f} MB; {args.runs} runs, one asset at a time; "
          f"{load_note()}")
    print(row("raw ffmpeg, lowest rung", raw))
    print(row("create -> first variant pod running", first_pod, TARGET_FIRST_POD, "3s"))
    print(row("  (same, against the contract SLO)", first_pod, SLO_TRANSCODE_START, "SLO30s"))
    print(row("create -> playable", playable, raw_median * TARGET_PLAYABLE_RATIO, "1.25raw"))
    print(row("create -> complete", [r["complete"] for r in runs]))
    ratio = statistics.median(playable) / raw_median
    print(f"{'playable / raw ffmpeg lowest rung':<34} p50={ratio:5.2f}x "
          f"(target <= {TARGET_PLAYABLE_RATIO}x)")

if __name__ == "__main__":
    main()
