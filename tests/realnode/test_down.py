"""Stopping a real node leaves nothing: no process, no mount, no network, no cgroup.

Runs last in the directory (after the chart tests have run pods on the node): it stops the
session's cluster itself, then looks at the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from mediaplane.devcluster.realnode import cgroups, components, mounts, network
from tests.realnode.conftest import RealNode


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in argv:
            found.append(f"{proc.name}: {argv}")
    return found


def test_down_leaves_nothing_running_mounted_or_configured(real_node: RealNode) -> None:
    cluster = real_node.cluster
    state = cluster.state_dir
    # The node really ran pods, with volumes and networks to clean up.
    assert any(state.glob("containerd/root/io.containerd.snapshotter.v1.overlayfs/snapshots/*"))
    assert any((state / "cni" / "networks").glob("mediaplane/*")) or (
        state / "cni" / "networks" / "mediaplane").is_dir()
    before = network.HostRecord.load()
    assert before is not None

    cluster.stop()

    assert mounts.under(state) == [], mounts.under(state)
    assert not any(m.startswith("/run/netns/" + network.NETNS) for m in mounts.mount_points())
    assert _processes_mentioning(str(state)) == []
    assert not network.netns_exists()
    assert not Path("/sys/class/net", network.HOST_VETH).exists()
    assert cgroups.pids(components.CGROUP_ROOT) == set()
    assert all(not (h / components.CGROUP_ROOT.strip("/")).exists()
               for h in cgroups.hierarchies())
    assert network.HostRecord.load() is None
    assert not network.LOCK_PATH.exists()
    for name, value in before.sysctls.items():
        assert network.read_sysctl(name) == value, name
    logs = Path("/var/log/containers")
    if logs.is_dir():
        assert not [p for p in logs.iterdir() if str(p.resolve()).startswith(str(state))]
