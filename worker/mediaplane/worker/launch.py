"""The `mediaplane-worker` command: start the pod's first ffmpeg, then load the worker.

A rendition pod's ffmpeg used to wait for the interpreter to load pydantic and our task
models (0.15 CPU seconds, on the path to playable). The operator now renders that first
command into the pod's environment (`commands.first_command`, in `podenv.LAUNCH_ENV`), so
this module, which imports only the standard library, starts it at once in the pod's
scratch directory. The worker then reads its task as before and adopts the running ffmpeg
only if it is exactly the task's own first command (`main.adoptable`); otherwise it stops
it, removes what it wrote, and runs its own. A launch is never trusted more than the task:
it is a head start on the same command.

Every module imported before that ffmpeg starts delays it. From exec to ffmpeg took 30 ms
with dataclasses, pathlib, tempfile and shutil loaded first, and takes 19 ms with only
`os`, `json` and `subprocess` (docs/performance.md). The rest is loaded after the spawn, or
only on a way out that needs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from mediaplane.core.podenv import FFMPEG, LAUNCH_ENV, SCRATCH_ENV

# `typing` costs 2 ms before the spawn; mypy and ruff read a block under this name as
# typing.TYPE_CHECKING's.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from types import FrameType
    from typing import IO


class Launched:
    """An ffmpeg started before the task was read, writing into `dirs` under `scratch`
    (its working directory), its output going to two files that `process.run` reads once
    it adopts it. A plain class: `dataclasses` alone costs 5 ms before the spawn."""

    __slots__ = ("argv", "dirs", "proc", "scratch", "started", "stderr", "stdout")

    def __init__(self, argv: list[str], dirs: list[str], scratch: Path,
                 proc: subprocess.Popen[bytes], stdout: IO[bytes], stderr: IO[bytes],
                 started: float | None = None) -> None:
        self.argv = argv
        self.dirs = dirs
        self.scratch = scratch
        self.proc = proc
        self.stdout = stdout
        self.stderr = stderr
        self.started = time.monotonic() if started is None else started

    def discard(self) -> None:
        """Stops the command if it still runs and removes everything it wrote."""
        import shutil

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


def _scratch_dir(base: str | None) -> str:
    """A fresh directory for the task under `base` (the pod's scratch volume), as
    `tempfile.mkdtemp` would make it, without loading `tempfile` when `base` is set."""
    if not base:
        import tempfile

        return tempfile.mkdtemp(prefix="task-")
    os.makedirs(base, exist_ok=True)
    for _ in range(16):
        path = os.path.join(base, "task-" + os.urandom(6).hex())
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no fresh task directory under {base}")


def _unnamed_file(directory: str) -> IO[bytes]:
    """An unnamed file in `directory` (`tempfile.TemporaryFile`'s O_TMPFILE path), for
    ffmpeg's output; `tempfile` itself only where the file system refuses that flag."""
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except (AttributeError, OSError):
        import tempfile

        return tempfile.TemporaryFile(dir=directory)
    return open(fd, "w+b")


def start(environ: Mapping[str, str]) -> Launched | None:
    """Starts the launch in `environ`, if it has one, in a fresh scratch directory. A
    launch that cannot start (no room for its directory, no ffmpeg) is left to the worker,
    which then meets the same problem and reports it in its result."""
    launch = launchable(environ.get(LAUNCH_ENV))
    if launch is None:
        return None
    argv, dirs = launch
    scratch: str | None = None
    try:
        scratch = _scratch_dir(environ.get(SCRATCH_ENV) or None)
        for name in dirs:
            os.makedirs(os.path.join(scratch, name), exist_ok=True)
        stdout = _unnamed_file(scratch)
        stderr = _unnamed_file(scratch)
        proc = subprocess.Popen(argv, cwd=scratch, stdin=subprocess.DEVNULL, stdout=stdout,
                                stderr=stderr, env=child_env(environ))
    except OSError:
        if scratch is not None:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
        return None
    started = time.monotonic()
    from pathlib import Path  # ffmpeg runs: what is loaded from here on costs it nothing

    return Launched(argv=argv, dirs=dirs, scratch=Path(scratch), proc=proc, stdout=stdout,
                    stderr=stderr, started=started)


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
    import contextlib  # after the spawn

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
