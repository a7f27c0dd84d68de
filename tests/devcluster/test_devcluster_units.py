"""Small pure parts of the dev cluster: build flags, version checks, state files, CLI output."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path

import pytest

from mediaplane.cli.dev import exports
from mediaplane.devcluster import binaries
from mediaplane.devcluster.crds import crd_names
from mediaplane.devcluster.ports import free_ports
from mediaplane.devcluster.processes import group_nice, set_group_nice
from mediaplane.devcluster.state import is_running, read_env


def test_kube_ldflags_stamp_both_version_packages() -> None:
    flags = binaries.kube_ldflags()
    assert flags.startswith("-s -w ")
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {pkg}.gitVersion={binaries.KUBE_VERSION}" in flags
        assert f"-X {pkg}.gitMajor=1" in flags
        assert f"-X {pkg}.gitMinor=35" in flags
        assert f"-X {pkg}.gitTreeState=clean" in flags


def test_helm_ldflags_stamp_version_and_offline_kube_version() -> None:
    flags = binaries.helm_ldflags()
    assert f"-X helm.sh/helm/v3/internal/version.version={binaries.HELM_VERSION}" in flags
    for pkg in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
        assert f"-X {pkg}.k8sVersionMinor={binaries.HELM_KUBE_MINOR}" in flags
    bins = binaries.binaries()
    assert bins.client_bin_dirs == [bins.kubectl.parent, bins.helm.parent]


def test_reports_version(tmp_path: Path) -> None:
    fake = tmp_path / "etcd"
    fake.write_text("#!/bin/sh\necho 'etcd Version: 3.6.16'\necho 'Go Version: go1.26.8'\n")
    fake.chmod(0o755)
    assert binaries.reports_version(fake, "v3.6.16")
    assert not binaries.reports_version(fake, "v3.6.1")  # no prefix matches
    assert not binaries.reports_version(tmp_path / "absent", "v3.6.16")


def test_free_ports_are_distinct() -> None:
    ports = free_ports(12)
    assert len(set(ports)) == 12


def test_state_dir_reports_running_only_while_locked(tmp_path: Path) -> None:
    (tmp_path / "env.json").write_text('{"KUBECONFIG": "/k"}')
    assert read_env(tmp_path) is None
    with (tmp_path / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert is_running(tmp_path)
        assert read_env(tmp_path) == {"KUBECONFIG": "/k"}
    assert not is_running(tmp_path)


def test_exports_are_shell_quoted() -> None:
    assert exports({"B": "x y", "A": "it's"}) == "export A='it'\"'\"'s'\nexport B='x y'"


def test_crd_names(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: things.example.io}\n---\n"
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\n"
        "metadata: {name: p}\n"
    )
    assert crd_names([tmp_path / "a.yaml"]) == ["things.example.io"]


def test_a_childs_session_group_takes_the_nice_value_given_from_outside() -> None:
    """The node agent's second way of weighing a pod: from its own process, once the child
    runs (where the kernel refused the child's own change: it takes one per 100 ms from
    processes without CAP_SYS_ADMIN)."""
    if not Path("/proc/self/autogroup").exists():
        pytest.skip("this kernel does not group sessions (CONFIG_SCHED_AUTOGROUP is off)")
    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert group_nice(child.pid) == 0
        deadline = time.monotonic() + 2
        while not set_group_nice(child.pid, 7):  # the kernel's 100 ms between changes
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert group_nice(child.pid) == 7
        assert group_nice(os.getpid()) != 7, "the caller's own group is left alone"
    finally:
        child.kill()
        child.wait()
    assert group_nice(child.pid) is None, "a process that is gone has no group"
