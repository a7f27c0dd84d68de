"""Does the order in which a ladder's rungs run change what they cost? Raw ffmpeg only.

The whole ladder's target (`bench/pipeline.py`) is to finish no later than its commands run
one after another. On two cores the ladder is CPU-bound, so the only way past that target is
for parallel runs to cost less than serial ones. This bench runs the rungs that follow the
first wave (every rung above the lowest, and the storyboard), with the worker's exact
commands, reading the clip from a local file:

- in turn (the bench's reference);
- all at once (what the operator does);
- all at once, each ffmpeg limited to one thread;
- all at once, one thread each except the tallest rung (which ends last);
- the video rungs from one decode: one ffmpeg with a split filter writing every rung, which
  is not what a TranscodeJob can do today (one Job makes one rendition).

Not a test. Each line is wall and CPU time; the runs alternate, `--rounds` times.

    .venv/bin/python -m bench.ladder_schedule [--seconds 20 --height 720] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.stats import load_note
from mediaplane.core import commands
from mediaplane.core.ladder import Ladder, plan_variants
from mediaplane.core.tasks import MediaKind, ProbeResult, VariantSpec, VariantType
from tests.support.media import video_clip

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mediaplane" / "bench"
# Options of the worker's network input that a local file does not take.
NETWORK_ONLY = ("-reconnect", "-reconnect_on_network_error", "-reconnect_delay_max",
                "-rw_timeout")


def local(argv: list[str]) -> list[str]:
    """The worker's command, reading a local file instead of a presigned URL."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in NETWORK_ONLY:
            skip = True
        else:
            out.append("file" if arg == commands.INPUT_PROTOCOLS else arg)
    return out


def with_threads(argv: list[str], threads: int) -> list[str]:
    """`threads` for the decoder (before the input) and the encoder (before the output)."""
    if not threads:
        return argv
    at = argv.index("-i")
    argv = [*argv[:at], "-threads", str(threads), *argv[at:]]
    return [*argv[:-1], "-threads", str(threads), argv[-1]]


def after_first_wave(seconds: int, height: int) -> list[VariantSpec]:
    probe = ProbeResult(detected_mime="video/mp4", format_name="mov", width=height * 16 // 9,
                        height=height, has_video=True, has_audio=True,
                        duration_seconds=seconds)
    plan = plan_variants(MediaKind.VIDEO, Ladder(), probe)
    videos = sorted((v for v in plan if v.type is VariantType.VIDEO), key=lambda v: v.height or 0)
    storyboard = [v for v in plan if v.type is VariantType.STORYBOARD]
    return [*videos[1:], *storyboard]


def command(source: Path, spec: VariantSpec, threads: int = 0) -> list[str]:
    out = Path(tempfile.mkdtemp(prefix=f"ladder-{spec.name}-"))
    if spec.type is VariantType.STORYBOARD:
        return local(commands.storyboard_command(str(source), spec, out))
    return with_threads(local(commands.video_command(str(source), spec, out)), threads)


def decode_once(source: Path, rungs: list[VariantSpec]) -> list[str]:
    """One ffmpeg, one decode, every video rung (same encoder settings, plain MP4 out)."""
    splits = "".join(f"[v{i}]" for i in range(len(rungs)))
    graph = f"[0:v]split={len(rungs)}{splits};" + ";".join(
        f"[v{i}]scale=w=-2:h=trunc(min({r.height}\\,ih)/2)*2[o{i}]" for i, r in enumerate(rungs))
    out = Path(tempfile.mkdtemp(prefix="ladder-once-"))
    argv = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source),
            "-filter_complex", graph]
    for i, rung in enumerate(rungs):
        kbps = rung.video_bitrate_kbps or 0
        argv += ["-map", f"[o{i}]", "-c:v", "libx264", "-preset", "veryfast", "-profile:v",
                 "high", "-pix_fmt", "yuv420p", "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k",
                 "-bufsize", f"{2 * kbps}k", "-sc_threshold", "0", "-force_key_frames",
                 f"expr:gte(t,n_forced*{rung.segment_seconds})", str(out / f"{rung.name}.mp4")]
    return argv


def timed(run: Callable[[], None]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    run()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def at_once(argvs: list[list[str]]) -> None:
    procs = [subprocess.Popen(a) for a in argvs]
    if any(p.wait() != 0 for p in procs):
        raise RuntimeError("an ffmpeg failed")


def in_turn(argvs: list[list[str]]) -> None:
    for argv in argvs:
        subprocess.run(argv, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    clip = video_clip(CACHE, seconds=args.seconds, width=args.height * 16 // 9,
                      height=args.height, channels=2)
    source = clip.path
    specs = after_first_wave(args.seconds, args.height)
    videos = [s for s in specs if s.type is VariantType.VIDEO]
    tallest = max(videos, key=lambda v: v.height or 0).name
    ways: dict[str, Callable[[], None]] = {
        "in turn": lambda: in_turn([command(source, s) for s in specs]),
        "all at once": lambda: at_once([command(source, s) for s in specs]),
        "at once, 1 thread each": lambda: at_once([command(source, s, 1) for s in specs]),
        "at once, 1 thread but the tallest": lambda: at_once(
            [command(source, s, 0 if s.name == tallest else 1) for s in specs]),
        "video rungs from one decode": lambda: in_turn(
            [decode_once(source, videos),
             *[command(source, s) for s in specs if s.type is not VariantType.VIDEO]]),
    }
    print(f"{args.seconds} s {args.height}p, after the first wave: "
          f"{', '.join(s.name for s in specs)}; {load_note()}")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, way in ways.items():
            results[name].append(timed(way))
    reference = min(wall for wall, _ in results["in turn"])
    for name, runs in results.items():
        walls = ", ".join(f"{wall:6.2f}" for wall, _ in runs)
        cpus = ", ".join(f"{cpu:6.2f}" for _, cpu in runs)
        best = min(wall for wall, _ in runs)
        print(f"  {name:<36} wall {walls} s | CPU {cpus} s | best / best in turn "
              f"{best / reference:5.3f}")


if __name__ == "__main__":
    main()
