"""What a real node needs that the process-node dev cluster does not: built and cached
like the control plane, and only when a real node or an image build asks for it.

From the Go module proxy (pinned, built once into ${XDG_CACHE_HOME:-~/.cache}/mediaplane):

- kubelet, kube-proxy, kube-scheduler of the same Kubernetes version as the API server
  (`devcluster/go/kube`, one `go build` that reuses the control plane's build cache);
- BuildKit's buildkitd and buildctl (`devcluster/go/buildkit`);
- the distribution registry (`devcluster/go/registry`);
- CoreDNS with the plugins a cluster's DNS needs (`devcluster/go/coredns`);
- and the pause container of that Kubernetes version, compiled from the C file the
  k8s.io/kubernetes module carries (`build/pause/linux/pause.c`), as its Makefile does.

From Debian (`scripts/setup.sh` installs them): containerd, runc, the CNI plugins,
iptables, conntrack, debootstrap and a C compiler. `check_host()` names what is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mediaplane.devcluster import binaries as base
from mediaplane.devcluster.binaries import Log

NODE_KUBE_COMMANDS = ("kubelet", "kube-proxy", "kube-scheduler")
BUILDKIT_VERSION = "v0.34.2"
REGISTRY_VERSION = "v3.1.2"
COREDNS_VERSION = "v1.15.0"
# build/pause/Makefile's TAG in the Kubernetes release we build.
PAUSE_VERSION = "3.10.1"

CNI_PLUGIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
HOST_COMMANDS = {
    "containerd": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "nsenter": "util-linux",
    "ip": "iproute2",
    "debootstrap": "debootstrap",
    "gcc": "gcc",
}
# What scripts/setup.sh installs for a real node (Debian package names).
APT_PACKAGES = ("containerd", "runc", "containernetworking-plugins", "iptables", "conntrack",
                "debootstrap", "gcc", "libc6-dev")


@dataclass(frozen=True)
class NodeBinaries:
    kubelet: Path
    kube_proxy: Path
    kube_scheduler: Path
    buildkitd: Path
    buildctl: Path
    registry: Path
    coredns: Path
    pause: Path


def buildkit_bin_dir() -> Path:
    return base.cache_dir() / "buildkit" / BUILDKIT_VERSION / "bin"


def registry_bin_dir() -> Path:
    return base.cache_dir() / "registry" / REGISTRY_VERSION / "bin"


def coredns_bin_dir() -> Path:
    return base.cache_dir() / "coredns" / COREDNS_VERSION / "bin"


def pause_bin_dir() -> Path:
    return base.cache_dir() / "pause" / PAUSE_VERSION / "bin"


def node_binaries() -> NodeBinaries:
    kube = base.kube_bin_dir()
    return NodeBinaries(
        kubelet=kube / "kubelet",
        kube_proxy=kube / "kube-proxy",
        kube_scheduler=kube / "kube-scheduler",
        buildkitd=buildkit_bin_dir() / "buildkitd",
        buildctl=buildkit_bin_dir() / "buildctl",
        registry=registry_bin_dir() / "registry",
        coredns=coredns_bin_dir() / "coredns",
        pause=pause_bin_dir() / "pause",
    )


def _stamped(path: Path, version: str, argv_tail: tuple[str, ...] = ("--version",)) -> bool:
    if not os.access(path, os.X_OK):
        return False
    try:
        done = subprocess.run([str(path), *argv_tail], capture_output=True, text=True,
                              timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    bare = re.escape(version.removeprefix("v"))
    return re.search(rf"(?<![\d.])v?{bare}(?![\d.])", done.stdout + done.stderr) is not None


def _wanted() -> dict[str, tuple[Path, str, tuple[str, ...]]]:
    bins = node_binaries()
    kube = base.KUBE_VERSION
    return {
        "kubelet": (bins.kubelet, kube, ("--version",)),
        "kube-proxy": (bins.kube_proxy, kube, ("--version",)),
        "kube-scheduler": (bins.kube_scheduler, kube, ("--version",)),
        "buildkitd": (bins.buildkitd, BUILDKIT_VERSION, ("--version",)),
        "buildctl": (bins.buildctl, BUILDKIT_VERSION, ("--version",)),
        "registry": (bins.registry, REGISTRY_VERSION, ("--version",)),
        "coredns": (bins.coredns, COREDNS_VERSION, ("-version",)),
        "pause": (bins.pause, PAUSE_VERSION, ("-v",)),
    }


# What `make images` needs (a registry and BuildKit); a node needs them all.
BUILD_TOOLS = ("buildkitd", "buildctl", "registry")


def missing(names: tuple[str, ...] | None = None) -> list[str]:
    wanted = _wanted()
    return [name for name in (names or tuple(wanted))
            if not _stamped(*wanted[name])]


def buildkit_ldflags() -> str:
    return ("-s -w"
            f" -X github.com/moby/buildkit/version.Version={BUILDKIT_VERSION}"
            " -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit")


def registry_ldflags() -> str:
    return ("-s -w"
            f" -X github.com/distribution/distribution/v3/version.version={REGISTRY_VERSION}")


def build_pause(log: Log) -> None:
    """`gcc -Os -static` of the module's pause.c, with the flags of its Makefile."""
    source = (base.cache_dir() / "go" / "mod" / f"k8s.io/kubernetes@{base.KUBE_VERSION}"
              / "build" / "pause" / "linux" / "pause.c")
    if not source.is_file():
        # The module is in the cache once kube is built; download it otherwise.
        subprocess.run([base._go(), "mod", "download", f"k8s.io/kubernetes@{base.KUBE_VERSION}"],
                       cwd=base._module_dir("kube"), env=base._go_env(), check=True)
    out = pause_bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".pause.build-{os.getpid()}"
    gcc = shutil.which("gcc")
    if gcc is None:
        raise RuntimeError("gcc (and libc6-dev) are needed to build the pause container")
    argv = [gcc, "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{PAUSE_VERSION}",
            "-o", str(tmp), str(source)]
    log(f"building pause: {' '.join(argv)}")
    try:
        subprocess.run(argv, check=True)
        tmp.replace(out / "pause")
    finally:
        tmp.unlink(missing_ok=True)


