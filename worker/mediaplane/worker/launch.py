"""The `mediaplane-worker` command: start the pod's first ffmpeg, then load the worker.

A rendition pod's ffmpeg used to wait for the interpreter to load pydantic and our task
models (0.15 CPU seconds, on the path to playable). The operator now renders that first
command into the pod's environment (`commands.first_command`, in `podenv.LAUNCH_ENV`), so
this module, which imports only the standard library, starts it at once in the pod's
scratch directory. The worker then reads its task as before and adopts the running ffmpeg
only if it is exactly the task's own first command (`main.adoptable`); otherwise it stops
it, removes what it wrote, and runs its own. A launch is never trusted more than the task:
it is a head start on the same command.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from mediaplane.core.podenv import FFMPEG, LAUNCH_ENV, SCRATCH_ENV

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import FrameType


@dataclass
class Launched:
    """An ffmpeg started before the task was read, writing into `dirs` under `scratch`
    (its working directory), its output going to two files that `process.run` reads once
    it adopts it."""

    argv: list[str]
    dirs: list[str]
    scratch: Path
    proc: subprocess.Popen[bytes]
    stdout: IO[bytes]
    stderr: IO[bytes]
    started: float = field(default_factory=time.monotonic)

    def discard(self) -> None:
        """Stops the command if it still runs and removes everything it wrote."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _strings(value: object) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def launchable(raw: str | None) -> tuple[list[str], list[str]] | None:
    """(argv, dirs) from LAUNCH_ENV when it holds a launch: an ffmpeg command, and the
    plain directory names it writes into."""
    if not raw:
        return None
    try:
        launch = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(launch, dict):
        return None
    argv, dirs = _strings(launch.get("argv")), _strings(launch.get("dirs"))
    if not argv or argv[0] != FFMPEG or dirs is None:
        return None
    if any(not name or name in (".", "..") or "/" in name or "\\" in name for name in dirs):
        return None
    return argv, dirs


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The task (with its presigned URLs) is none of ffmpeg's business."""
    return {k: v for k, v in environ.items() if not k.startswith("MEDIAPLANE_")}


def start(environ: Mapping[str, str]) -> Launched | None:
    """Starts the launch in `environ`, if it has one, in a fresh scratch directory. A
    launch that cannot start (no room for its directory, no ffmpeg) is left to the worker,
    which then meets the same problem and reports it in its result."""
    launch = launchable(environ.get(LAUNCH_ENV))
    if launch is None:
        return None
    argv, dirs = launch
    base = environ.get(SCRATCH_ENV) or None
    scratch: Path | None = None
    try:
        if base:
            Path(base).mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="task-", dir=base))
        for name in dirs:
            (scratch / name).mkdir(exist_ok=True)
        stdout = tempfile.TemporaryFile(dir=scratch)  # noqa: SIM115 (handed to process.run)
        stderr = tempfile.TemporaryFile(dir=scratch)  # noqa: SIM115
        proc = subprocess.Popen(argv, cwd=scratch, stdin=subprocess.DEVNULL, stdout=stdout,
                                stderr=stderr, env=child_env(environ))
    except OSError:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        return None
    return Launched(argv=argv, dirs=dirs, scratch=scratch, proc=proc, stdout=stdout,
                    stderr=stderr)


# The worker's own work while its launched encode runs (loading pydantic and our models, the
# probe's download and checks, storing segments) competes with that encode for the pod's
# cores. Once the launch has started, the worker adds this to its nice value, and the
# processes it starts later inherit it. The launched ffmpeg keeps the pod's weight. The
# worker stays weighed against other pods of its class, a few steps lower. The change is
# one way: an unprivileged process cannot lower its nice value again.
WORKER_NICE_OFFSET = 5


def yield_to(launched: Launched | None) -> None:
    """Lowers the worker's priority under its launched encode; without a launch, the worker
    runs its own ffmpeg, which must not inherit that."""
    if launched is None:
        return
    with contextlib.suppress(OSError):  # not allowed here: the worker works as before
        os.nice(WORKER_NICE_OFFSET)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM before the worker installed its own handler: exit as a process killed by it
    would, ffmpeg stopped on the way out (`run`)."""
    del frame
    raise SystemExit(128 + signum)


def run() -> None:
    """Starts the launch, then hands it to the worker (`main.run`). A SIGTERM before the
    worker's own handler is in place stops ffmpeg too."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    launched = None
    try:
        launched = start(os.environ)
        yield_to(launched)
        from mediaplane.worker import main
    except BaseException:
        if launched is not None:
            launched.discard()
        raise
    main.run(launched)
