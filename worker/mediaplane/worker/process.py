"""Running ffmpeg and ffprobe with a hard time limit and bounded memory.

Hostile inputs can make a demuxer loop or print an error per frame, so stdout and stderr
go to files (not pipes held in memory) and only a bounded amount is read back.
"""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediaplane.worker.launch import child_env

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import IO

    from mediaplane.worker.launch import Launched

STDERR_TAIL = 600  # characters: enough for ffmpeg's last error lines, fits a termination message
STDERR_SCAN = 1024 * 1024  # bytes of stderr searched for watched phrases
MAX_STDOUT = 16 * 1024 * 1024


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr_tail: str
    timed_out: bool = False
    stdout_truncated: bool = False
    flagged: str | None = None  # the first watched phrase found in stderr

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.flagged is None


def _tail(handle: IO[bytes], limit: int) -> str:
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - limit))
    return handle.read().decode("utf-8", "replace")


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Waits for `proc` to exit (True) or `timeout` seconds to pass (False). Popen.wait with
    a timeout polls at up to 50 ms intervals, which a rendition on the path to playable
    pays on average by half; a pidfd wakes us the moment the child exits."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux 5.3+: Popen's polling
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(max(0, round(timeout * 1000))):
            return False
    finally:
        os.close(pidfd)
    proc.wait()
    return True


def run(argv: Sequence[str], *, timeout: float, workdir: str | None = None,
        watch: Sequence[str] = (), meanwhile: Callable[[], object] | None = None,
        adopt: Launched | None = None,
        on_start: Callable[[subprocess.Popen[bytes]], object] | None = None,
        cwd: str | None = None) -> Completed:
    """Run `argv`, killing it after `timeout` seconds. Never raises for the child's failure.
    `watch`: phrases that mean failure even when the exit code says success (ffmpeg exits 0
    after some input errors). `meanwhile`: work for this process while the child runs (it
    counts against the timeout). `adopt`: the same command, already started before the
    task was read (`launch`): it is waited for instead of `argv` (its time counts from its
    start). `on_start`: told the child once it runs (another thread may kill it). `cwd`:
    the child's working directory, where `argv` names relative paths (`workdir` only holds
    the files of its output)."""
    with (adopt.stdout if adopt else tempfile.TemporaryFile(dir=workdir) as out,
          adopt.stderr if adopt else tempfile.TemporaryFile(dir=workdir) as err):
        if adopt is not None:
            started, proc = adopt.started, adopt.proc
        else:
            started = time.monotonic()
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err, env=child_env(os.environ), cwd=cwd)
        timed_out = False
        try:
            if on_start is not None:
                on_start(proc)
            if meanwhile is not None:
                meanwhile()
            if not _wait(proc, timeout - (time.monotonic() - started)):
                timed_out = True
                proc.kill()
                proc.wait()
        except BaseException:  # SIGTERM from the kubelet, Ctrl-C: never leave ffmpeg behind
            proc.kill()
            proc.wait()
            raise
        size = out.seek(0, os.SEEK_END)
        out.seek(0)
        stdout = out.read(MAX_STDOUT)
        stderr = _tail(err, STDERR_SCAN)
        flagged = next((phrase for phrase in watch if phrase in stderr), None)
        return Completed(returncode=proc.returncode, stdout=stdout,
                         stderr_tail=stderr.strip()[-STDERR_TAIL:], timed_out=timed_out,
                         stdout_truncated=size > MAX_STDOUT, flagged=flagged)
