"""The real node's configuration, read as the node reads it (no process started).

What runs is proved by tests/realnode; these pin the choices a misedit would silently
undo: every containerd path under the state dir, cgroup v1 accepted, the API server's
flags replaced rather than doubled, certificates re-issued when their names change.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from mediaplane.devcluster import certs
from mediaplane.devcluster.realnode import baseimage, components, containerd, mounts, network
from mediaplane.devcluster.realnode.node import ContainerNode, override_flags


def _containerd_config(tmp_path: Path, *, restrict: bool) -> dict[str, Any]:
    layout = containerd.Layout(tmp_path)
    text = containerd.render_config(layout, sandbox_image="10.203.0.1:5000/mediaplane/pause:3",
                                    cni_bin_dir=Path("/usr/lib/cni"),
                                    restrict_oom_score_adj=restrict)
    return tomllib.loads(text)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_containerd_keeps_every_path_under_the_state_dir(tmp_path: Path) -> None:
    config = _containerd_config(tmp_path, restrict=True)
    paths = [s for s in _strings(config) if s.startswith("/")]
    inside = [p for p in paths if p.startswith(str(tmp_path / "containerd"))]
    # The CNI plugins are Debian's; nothing else of the machine's is named.
    assert sorted(set(paths) - set(inside)) == ["/usr/lib/cni"]
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    runc = cri["containerd"]["runtimes"]["runc"]["options"]
    assert runc == {"BinaryName": "runc", "Root": str(tmp_path / "containerd" / "runc"),
                    "SystemdCgroup": False}
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["restrict_oom_score_adj"] is True
    assert config["grpc"]["address"] == str(tmp_path / "containerd" / "containerd.sock")


def test_containerd_lowers_scores_only_where_it_may(tmp_path: Path) -> None:
    cri = _containerd_config(tmp_path, restrict=False)["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is False
    status = Path("/proc/self/status").read_text()
    cap_eff = int(next(line for line in status.splitlines() if line.startswith("CapEff:"))
                  .split()[1], 16)
    assert containerd.may_lower_oom_score() == bool(cap_eff & (1 << 24))


def test_cni_network_is_the_pod_subnet_with_addresses_kept_in_the_state_dir(
        tmp_path: Path) -> None:
    config: dict[str, Any] = containerd.cni_config(tmp_path / "cni")
    bridge = config["plugins"][0]
    assert bridge["type"] == "bridge"
    assert bridge["ipMasq"]
    assert bridge["hairpinMode"]
    assert bridge["ipam"]["dataDir"] == str(tmp_path / "cni")
    assert bridge["ipam"]["ranges"] == [[{"subnet": network.POD_SUBNET,
                                          "gateway": network.POD_GATEWAY}]]


def test_kubelet_accepts_cgroup_v1_under_its_own_root(tmp_path: Path) -> None:
    config = components.kubelet_config(
        root_dir=tmp_path, runtime_endpoint="unix:///x.sock", client_ca=tmp_path / "ca.crt",
        serving_cert=tmp_path / "s.crt", serving_key=tmp_path / "s.key")
    assert config["failCgroupV1"] is False
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["cgroupRoot"] == components.CGROUP_ROOT
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["readOnlyPort"] == 0
    assert config["clusterDNS"] == [network.HOST_IP]
    argv = components.kubelet_argv(Path("/bin/kubelet"), config=tmp_path / "k.yaml",
                                   kubeconfig=tmp_path / "kc", root_dir=tmp_path)
    assert argv[:3] == ["nsenter", f"--net={network.NETNS_PATH}", "--"]


def test_kube_proxy_changes_no_machine_wide_setting() -> None:
    config = components.kube_proxy_config(kubeconfig=Path("/kc"))
    assert config["mode"] == "iptables"
    assert config["iptables"]["localhostNodePorts"] is False
    assert set(config["conntrack"].values()) <= {0, "0s"}
    assert config["nodePortAddresses"] == [f"{network.NODE_IP}/32"]


def test_override_flags_replaces_removes_and_adds() -> None:
    argv = ["apiserver", "--bind-address=127.0.0.1", "--authorization-mode=RBAC", "--x=1"]
    out = override_flags(argv, {"--bind-address": "10.203.0.1", "--x": None,
                                "--authorization-mode": "Node,RBAC", "--new": "y"})
    assert out == ["apiserver", "--bind-address=10.203.0.1", "--authorization-mode=Node,RBAC",
                   "--new=y"]


def test_controllers_add_what_a_node_needs_once() -> None:
    out = ContainerNode.controllers(("job-controller", "deployment-controller"))
    assert out.count("deployment-controller") == 1
    assert {"replicaset-controller", "endpointslice-controller", "disruption-controller"} <= set(
        out)


MOUNTINFO = """\
22 1 252:0 / / rw - ext4 /dev/vda rw
90 22 0:50 / /tmp/s/containerd/root/overlay/1/merged rw - overlay overlay rw
91 22 0:51 / /tmp/s/kubelet/pods/u/volumes/kubernetes.io~secret/a\\040b rw - tmpfs tmpfs rw
92 22 0:52 / /tmp/s rw - ext4 /dev/vda rw
93 22 0:53 / /tmp/sibling rw - ext4 /dev/vda rw
"""


def test_mounts_under_a_dir_deepest_first_and_unescaped() -> None:
    assert mounts.under(Path("/tmp/s"), MOUNTINFO) == [
        "/tmp/s/kubelet/pods/u/volumes/kubernetes.io~secret/a b",
        "/tmp/s/containerd/root/overlay/1/merged",
        "/tmp/s",
    ]


def test_base_image_follows_the_hosts_bookworm_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb-src\nURIs: http://mirror.invalid/debian\n"
        "Suites: bookworm\nComponents: main\n")
    (tmp_path / "sources.list").write_text(
        "deb [trusted=yes] http://security.invalid/debian-security bookworm-security main\n"
        "deb http://other.invalid/debian trixie main\n")
    assert baseimage.host_sources(tmp_path) == [
        baseimage.DebianSource("http://mirror.invalid/debian",
                               ("bookworm", "bookworm-updates"), ("main",)),
        baseimage.DebianSource("http://security.invalid/debian-security",
                               ("bookworm-security",), ("main",)),
    ]


def _sans(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in ext.get_values_for_type(x509.IPAddress)} | set(
        ext.get_values_for_type(x509.DNSName))


def test_leaf_certificates_are_kept_until_their_names_change(tmp_path: Path) -> None:
    pki = certs.ensure_pki(tmp_path)
    cert, _ = certs.ensure_leaf(pki, "kubelet", "node", dns=("node",), ips=("10.203.0.2",),
                                server=True)
    first = cert.read_bytes()
    certs.ensure_leaf(pki, "kubelet", "node", dns=("node",), ips=("10.203.0.2",), server=True)
    assert cert.read_bytes() == first
    certs.ensure_leaf(pki, "kubelet", "node", dns=("node",), ips=("10.203.0.9",), server=True)
    assert _sans(cert) == {"node", "10.203.0.9"}


@pytest.mark.parametrize("groups", [(), ("system:nodes",)])
def test_tokens_are_stable_and_listed_once(tmp_path: Path, groups: tuple[str, ...]) -> None:
    pki = certs.ensure_pki(tmp_path)
    token = certs.ensure_token(pki, "system:node:n", groups)
    assert certs.ensure_token(pki, "system:node:n", groups) == token
    lines = [line for line in pki.token_file.read_text().splitlines() if "system:node:n" in line]
    assert len(lines) == 1
    assert lines[0].startswith(token + ",system:node:n,")
