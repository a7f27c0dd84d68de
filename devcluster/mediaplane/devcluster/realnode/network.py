"""The node's own network namespace, joined to the host by one veth pair.

containerd, the kubelet and kube-proxy run inside it (`nsenter --net`, nothing else of the
host changes), so the CNI bridge, the pods' veths, kube-proxy's iptables rules and the
forwarding sysctl all live there and go away with it: deleting the namespace is the
network's whole clean-up, and the host's own iptables and routes are never touched.

    host (10.203.0.1): kube-apiserver, CoreDNS, the registry ──veth── node (10.203.0.2)
                                                              cni0 10.244.0.1/24 ── pods

Pods reach the host side through the node (the bridge plugin masquerades them), the host
reaches the node's address (NodePorts, the kubelet's port) directly. One real node per
machine at a time: the names below are fixed, and `HostLock` says who holds them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mediaplane.devcluster.realnode import mounts

NETNS = "mediaplane-node"
NETNS_PATH = Path("/run/netns") / NETNS
HOST_VETH = "mp-node0"
NODE_VETH = "eth0"
HOST_IP = "10.203.0.1"
NODE_IP = "10.203.0.2"
LINK_PREFIX = 30
POD_SUBNET = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1"
BRIDGE = "cni0"
# The dev cluster's --service-cluster-ip-range; 10.0.0.1 is the `kubernetes` Service.
SERVICE_SUBNET = "10.0.0.0/24"
CLUSTER_DOMAIN = "cluster.local"

RUN_DIR = Path("/run/mediaplane")
LOCK_PATH = RUN_DIR / "realnode.lock"
RECORD_PATH = RUN_DIR / "realnode.json"

# Set in the node's namespace only: forwarding between the bridge and the veth, and
# bridged pod traffic through iptables (Service replies between pods on one bridge).
NODE_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
}
# Machine-wide values the kubelet sets at start (pkg/kubelet/cm, unless
# protectKernelDefaults, which refuses to start instead): saved before, put back after.
KUBELET_KERNEL_SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)


def _run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=30)


def in_node(argv: Sequence[str]) -> list[str]:
    """`argv` run in the node's network namespace (only that namespace: same mounts, pids)."""
    return ["nsenter", f"--net={NETNS_PATH}", "--", *argv]


def read_sysctl(name: str) -> str:
    return Path("/proc/sys", *name.split(".")).read_text().strip()


def write_sysctl(name: str, value: str) -> None:
    Path("/proc/sys", *name.split(".")).write_text(value)


def netns_exists() -> bool:
    return NETNS_PATH.exists()


def create() -> None:
    """The namespace, the veth pair, addresses, routes and the node's sysctls."""
    _run(["ip", "netns", "add", NETNS])
    try:
        _run(["ip", "link", "add", HOST_VETH, "type", "veth", "peer", "name", NODE_VETH,
              "netns", NETNS])
        _run(["ip", "addr", "add", f"{HOST_IP}/{LINK_PREFIX}", "dev", HOST_VETH])
        _run(["ip", "link", "set", HOST_VETH, "up"])
        node = ["ip", "-n", NETNS]
        _run([*node, "link", "set", "lo", "up"])
        _run([*node, "addr", "add", f"{NODE_IP}/{LINK_PREFIX}", "dev", NODE_VETH])
        _run([*node, "link", "set", NODE_VETH, "up"])
        _run([*node, "route", "add", "default", "via", HOST_IP])
        for name, value in NODE_SYSCTLS.items():
            _run(in_node(["sysctl", "-q", "-w", f"{name}={value}"]))
    except BaseException:
        delete()
        raise


def delete() -> None:
    """Remove the namespace (its bridge, veths and iptables rules go with it) and our end
    of the veth pair. Safe when absent. Processes still inside would keep the namespace
    alive without its name: stop them first."""
    if netns_exists():
        _run(["ip", "netns", "delete", NETNS], check=False)
    if Path("/sys/class/net", HOST_VETH).exists():
        _run(["ip", "link", "delete", HOST_VETH], check=False)
    # `ip netns add` makes /run/netns a (shared) bind mount of itself; once no namespace is
    # named there it holds nothing, and `ip` makes it again when next asked.
    netns_dir = NETNS_PATH.parent
    with contextlib.suppress(OSError):
        if netns_dir.is_dir() and not any(netns_dir.iterdir()):
            mounts.unmount_all(netns_dir)
            netns_dir.rmdir()


@dataclass
class HostRecord:
    """What a running real node changed on the machine, kept in /run so that the next
    start can undo it after a crash (PR_SET_PDEATHSIG ends our processes, not this)."""

    state_dir: str
    sysctls: dict[str, str]

    def save(self) -> None:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        tmp = RECORD_PATH.with_suffix(".tmp")
        tmp.write_text(json.dumps({"state_dir": self.state_dir, "sysctls": self.sysctls}))
        tmp.replace(RECORD_PATH)

    @classmethod
    def load(cls) -> HostRecord | None:
        try:
            data = json.loads(RECORD_PATH.read_text())
            return cls(state_dir=str(data["state_dir"]),
                       sysctls={str(k): str(v) for k, v in data["sysctls"].items()})
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def clear() -> None:
        RECORD_PATH.unlink(missing_ok=True)


def save_kernel_sysctls() -> dict[str, str]:
    return {name: read_sysctl(name) for name in KUBELET_KERNEL_SYSCTLS}


def restore_sysctls(values: dict[str, str]) -> None:
    for name, value in values.items():
        with contextlib.suppress(OSError):
            if read_sysctl(name) != value:
                write_sysctl(name, value)


class HostLock:
    """One real node per machine: an exclusive lock in /run held while it runs."""

    def __init__(self) -> None:
        self._fh: IO[str] | None = None

    def acquire(self, state_dir: Path) -> None:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        fh = LOCK_PATH.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise RuntimeError(
                f"a real node already runs on this machine ({holder}); one at a time: "
                "stop it first (`mediaplane dev down` in its state dir)") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}, state dir {state_dir}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        """Unlocks and removes the lock file (and /run/mediaplane when nothing else is
        there): a stopped node leaves nothing behind. Acquiring never waits, so no other
        process can be queued on the removed file."""
        if self._fh is not None:
            LOCK_PATH.unlink(missing_ok=True)
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
            with contextlib.suppress(OSError):
                RUN_DIR.rmdir()


@contextlib.contextmanager
def held(state_dir: Path) -> Iterator[HostLock]:
    lock = HostLock()
    lock.acquire(state_dir)
    try:
        yield lock
    finally:
        lock.release()
