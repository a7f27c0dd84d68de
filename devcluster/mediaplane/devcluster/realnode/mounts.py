"""Mounts a node leaves behind: found in /proc/self/mountinfo, unmounted deepest first.

containerd (container root filesystems, the sandboxes' /dev/shm, network namespaces) and
the kubelet (emptyDir, Secret and projected-token volumes) mount under the node's state
dir; a clean stop unmounts them itself, this is what makes sure.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

MNT_DETACH = 2


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal
    return (field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def mount_points(mountinfo: str | None = None) -> list[str]:
    text = Path("/proc/self/mountinfo").read_text() if mountinfo is None else mountinfo
    return [_unescape(line.split()[4]) for line in text.splitlines() if line.strip()]


def under(prefix: Path, mountinfo: str | None = None) -> list[str]:
    """Mount points at or below `prefix`, deepest first."""
    root = str(prefix).rstrip("/")
    found = [m for m in mount_points(mountinfo) if m == root or m.startswith(root + "/")]
    return sorted(set(found), key=lambda m: (-m.count("/"), m))


def unmount_all(prefix: Path) -> list[str]:
    """Unmount everything below `prefix` (lazily when busy); returns what stays mounted."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    for _ in range(3):
        points = under(prefix)
        if not points:
            return []
        for point in points:
            if libc.umount2(point.encode(), 0) != 0:
                libc.umount2(point.encode(), MNT_DETACH)
    return under(prefix)


def is_mounted(path: Path) -> bool:
    return str(path).rstrip("/") in {m.rstrip("/") for m in mount_points()}

