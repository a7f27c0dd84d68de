"""A worker pod's own cost: the worker command running a real 240p task against raw ffmpeg
running the same command, in the same run.

Not a test. A 20 s 1280x720 clip is served over loopback HTTP by a stand-in for S3 (GET
serves the clip, POST accepts the upload, as a presigned POST would), and each run encodes
the lowest rung three times, alternately: raw ffmpeg with the worker's exact argv, the worker
command with the task in its environment (parsing the task, logging, ffmpeg, checking the
manifests, uploading the segments), and the same with the first command launched as the
operator renders it (`MEDIAPLANE_LAUNCH`: ffmpeg starts before the worker loads). The
difference is what a pod spends on Python, on the path to playable. Measured for the worker
as its image installs it (its distribution alone in a fresh virtualenv, built from wheels)
and for the development virtualenv's (the dev cluster's pods run that one), plus the import
of the worker's modules alone.

    .venv/bin/python -m bench.worker_start [--runs N] [--worker PATH ...]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.pipeline import CACHE
from bench.raw import lowest_rung
from bench.stats import load_note, row
from mediaplane.core.commands import first_command, video_command
from mediaplane.core.tasks import LAUNCH_ENV, PresignedPost, TaskType, WorkerTask
from tests.support.images import build_wheelhouse, install
from tests.support.media import video_clip
from tests.support.origin import origin

ASSET = "mda_01arz3ndektsv4rrffq69g5fav"
IMPORTS = "import mediaplane.worker.main, mediaplane.worker.transcode"


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, children included) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600,
                          check=False, cwd="/")
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {done.stderr[-1000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(worker: Path, url: str, upload: str, runs: int, scratch: Path) -> None:
    spec = lowest_rung(720)
    task = WorkerTask(type=TaskType.VIDEO, input_url=url, variant=spec,
                      output=PresignedPost(url=upload, fields={"policy": "stand-in"},
                                           key_prefix=f"t-bench/{ASSET}/{spec.name}/"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "MEDIAPLANE_TASK": task.model_dump_json(exclude_none=True),
           "MEDIAPLANE_RESULT_PATH": str(scratch / "result"),
           "MEDIAPLANE_SCRATCH": str(scratch)}
    first = first_command(task)
    assert first is not None
    launched_env = env | {LAUNCH_ENV: first.to_json()}
    raw: list[tuple[float, float]] = []
    ours: list[tuple[float, float]] = []
    launched: list[tuple[float, float]] = []
    for index in range(runs + 1):  # the first round warms the caches and is not counted
        out = Path(tempfile.mkdtemp(prefix="raw-", dir=scratch))
        times = (timed(video_command(url, spec, out)), timed([str(worker)], env),
                 timed([str(worker)], launched_env))
        if index:
            raw.append(times[0])
            ours.append(times[1])
            launched.append(times[2])
    python = worker.parent / "python"
    imports = [timed([str(python), "-c", IMPORTS]) for _ in range(runs * 2)]
    print(f"\nworker {worker} ({runs} runs)")
    print(row("raw ffmpeg, 240p", [w for w, _ in raw]))
    print(row("worker command, same 240p", [w for w, _ in ours]))
    print(row("  worker - raw, wall", [o[0] - r[0] for o, r in zip(ours, raw, strict=True)]))
    print(row("  worker - raw, CPU", [o[1] - r[1] for o, r in zip(ours, raw, strict=True)]))
    print(row("worker, its first ffmpeg launched", [w for w, _ in launched]))
    print(row("  launched - raw, wall",
              [o[0] - r[0] for o, r in zip(launched, raw, strict=True)]))
    print(row("  launched - raw, CPU",
              [o[1] - r[1] for o, r in zip(launched, raw, strict=True)]))
    print(row("import of main and transcode, CPU", [c for _, c in imports]))
    print(f"{'  (and the interpreter alone)':<34} "
          f"{statistics.median(timed([str(python), '-c', 'pass'])[1] for _ in range(5)):7.3f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--worker", action="append", type=Path,
                        help="a mediaplane-worker command (default: the image's, the dev "
                        "virtualenv's)")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    clip = video_clip(CACHE, seconds=20, width=1280, height=720, channels=2)
    with tempfile.TemporaryDirectory(prefix="mediaplane-bench-") as tmp:
        work = Path(tmp)
        workers = args.worker or [
            install("worker", build_wheelhouse(), work / "image").python.parent
            / "mediaplane-worker",
            Path(sys.executable).parent / "mediaplane-worker"]
        with origin(clip.path.parent) as base:
            print(f"clip: 20s 1280x720 H.264/AAC, {clip.size / 1e6:.1f} MB, over loopback "
                  f"HTTP; {load_note()}")
            for worker in workers:
                measure(worker, f"{base}/{clip.path.name}", f"{base}/upload", args.runs, work)


if __name__ == "__main__":
    main()
