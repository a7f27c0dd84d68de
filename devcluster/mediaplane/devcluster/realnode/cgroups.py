"""cgroup v1 directories of the node (the kubelet's cgroup root) and of BuildKit.

The kubelet refuses a `cgroupRoot` that does not exist, so it is made in every mounted
hierarchy first (cpuset's with its parent's cpus and mems, which a new cpuset lacks),
and removed, bottom up, once nothing runs in it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")


def hierarchies() -> list[Path]:
    """Mounted v1 hierarchies (cpu, memory, pids, name=systemd...), symlinks left out."""
    if not CGROUP_FS.is_dir() or (CGROUP_FS / "cgroup.controllers").exists():
        return []
    return sorted(p for p in CGROUP_FS.iterdir() if p.is_dir() and not p.is_symlink()
                  and (p / "cgroup.procs").exists())


def create(name: str) -> None:
    for hierarchy in hierarchies():
        path = hierarchy / name.strip("/")
        path.mkdir(exist_ok=True)
        if (hierarchy / "cpuset.cpus").exists():
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if not (path / knob).read_text().strip():
                    (path / knob).write_text((hierarchy / knob).read_text())


def pids(name: str) -> set[int]:
    """Every process in `name` or below it, in any hierarchy."""
    found: set[int] = set()
    for hierarchy in hierarchies():
        top = hierarchy / name.strip("/")
        if not top.is_dir():
            continue
        for directory, _, files in os.walk(top):
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError):
                    text = (Path(directory) / "cgroup.procs").read_text()
                    found.update(int(line) for line in text.split())
    return found


def kill_all(name: str) -> int:
    """SIGKILL whatever still runs under `name` (containers whose shim is gone)."""
    victims = pids(name)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(victims)


def remove_tree(name: str) -> list[Path]:
    """rmdir `name` and everything below it, deepest first; what could not go is returned."""
    left: list[Path] = []
    for hierarchy in hierarchies():
        top = hierarchy / name.strip("/")
        if not top.is_dir():
            continue
        for directory, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
            try:
                Path(directory).rmdir()
            except OSError:
                left.append(Path(directory))
    return left
