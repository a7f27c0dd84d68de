"""Segment-parallel encoding: what a chunk costs, what splitting adds, and a projection of a
60-minute upload to playable on many workers.

Not a test. On the dev environment, with a 5-minute 1080p H.264/AAC clip (made once and
cached), it measures:

1. raw ffmpeg: the lowest rung encoded whole, then as 2 and 4 chunks one after the other
   (the exact worker commands, through presigned URLs): wall and CPU time of each chunk,
   and the CPU the split adds over the whole encode (seeks, decoding from the keyframe
   before each start, rate control restarting);
2. the pipeline: the same clip through the operator with chunking off, then 2 and 4 chunks
   (a one-rung ladder, so the run measures the rung that decides when viewers can start):
   create → first chunk pod running → playable, and the operator's join;
3. the audio rendition (whole, copied, and encoded in chunks like the rung) and the probe's
   hash rate, the other steps before "playable".

From those it prints a projection of a 60-minute 1080p upload to playable on N workers,
with its assumptions. The machine has 2 cores: its wall times for several chunks at once
are contention, which is why the projection is built from CPU time per chunk.

    .venv/bin/python -m bench.chunks [--seconds 300] [--workers 20] [--no-pipeline]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as k8s

from bench.pipeline import bench_tenant, measure_one
from bench.stats import row
from mediaplane.core import keys, names
from mediaplane.core.commands import audio_command, video_command
from mediaplane.core.ladder import Ladder, plan_variants
from mediaplane.core.manifests import dash
from mediaplane.core.storage import Storage
from mediaplane.core.tasks import (
    MediaKind,
    ProbeResult,
    RenditionChunk,
    VariantSpec,
    VariantType,
)
from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.services import start_operator
from tests.support.media import Media, video_clip

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mediaplane" / "bench"
PROJECTED_SECONDS = 3600
TARGET_PROJECTED = 60.0


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float


def timed(argv: list[str]) -> Run:
    """Wall and CPU (user + system) time of one ffmpeg run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True, timeout=3600)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Run(wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def lowest_rung(seconds: float, ladder: Ladder, *, whole: bool = False) -> VariantSpec:
    """The ladder's lowest rung for a 1080p source of `seconds` (`whole`: in one piece)."""
    probe = ProbeResult(detected_mime="video/mp4", format_name="mov", width=1920, height=1080,
                        has_video=True, has_audio=True, duration_seconds=seconds)
    spec = next(v for v in plan_variants(MediaKind.VIDEO, ladder, probe)
                if v.type is VariantType.VIDEO)
    if whole:
        return spec.model_copy(update={"chunks": None, "chunk_seconds": None,
                                       "chunk_parallelism": None})
    return spec


def chunking_ladder(seconds: float, chunks: int, segment: int = 4) -> Ladder:
    """A one-rung ladder (240p, audio) that splits a `seconds` clip into `chunks`."""
    rung = {"video": [{"name": "240p", "height": 240, "video_bitrate_kbps": 400}],
            "poster": False, "storyboard": None, "segment_seconds": segment}
    if chunks == 1:
        return Ladder.model_validate({**rung, "chunking": None})
    length = math.ceil(seconds / chunks / segment) * segment
    ladder = Ladder.model_validate({**rung, "chunking": {
        "min_seconds": 0, "chunk_seconds": length, "parallelism": chunks}})
    planned = lowest_rung(seconds, ladder)
    assert planned.chunks == chunks, f"{chunks} chunks planned as {planned.chunks}"
    return ladder


def raw_chunks(storage: Storage, key: str, seconds: float, chunks: int,
               work: Path) -> list[Run]:
    """Each chunk of the lowest rung encoded alone, one after the other."""
    spec = lowest_rung(seconds, chunking_ladder(seconds, chunks))
    runs = []
    for index in range(chunks):
        out = work / f"raw-{chunks}-{index}"
        out.mkdir()
        chunk = spec.chunk_range(index) if spec.chunks else None
        runs.append(timed(video_command(storage.presign_get(key, 3600), spec, out, chunk)))
    return runs


def raw_audio(storage: Storage, key: str, ladder: Ladder, work: Path, *, copy: bool) -> Run:
    """The video's audio rendition, encoded, or copied as the ladder does for stereo AAC
    (the clip's tone is mono: copying it costs the same read and remux)."""
    probe = ProbeResult(detected_mime="video/mp4", format_name="mov", width=1920, height=1080,
                        has_video=True, has_audio=True, duration_seconds=1)
    spec = next(v for v in plan_variants(MediaKind.VIDEO, ladder, probe)
                if v.type is VariantType.AUDIO).model_copy(update={"audio_copy": copy})
    out = work / f"raw-audio-{'copy' if copy else 'encode'}"
    out.mkdir()
    return timed(audio_command(storage.presign_get(key, 3600), spec, out))


def raw_audio_chunks(storage: Storage, key: str, seconds: float, chunks: int,
                     work: Path) -> list[Run]:
    """Each chunk of the encoded audio rendition alone, one after the other (what the ladder
    does with the encoded audio of a long video: same chunks as the rung's)."""
    ladder = chunking_ladder(seconds, chunks)
    probe = ProbeResult(detected_mime="video/mp4", format_name="mov", width=1920, height=1080,
                        has_video=True, has_audio=True, duration_seconds=seconds)
    spec = next(v for v in plan_variants(MediaKind.VIDEO, ladder, probe)
                if v.type is VariantType.AUDIO)
    assert spec.chunks == chunks, spec
    assert not spec.audio_copy, spec
    runs = []
    for index in range(chunks):
        out = work / f"raw-audio-{chunks}-{index}"
        out.mkdir()
        runs.append(timed(audio_command(storage.presign_get(key, 3600), spec, out,
                                        spec.chunk_range(index))))
    return runs


def makespan(tasks: list[float], workers: int) -> float:
    """When the last of `tasks` (seconds each) ends on `workers` workers that each take the
    next task as soon as they are free, longest first (the Job controller starts every
    Job's pods at once; a worker freed takes whatever pod waits)."""
    free = [0.0] * workers
    for task in sorted(tasks, reverse=True):
        free.sort()
        free[0] += task
    return max(free)


def hash_rate(data: bytes) -> float:
    """Bytes per CPU second of the probe's sha256 on this machine (CPU time, like the
    chunks': other work on the same cores would make a wall time mean nothing)."""
    started = time.process_time()
    hashlib.sha256(data).hexdigest()
    return len(data) / (time.process_time() - started)


@dataclass(frozen=True)
class Pipeline:
    first_pod: float
    playable: float
    chunk_pod_seconds: list[float]  # each chunk pod's run, from its status
    join_seconds: float


def _pod_seconds(pod: k8s.V1Pod) -> float | None:
    for status in pod.status.container_statuses or []:
        ended = status.state.terminated if status.state else None
        if ended is not None and ended.started_at and ended.finished_at:
            return float((ended.finished_at - ended.started_at).total_seconds())
    return None


def pipeline_run(custom: k8s.CustomObjectsApi, core: k8s.CoreV1Api, storage: Storage,
                 tenant: str, clip: Media) -> Pipeline:
    asset_id = names.new_asset_id()
    name = names.name_from_asset_id(asset_id)
    marks = measure_one(custom, core, storage, tenant, clip, until="playable", timeout=1800,
                        asset_id=asset_id)
    rung = names.child_name(name, "240p")
    selector = f"{names.BATCH_JOB_NAME_LABEL}={rung}"
    pods = core.list_namespaced_pod(tenant, label_selector=selector).items
    chunk_seconds = [s for p in pods if (s := _pod_seconds(p)) is not None]
    return Pipeline(marks.get("first_pod", math.nan), marks["playable"], chunk_seconds,
                    join_cost(storage, tenant, asset_id, custom, rung))


def join_cost(storage: Storage, tenant: str, asset_id: str, custom: k8s.CustomObjectsApi,
              rung: str) -> float:
    """The operator's join of this rung, redone here: read the chunks' results, join the
    manifests, store them (0 for a rung made in one piece)."""
    tj = custom.get_namespaced_custom_object(names.GROUP, names.VERSION, tenant,
                                             names.JOB_PLURAL, rung)
    variant = VariantSpec.model_validate(tj["spec"]["variant"])
    if not variant.chunks:
        return 0.0
    prefix = keys.variant_prefix(tenant, asset_id, variant.name)
    started = time.monotonic()
    parts = [RenditionChunk.model_validate_json(storage.get_text(
        prefix + RenditionChunk.file_name(i))) for i in range(variant.chunks)]
    mpd = dash.join([p.mpd for p in parts])
    storage.put_text(prefix + "bench-join.mpd", mpd, "application/dash+xml")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300, help="clip duration")
    parser.add_argument("--counts", default="1,2,4", help="chunk counts to measure")
    parser.add_argument("--workers", type=int, default=20, help="for the projection")
    parser.add_argument("--no-pipeline", action="store_true",
                        help="raw ffmpeg and the projection only (pod start taken as 1 s)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]

    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"making or reusing the {args.seconds} s 1080p clip in {CACHE} ...", flush=True)
    clip = video_clip(CACHE, seconds=args.seconds, width=1920, height=1080)
    with tempfile.TemporaryDirectory(prefix="mediaplane-bench-") as tmp:
        work = Path(tmp)
        with DevCluster(work / "cluster") as cluster:
            custom, core, storage, tenant, raw_key = bench_tenant(cluster, clip)

            raw = {n: raw_chunks(storage, raw_key, args.seconds, n, work) for n in counts}
            audio = {copy: raw_audio(storage, raw_key, Ladder(), work, copy=copy)
                     for copy in (False, True)}
            audio_chunks = raw_audio_chunks(storage, raw_key, args.seconds, max(counts), work)
            hashing = hash_rate(clip.data)

            pipelines: dict[int, Pipeline] = {}
            for n in [] if args.no_pipeline else counts:
                ladder_file = work / f"ladder-{n}.json"
                ladder_file.write_text(json.dumps(
                    chunking_ladder(args.seconds, n).model_dump(mode="json")))
                os.environ["MEDIAPLANE_LADDER_FILE"] = str(ladder_file)
                operator = start_operator(cluster)
                try:
                    pipelines[n] = pipeline_run(custom, core, storage, tenant, clip)
                finally:
                    operator.stop()

    report(args, clip, raw, audio, audio_chunks, hashing, pipelines)


