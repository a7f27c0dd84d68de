"""containerd (Debian's) for the node: its own config, root, state and socket under the dev
state dir, runc as the runtime, cgroupfs (no systemd here), CNI from Debian's plugins.

Nothing of the machine's default containerd paths is used: /etc/containerd,
/var/lib/containerd and /run/containerd/containerd.sock stay as they are, and network
namespaces are mounted under our state dir (`netns_mounts_under_state_dir`). The one
machine path containerd 1.6 insists on is the shims' socket dir, /run/containerd/s
(sockets, removed as the shims exit).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mediaplane.devcluster.realnode import network

NAMESPACE = "k8s.io"
CAP_SYS_RESOURCE = 24
# Plugins the CRI node does not use; `opt` would create /opt/containerd.
DISABLED_PLUGINS = (
    "io.containerd.internal.v1.opt",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.tracing.processor.v1.otlp",
)


class Layout:
    """Every path of the node's containerd, under `<state>/containerd`."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "containerd"

    @property
    def config(self) -> Path:
        return self.dir / "config.toml"

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def state(self) -> Path:
        return self.dir / "state"

    @property
    def runc_root(self) -> Path:
        """runc's own state (the shim's default is /run/containerd/runc)."""
        return self.dir / "runc"

    @property
    def socket(self) -> Path:
        return self.dir / "containerd.sock"

    @property
    def certs_d(self) -> Path:
        return self.dir / "certs.d"

    @property
    def cni_conf_dir(self) -> Path:
        return self.dir / "net.d"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def may_lower_oom_score() -> bool:
    """CAP_SYS_RESOURCE, which lowering a process's oom_score_adj takes. Container sandboxes
    such as CI machines' drop it even for root; then runc cannot give a sandbox the
    kubelet's -998 ("can't get final child's PID from pipe: EOF") and containerd must
    keep containers' scores at or above its own (`restrict_oom_score_adj`)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) & (1 << CAP_SYS_RESOURCE))
    return False


def render_config(layout: Layout, *, sandbox_image: str, cni_bin_dir: Path,
                  runc: str = "runc", restrict_oom_score_adj: bool = False) -> str:
    disabled = ", ".join(_toml_str(p) for p in DISABLED_PLUGINS)
    cri = '[plugins."io.containerd.grpc.v1.cri"]'
    runc_table = f'{cri[:-1]}.containerd.runtimes.runc]'
    return f"""\
version = 2
root = {_toml_str(str(layout.root))}
state = {_toml_str(str(layout.state))}
disabled_plugins = [{disabled}]

[grpc]
  address = {_toml_str(str(layout.socket))}

[ttrpc]
  address = {_toml_str(str(layout.socket) + ".ttrpc")}

{cri}
  sandbox_image = {_toml_str(sandbox_image)}
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  restrict_oom_score_adj = {"true" if restrict_oom_score_adj else "false"}

{cri[:-1]}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

{runc_table}
  runtime_type = "io.containerd.runc.v2"

{runc_table[:-1]}.options]
  BinaryName = {_toml_str(runc)}
  Root = {_toml_str(str(layout.runc_root))}
  SystemdCgroup = false

{cri[:-1]}.cni]
  bin_dir = {_toml_str(str(cni_bin_dir))}
  conf_dir = {_toml_str(str(layout.cni_conf_dir))}
  max_conf_num = 1

{cri[:-1]}.registry]
  config_path = {_toml_str(str(layout.certs_d))}
"""


def cni_config(ipam_dir: Path) -> dict[str, object]:
    """The bridge network of the node (Debian's plugins): one /24 for pods, masquerade to
    anything outside it, hairpin so a pod reaches itself through its own Service; the
    address allocations kept under the state dir, not /var/lib/cni."""
    return {
        "cniVersion": "1.0.0",
        "name": "mediaplane",
        "plugins": [
            {
                "type": "bridge",
                "bridge": network.BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": network.POD_SUBNET,
                                 "gateway": network.POD_GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def registry_hosts(registry_host: str, endpoint: str) -> str:
    """certs.d/<host>/hosts.toml: pull `registry_host/...` from a plain-HTTP registry."""
    return (f"server = {_toml_str(endpoint)}\n\n"
            f"[host.{_toml_str(endpoint)}]\n"
            '  capabilities = ["pull", "resolve"]\n')


def write_all(layout: Layout, *, sandbox_image: str, cni_bin_dir: Path, ipam_dir: Path,
              registry_host: str, registry_endpoint: str) -> None:
    for path in (layout.root, layout.state, layout.cni_conf_dir):
        path.mkdir(parents=True, exist_ok=True)
    layout.config.write_text(render_config(
        layout, sandbox_image=sandbox_image, cni_bin_dir=cni_bin_dir,
        restrict_oom_score_adj=not may_lower_oom_score()))
    (layout.cni_conf_dir / "10-mediaplane.conflist").write_text(
        json.dumps(cni_config(ipam_dir), indent=2))
    hosts = layout.certs_d / registry_host
    hosts.mkdir(parents=True, exist_ok=True)
    (hosts / "hosts.toml").write_text(registry_hosts(registry_host, registry_endpoint))


def argv(layout: Layout) -> list[str]:
    return network.in_node(["containerd", "--config", str(layout.config), "--log-level", "warn"])


def ctr(layout: Layout, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Debian's `ctr` against this containerd, in the CRI's namespace."""
    return subprocess.run(
        ["ctr", "--address", str(layout.socket), "--namespace", NAMESPACE, *args],
        capture_output=True, text=True, timeout=timeout, check=False)


def running_tasks(layout: Layout) -> list[str]:
    """Ids of the containers that still have a running task (an empty list when
    containerd does not answer: then nothing of ours can still be starting)."""
    if not layout.socket.exists():
        return []
    try:
        done = ctr(layout, "tasks", "list", "--quiet", timeout=10)
    except subprocess.TimeoutExpired:
        return []
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def kill_tasks(layout: Layout) -> None:
    """SIGKILL every task and delete it (their rootfs mounts go with them)."""
    for task in running_tasks(layout):
        ctr(layout, "tasks", "kill", "--signal", "SIGKILL", task)
    for task in running_tasks(layout):
        ctr(layout, "tasks", "delete", "--force", task)
