"""Free loopback ports for the local control plane.

Every component listens on 127.0.0.1 only, on a port the kernel hands out, so several dev
clusters (or a dev cluster and a test session) can run side by side. All ports of one
start are picked while the previous sockets are still open, so the kernel never hands
out the same port twice within a batch.
"""

from __future__ import annotations

import socket
from contextlib import ExitStack

LOOPBACK = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """Return `count` distinct ports that were free on 127.0.0.1 a moment ago."""
    with ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port() -> int:
    return free_ports(1)[0]