def report(args: argparse.Namespace, clip: Media, raw: dict[int, list[Run]],
           audio: dict[bool, Run], audio_chunks: list[Run],
           hashing: float, pipelines: dict[int, Pipeline]) -> None:
    seconds = args.seconds
    whole = raw[min(raw)]
    whole_cpu = sum(r.cpu for r in whole)
    print(f"\nclip: {seconds} s 1920x1080 25 fps H.264/AAC, {clip.size / 1e6:.0f} MB; "
          f"lowest rung 240p; 2 cores; load average {os.getloadavg()[0]:.1f}")
    print("\nraw ffmpeg, lowest rung, chunks encoded one after the other:")
    for n, runs in raw.items():
        cpu = sum(r.cpu for r in runs)
        print(f"  {n} chunk(s): wall per chunk {statistics.fmean(r.wall for r in runs):6.2f} s, "
              f"CPU per chunk {statistics.fmean(r.cpu for r in runs):6.2f} s, CPU total "
              f"{cpu:6.2f} s = {cpu / whole_cpu:5.3f}x the whole encode "
              f"(overhead {100 * (cpu / whole_cpu - 1):+.1f}%)")
    print(f"  audio rendition, encoded (AAC 128k, whole): wall {audio[False].wall:.2f} s, "
          f"CPU {audio[False].cpu:.2f} s")
    chunked_cpu = sum(r.cpu for r in audio_chunks)
    print(f"  audio rendition, encoded in {len(audio_chunks)} chunks: CPU per chunk "
          f"{statistics.fmean(r.cpu for r in audio_chunks):.2f} s, total {chunked_cpu:.2f} s = "
          f"{chunked_cpu / audio[False].cpu:5.3f}x the whole encode (each chunk encodes 8 "
          "frames before and after its own)")
    print(f"  audio rendition, copied (stereo AAC-LC sources): wall {audio[True].wall:.2f} s, "
          f"CPU {audio[True].cpu:.2f} s")
    print(f"  probe's sha256: {hashing / 1e6:.0f} MB/s")

    print("\npipeline on the dev cluster (one 240p rung + audio, the clip's mono sound "
          "encoded and chunked like the rung), creation to:")
    for n, p in pipelines.items():
        print(f"  {n} chunk(s): first rung pod running {p.first_pod:5.2f} s, playable "
              f"{p.playable:6.2f} s (raw whole {statistics.fmean(r.wall for r in whole):.2f} s:"
              f" {p.playable / statistics.fmean(r.wall for r in whole):4.2f}x); chunk pods "
              f"{', '.join(f'{s:.1f}' for s in sorted(p.chunk_pod_seconds))} s; join "
              f"{p.join_seconds * 1000:.0f} ms")
    if len(pipelines) > 1:
        print(row("  join (operator's, redone here)",
                  [p.join_seconds for p in pipelines.values() if p.join_seconds]))
    project(args, raw, audio, audio_chunks, hashing, pipelines, clip)


