"""Child processes that can never outlive whoever started them.

Each child runs in its own session (so a terminal's Ctrl-C reaches the supervisor, which
stops things in order, rather than every child at once) and asks the kernel for SIGKILL
when its parent dies (PR_SET_PDEATHSIG), so a crashed or killed launcher leaves nothing
behind. Note the kernel's definition of "parent": the *thread* that forked. Start
children from a long-lived thread (the main thread, or an executor that lives as long as
the cluster), never from a short-lived one.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1

_libc: ctypes.CDLL | None = None


def _load_libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return _libc


def pdeathsig_preexec(sig: int = signal.SIGKILL, nice: int = 0) -> Callable[[], None]:
    """A `preexec_fn` that ties the child's life to the calling thread, and lowers its CPU
    weight to `nice` (see `set_nice`).

    libc is loaded in the parent: loading it after fork, in a possibly multi-threaded
    process, is not async-signal-safe.
    """
    libc = _load_libc()
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        # The parent may have died between fork and prctl: the signal would never come.
        if os.getppid() != parent:
            os._exit(1)
        if nice:
            set_nice(nice)

    return preexec


def set_nice(nice: int) -> None:
    """Gives the calling process (and what it starts) the CPU weight of `nice`, against
    every other process of the machine.

    A process's own nice value weighs it only against its session's processes where the
    kernel groups sessions (CONFIG_SCHED_AUTOGROUP, on in most distributions): each
    session, such as a child started with `start_new_session`, then gets an equal share
    of the CPU whatever its nice. So the session's group gets the same value, through
    /proc/self/autogroup (call this in the session's leader). Raising a nice value needs
    no privilege; a failure leaves the weight as it was.
    """
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    set_group_nice("self", nice)


def set_group_nice(pid: int | str, nice: int) -> bool:
    """Sets the nice value of `pid`'s session group; False where the kernel said "not now".

    Without CAP_SYS_ADMIN the kernel takes one such change per 100 ms on the whole machine
    (EAGAIN otherwise). A kernel without autogroups, or a process gone, is True: there is
    nothing to set."""
    try:
        with open(f"/proc/{pid}/autogroup", "w") as handle:  # noqa: PTH123 (also after fork)
            handle.write(str(nice))
    except BlockingIOError:  # EAGAIN
        return False
    except OSError:
        return True
    return True


def group_nice(pid: int) -> int | None:
    """The nice value of `pid`'s session group (None: no autogroups, or no such process)."""
    try:
        text = Path(f"/proc/{pid}/autogroup").read_text()
    except OSError:
        return None
    _, _, value = text.partition(" nice ")
    try:
        return int(value)
    except ValueError:
        return None


def tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


class ProcessDiedError(RuntimeError):
    """A component exited while we were waiting for it to become ready."""


def kill_group(pgid: int, sig: int) -> bool:
    """Signal a whole process group; False when it no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


@dataclass
class ManagedProcess:
    """One started component: its process, its log, and an idempotent stop."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes]
    stop_timeout: float = 10.0
    # What it was started with (None: the starter's environment), so it can be started again.
    env: dict[str, str] | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def terminate(self) -> None:
        """Ask the whole group to stop (SIGTERM); `stop()` finishes the job."""
        if not self._stopped and self.alive():
            kill_group(self.pid, signal.SIGTERM)
            kill_group(self.pid, signal.SIGCONT)  # a paused process acts on it only then

    def pause(self) -> None:
        """Freeze the whole group (SIGSTOP): its sockets still accept connections, nothing
        answers them, which is what a stalled server looks like to its clients."""
        if not self._stopped and self.alive():
            kill_group(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if not self._stopped:
            kill_group(self.pid, signal.SIGCONT)

    def restarted(self) -> ManagedProcess:
        """Stops this process and starts the same command again (same log, appended)."""
        self.stop()
        return spawn(self.name, self.argv, self.env, log_path=self.log_path,
                     stop_timeout=self.stop_timeout)

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM the group, SIGKILL it after `timeout`; safe to call any number of times.

        The group is killed again after the leader is gone so that helpers the component
        started (shells, forks) do not survive it.
        """
        if self._stopped:
            return
        grace = self.stop_timeout if timeout is None else timeout
        if self.alive():
            kill_group(self.pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
            kill_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                kill_group(self.pid, signal.SIGKILL)
                self.popen.wait()
        kill_group(self.pid, signal.SIGKILL)
        self._stopped = True


def stop_all(processes: Sequence[ManagedProcess]) -> None:
    """Stop several at once: all get SIGTERM together, so slow stoppers wait in parallel."""
    for proc in processes:
        proc.terminate()
    started = time.monotonic()
    for proc in processes:
        remaining = proc.stop_timeout - (time.monotonic() - started)
        proc.stop(timeout=max(0.0, remaining))


def spawn(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    log_path: Path,
    cwd: Path | None = None,
    stop_timeout: float = 10.0,
) -> ManagedProcess:
    """Start `argv` in its own session, tied to this thread, logging to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    args = [str(a) for a in argv]
    with log_path.open("ab") as log:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        log.write(f"--- {stamp} starting {name}: {' '.join(args)}\n".encode())
        log.flush()
        popen = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ if env is None else env),
            cwd=cwd,
            start_new_session=True,
            preexec_fn=pdeathsig_preexec(),
        )
    return ManagedProcess(
        name=name, argv=args, log_path=log_path, popen=popen, stop_timeout=stop_timeout,
        env=None if env is None else dict(env),
    )


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    watch: Sequence[ManagedProcess] = (),
    interval: float = 0.25,
) -> None:
    """Poll `ready` until it holds; fail fast with the log tail if a watched process dies."""
    deadline = time.monotonic() + timeout
    while True:
        for proc in watch:
            if not proc.alive():
                raise ProcessDiedError(
                    f"{proc.name} exited with {proc.returncode} while waiting for {what}; "
                    f"log {proc.log_path}:\n{proc.log_tail()}"
                )
        with contextlib.suppress(Exception):
            if ready():
                return
        if time.monotonic() > deadline:
            details = "".join(f"\n--- {p.name} ({p.log_path}):\n{p.log_tail(20)}" for p in watch)
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{details}")
        time.sleep(interval)
