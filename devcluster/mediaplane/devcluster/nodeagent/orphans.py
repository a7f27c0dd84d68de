"""Finding pod processes that lost their agent.

The agent's direct children die with it (PR_SET_PDEATHSIG), but what they started (a
shell's child, a worker's ffmpeg) does not. Every pod process gets `HOME` inside its pod
directory, which makes such leftovers recognisable without trusting stale pid files.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def pod_processes(pods_root: Path) -> list[int]:
    root = os.fsencode(str(pods_root.resolve())) + b"/"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        for entry in environ.split(b"\0"):
            if entry.startswith(b"HOME=") and entry[5:].startswith(root):
                found.append(int(proc.name))
                break
    return found


def kill_orphans(pods_root: Path) -> int:
    """SIGKILL every process whose HOME is under `pods_root`; how many were signalled."""
    killed = 0
    for pid in pod_processes(pods_root):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except (ProcessLookupError, PermissionError):
            pass
    return killed