def project(args: argparse.Namespace, raw: dict[int, list[Run]], audio: dict[bool, Run],
            audio_chunks: list[Run], hashing: float, pipelines: dict[int, Pipeline],
            clip: Media) -> None:
    """60 minutes of 1080p to playable on `workers` one-core workers of this machine's
    speed, from this run's figures: once with the audio copied (a camera's or phone's
    stereo AAC), once with it encoded (any other audio)."""
    seconds, workers = args.seconds, args.workers
    most = max(raw)
    cpu_per_second = sum(r.cpu for r in raw[most]) / seconds  # the split's cost included
    ladder = Ladder()
    rung = lowest_rung(PROJECTED_SECONDS, ladder)
    chunks = rung.chunks or 1
    chunk_seconds = rung.chunk_seconds or PROJECTED_SECONDS
    rounds = math.ceil(chunks / workers)
    starts = [p.first_pod for p in pipelines.values() if not math.isnan(p.first_pod)]
    pod_start = statistics.median(starts) if starts else 1.0
    join = max((p.join_seconds for p in pipelines.values()), default=0.0) * chunks / most
    source_bytes = clip.size * PROJECTED_SECONDS / seconds
    probe = source_bytes / hashing
    video = rounds * (pod_start + chunk_seconds * cpu_per_second)
    # Encoded audio is chunked like the rung: its chunks share the workers with the rung's.
    audio_per_second = sum(r.cpu for r in audio_chunks) / seconds  # pre- and post-roll in
    audio_chunk = pod_start + chunk_seconds * audio_per_second
    print(f"\nprojection: {PROJECTED_SECONDS // 60}-minute 1080p upload to playable on "
          f"{workers} workers")
    print(f"  assumptions: each worker one core of this machine, no contention between "
          f"them, storage not limiting; the ladder's default {chunk_seconds} s chunks "
          f"({chunks} chunks, chunk parallelism raised to {workers}); pod start "
          f"{pod_start:.2f} s (median of this run's first pods); probe hashes "
          f"{source_bytes / 1e9:.1f} GB at {hashing / 1e6:.0f} MB/s; a copied audio in one "
          f"pod, an encoded one in {chunks} chunks beside the rung's (a freed worker takes "
          f"the next waiting pod, longest first)")
    copied = pod_start + audio[True].wall * PROJECTED_SECONDS / seconds
    total = probe + max(video, copied) + join
    print(f"  audio copied (stereo AAC-LC source): probe {probe:5.1f} s | 240p: {rounds} "
          f"round(s) x ({pod_start:.2f} s + {chunk_seconds} s x {cpu_per_second:.3f} CPU-s/s)"
          f" = {video:5.1f} s | audio {copied:6.1f} s | join {join:4.2f} s")
    print(f"    => playable after {total:6.1f} s (goal <= {TARGET_PROJECTED:.0f} s: "
          f"{total / TARGET_PROJECTED:4.2f}x); critical path: "
          f"{'the audio rendition' if copied > video else 'the 240p chunks'}")
    both = makespan([pod_start + chunk_seconds * cpu_per_second] * chunks
                    + [audio_chunk] * chunks, workers)
    total = probe + both + 2 * join
    whole_audio = pod_start + audio[False].cpu * PROJECTED_SECONDS / seconds
    print(f"  audio encoded (any other source): probe {probe:5.1f} s | {chunks} 240p chunks of "
          f"{pod_start + chunk_seconds * cpu_per_second:.1f} s and {chunks} audio chunks of "
          f"{audio_chunk:.1f} s ({pod_start:.2f} s + {chunk_seconds} s x "
          f"{audio_per_second:.4f} CPU-s/s) on {workers} workers: {both:5.1f} s | joins "
          f"{2 * join:4.2f} s")
    print(f"    => playable after {total:6.1f} s (goal <= {TARGET_PROJECTED:.0f} s: "
          f"{total / TARGET_PROJECTED:4.2f}x); the audio in one pod instead would take "
          f"{whole_audio:.1f} s alone")


if __name__ == "__main__":
    main()
