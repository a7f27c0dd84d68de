"""`mediaplane dev up` as a supervisor: one component restarted on request or when it dies,
the others untouched; `dev up` waits for a cluster that is still stopping."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mediaplane.devcluster.ports import free_port
from mediaplane.devcluster.state import is_running, read_env
from tests.support.wait import eventually

pytestmark = pytest.mark.cluster


def dev(state: Path, *args: str, env: dict[str, str], timeout: float = 240
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mediaplane.cli.main", "dev", *args,
                           "--state-dir", str(state)], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def component_pid(state: Path, name: str) -> int:
    """The pid of this cluster's component, which must be running now."""
    pid = find_component(state, name)
    if pid is None:
        raise AssertionError(f"no process of {name} under {state}")
    return pid


def find_component(state: Path, name: str) -> int | None:
    """The pid of this cluster's component, or None (yet): its command names it, and its
    command or its environment (MEDIAPLANE_DEV_DIR) names the state dir."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if name.encode() in argv and str(state).encode() in argv + environ:
            return int(proc.name)
    return None


def test_restart_one_component_revive_a_dead_one_and_wait_for_a_stopping_cluster(
        tmp_path: Path) -> None:
    state = tmp_path / "dev"
    env = {**os.environ, "MEDIAPLANE_DEV_API_PORT": str(free_port())}
    up = dev(state, "up", "--detach", env=env)
    assert up.returncode == 0, up.stderr
    try:
        cluster_env = read_env(state)
        assert cluster_env is not None
        api = cluster_env["MEDIAPLANE_API"]
        agent = component_pid(state, "mediaplane.devcluster.nodeagent")

        restarted = dev(state, "restart", "nodeagent", env=env)
        assert restarted.returncode == 0, restarted.stderr
        assert "nodeagent: restarted" in restarted.stderr
        assert component_pid(state, "mediaplane.devcluster.nodeagent") != agent
        assert httpx.get(f"{api}/readyz", timeout=5).status_code == 200, \
            "the API kept running"
        assert dev(state, "restart", "no-such-thing", env=env).returncode == 1

        # A component that dies is started again; the rest of the cluster is untouched.
        operator = component_pid(state, "mediaplane.operator")
        os.kill(component_pid(state, "kube-controller-manager"), signal.SIGKILL)
        eventually(lambda: "restarting kube-controller-manager" in
                   (state / "logs" / "supervisor.log").read_text(), "the supervisor's restart",
                   timeout=30)
        # The supervisor logs its restart before it spawns the process: poll, not assert.
        eventually(lambda: find_component(state, "kube-controller-manager"),
                   "kube-controller-manager again", timeout=30)
        assert component_pid(state, "mediaplane.operator") == operator

        # `dev down` and, while it stops, `dev up`: the second waits, then starts.
        down = subprocess.Popen([sys.executable, "-m", "mediaplane.cli.main", "dev", "down",
                                 "--state-dir", str(state)], env=env,
                                stderr=subprocess.DEVNULL)
        eventually(lambda: (state / "stopping").exists(), "the cluster stopping",
                   timeout=30, interval=0.02)
        started = time.monotonic()
        again = dev(state, "up", "--detach", env=env)
        down.wait(timeout=120)
        assert again.returncode == 0, again.stderr
        assert "is stopping; waiting for it" in again.stderr
        assert "already running" not in again.stderr
        assert time.monotonic() - started > 0.5
        assert is_running(state)
        assert httpx.get(f"{api}/readyz", timeout=5).status_code == 200
    finally:
        dev(state, "down", env=env)
    assert not is_running(state)
