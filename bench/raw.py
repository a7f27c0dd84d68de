"""The ladder's ffmpeg commands outside Kubernetes: what `bench.pipeline` measures the
pipeline against.

- `raw_run`: one variant exactly as the worker encodes it, read through a presigned URL
  (the lowest rung is playable's reference);
- `raw_job`: one Job's command (a variant, a shared decode, the probe's pod's rung with
  the audio it copies); the Jobs' commands run in turn are complete's reference;
- `bare_ladder`: the same commands with the rest of what the pipeline cannot skip, in one
  process and the best order, with no pod, no interpreter start and no control plane. The
  first wave encodes while the source is downloaded, hashed, sniffed and ffprobed beside
  it (the probe's checks); the other Jobs' commands then start at once, and every output
  is stored in S3 as its command ends. What the pipeline takes beyond this is what
  Kubernetes costs on these cores; what this takes beyond the commands in turn is what
  the checks and the uploads cost once the idle time in turn has paid for what it can.
"""

from __future__ import annotations

import resource
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mediaplane.core import commands
from mediaplane.core.ladder import Ladder, plan_variants
from mediaplane.core.storage import Storage
from mediaplane.core.tasks import MediaKind, ProbeResult, VariantSpec, VariantType
from mediaplane.worker import hostile
from mediaplane.worker.download import fetch
from mediaplane.worker.sniff import sniff_file


@dataclass(frozen=True)
class Raw:
    name: str
    wall: float
    cpu: float


def timed(name: str, argv: list[str], cwd: Path | None = None) -> Raw:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True, timeout=3600, cwd=cwd)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Raw(name, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def lowest_rung(height: int) -> VariantSpec:
    probe = ProbeResult(detected_mime="video/mp4", format_name="mov", width=height * 16 // 9,
                        height=height, has_video=True, has_audio=True, duration_seconds=1)
    return next(v for v in plan_variants(MediaKind.VIDEO, Ladder(), probe)
                if v.type is VariantType.VIDEO)


def raw_command(url: str, spec: VariantSpec, out: Path) -> list[str]:
    """The worker's ffmpeg command for `spec` (a rung, the audio, a still, a storyboard)."""
    if spec.type is VariantType.VIDEO:
        return commands.video_command(url, spec, out)
    if spec.type is VariantType.AUDIO:
        return commands.audio_command(url, spec, out)
    if spec.type is VariantType.POSTER:
        return commands.poster_command(url, spec, out)
    if spec.type is VariantType.STORYBOARD:
        return commands.storyboard_command(url, spec, out)
    return commands.image_command(url, spec, out)


def raw_run(storage: Storage, key: str, spec: VariantSpec, scratch: Path) -> Raw:
    """One variant exactly as the worker encodes it, read through a presigned URL."""
    out = Path(tempfile.mkdtemp(prefix=f"raw-{spec.name}-", dir=scratch))
    return timed(spec.name, raw_command(storage.presign_get(key, 3600), spec, out))


@dataclass(frozen=True)
class JobCommand:
    name: str
    argv: list[str]
    cwd: Path | None
    outputs: list[Path]  # the directories it writes into


def job_command(url: str, job: list[VariantSpec], scratch: Path) -> JobCommand:
    """One Job's ffmpeg exactly as its worker runs it: one variant, a shared decode, or the
    probe's pod's rung with the audio it copies."""
    name = "+".join(spec.name for spec in job)
    if len(job) == 1:
        out = Path(tempfile.mkdtemp(prefix=f"raw-{job[0].name}-", dir=scratch))
        return JobCommand(name, raw_command(url, job[0], out), None, [out])
    if [spec.type for spec in job] == [VariantType.VIDEO, VariantType.AUDIO]:
        out = Path(tempfile.mkdtemp(prefix="raw-probe-", dir=scratch))
        dirs = [out / commands.OUT_DIR, out / commands.AUDIO_OUT_DIR]
        for path in dirs:
            path.mkdir()
        argv = commands.rung_and_audio_command(url, job[0], job[1], Path(commands.OUT_DIR),
                                               Path(commands.AUDIO_OUT_DIR))
        return JobCommand(name, argv, out, dirs)
    outs = [Path(tempfile.mkdtemp(prefix=f"raw-{spec.name}-", dir=scratch)) for spec in job]
    argv = commands.shared_video_command(url, list(zip(job, outs, strict=True)))
    return JobCommand(name, argv, None, outs)


def raw_job(storage: Storage, key: str, job: list[VariantSpec], scratch: Path) -> Raw:
    command = job_command(storage.presign_get(key, 3600), job, scratch)
    return timed(command.name, command.argv, cwd=command.cwd)


@dataclass(frozen=True)
class Bare:
    wall: float  # the first command's start to the last output stored
    first_wave: float  # the first wave's command and the probe's checks both done


def bare_ladder(storage: Storage, key: str, plan: list[list[VariantSpec]], size: int,
                scratch: Path) -> Bare:
    """The whole ladder's work with nothing of Kubernetes (see the module's docstring).
    `plan` is the asset's Jobs as `bench.pipeline.planned_variants` reads them; the one
    with the lowest rung is the first wave."""
    url = storage.presign_get(key, 3600)
    first = min((job for job in plan if job[0].type is VariantType.VIDEO),
                key=lambda job: job[0].height or 0)
    rest = [job_command(url, job, scratch) for job in plan if job is not first]
    wave = job_command(url, first, scratch)
    stored: list[Future[object]] = []
    run = uuid.uuid4().hex

    def store(command: JobCommand) -> None:
        for out in command.outputs:
            stored.extend(uploads.submit(storage.client.put_object, Bucket=storage.bucket,
                                         Key=f"bench-bare/{run}/{out.name}/{path.relative_to(out)}",
                                         Body=path.read_bytes())
                          for path in sorted(out.rglob("*")) if path.is_file())

    with ThreadPoolExecutor(8) as uploads:
        started = time.monotonic()
        encode = subprocess.Popen(wave.argv, cwd=wave.cwd, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        source = scratch / "source"
        fetched = fetch(url, source, size)
        family = sniff_file(source)
        if fetched.sha256 is None or family is None or hostile.inspect_bytes(source, family):
            raise RuntimeError(f"the probe's checks refused the bench's clip ({family})")
        subprocess.run(commands.probe_command(source, MediaKind.VIDEO), check=True,
                       capture_output=True, timeout=600)
        if encode.wait(timeout=3600) != 0:
            raise RuntimeError(f"{wave.name} failed")
        first_wave = time.monotonic() - started
        store(wave)
        running = [(command, subprocess.Popen(command.argv, cwd=command.cwd,
                                              stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
                   for command in rest]
        for command, process in running:
            if process.wait(timeout=3600) != 0:
                raise RuntimeError(f"{command.name} failed")
            store(command)
        for upload in stored:
            upload.result()
        return Bare(time.monotonic() - started, first_wave)