def ensure_node_binaries(log: Log = base._stderr, *,
                         names: tuple[str, ...] | None = None) -> NodeBinaries:
    """Build whatever of `names` (default: all) is missing; a few version checks when
    all are in place."""
    bins = node_binaries()
    todo = missing(names)
    if not todo:
        return bins
    with base._build_lock():
        kube = [c for c in NODE_KUBE_COMMANDS if c in todo]
        if kube:
            base._wait_for_foreign_builds(base.kube_bin_dir(), log)
            base.build_kube(tuple(kube), log)
        for name in ("buildkitd", "buildctl"):
            if name in todo:
                base._build_command(name, buildkit_bin_dir(), "buildkit",
                                    f"github.com/moby/buildkit/cmd/{name}", buildkit_ldflags(),
                                    log)
        if "registry" in todo:
            base._build_command("registry", registry_bin_dir(), "registry",
                                "github.com/distribution/distribution/v3/cmd/registry",
                                registry_ldflags(), log)
        if "coredns" in todo:
            base._build_command("coredns", coredns_bin_dir(), "coredns",
                                "mediaplane.io/devcluster/coredns", "-s -w", log)
        if "pause" in todo:
            build_pause(log)
    still = missing(names)
    if still:
        raise RuntimeError(f"built, but these do not report the pinned version: {still}")
    return bins


def cni_plugin_dir() -> Path | None:
    for directory in CNI_PLUGIN_DIRS:
        if all((directory / plugin).is_file() for plugin in CNI_PLUGINS):
            return directory
    return None


# What building images needs of HOST_COMMANDS (BuildKit's runc worker, debootstrap).
BUILD_COMMANDS = ("runc", "debootstrap")


def check_host(*, images_only: bool = False) -> list[str]:
    """What this machine lacks to run a real node (or, `images_only`, to build images), as
    sentences; empty when nothing."""
    problems = []
    if os.geteuid() != 0:
        problems.append("containers, network namespaces and mounts need root")
    wanted = {cmd: pkg for cmd, pkg in HOST_COMMANDS.items()
              if not images_only or cmd in BUILD_COMMANDS}
    absent = {pkg for cmd, pkg in wanted.items() if shutil.which(cmd, path=sbin_path()) is None}
    if not images_only and cni_plugin_dir() is None:
        absent.add("containernetworking-plugins")
    if absent:
        problems.append(f"missing Debian packages: {' '.join(sorted(absent))} "
                        "(`MEDIAPLANE_REAL_NODE=1 scripts/setup.sh` installs them)")
    if "overlay" not in Path("/proc/filesystems").read_text():
        problems.append("the kernel has no overlayfs")
    if not images_only and not Path("/sys/fs/cgroup/memory").is_dir():
        problems.append("no cgroup v1 memory hierarchy under /sys/fs/cgroup (the node is "
                        "set up for cgroup v1 with cgroupfs)")
    return problems


def sbin_path() -> str:
    """PATH with the sbin dirs added: Debian puts runc, iptables and ip there, and a
    non-login root shell may not have them."""
    parts = os.environ.get("PATH", os.defpath).split(os.pathsep)
    for extra in ("/usr/local/sbin", "/usr/sbin", "/sbin"):
        if extra not in parts:
            parts.append(extra)
    return os.pathsep.join(parts)


def main() -> int:
    """`python -m mediaplane.devcluster.realnode.binaries`: build what is missing, say what
    this machine lacks."""
    bins = ensure_node_binaries()
    for name, path in vars(bins).items():
        print(f"{name:<15} {path}")
    problems = check_host()
    for problem in problems:
        print(f"not ready for a real node: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
