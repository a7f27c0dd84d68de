"""The control-plane binaries, built from the Go module proxy and cached by version.

Release tarballs and container images are out of reach here; the Go module proxy is not.
`devcluster/go/kube` and `devcluster/go/etcd` are small modules of ours that require
`k8s.io/kubernetes` and `go.etcd.io/etcd/server/v3` (see their go.mod for why);
`devcluster/go/helm` requires `helm.sh/helm/v3` for the chart tests and
`devcluster/go/promtool` `github.com/prometheus/prometheus` for the alert rules' tests. A cold
kube build takes a long while on two cores, so everything (module cache, build cache,
binaries) lives under ${XDG_CACHE_HOME:-~/.cache}/mediaplane, keyed by version, and a
build only runs for binaries that are missing or report another version.

A binary is always built under a temporary name and renamed into place, so an
interrupted build never leaves a half-written executable that looks usable.

Shell use (the Makefile): `python -m mediaplane.devcluster.binaries [--check|--bin-dir]`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

KUBE_VERSION = "v1.35.4"
ETCD_VERSION = "v3.6.16"
KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kubectl")
KUBE_BUILD_DATE = "2026-01-01T00:00:00Z"
HELM_VERSION = "v3.22.0"
# The Kubernetes version `helm template`/`helm lint` assume offline: helm's own Makefile
# stamps the minor of its client-go (v0.37 for helm v3.22), or they would assume v1.20.
HELM_KUBE_MINOR = "37"
# promtool checks the chart's PrometheusRule. Prometheus 3.x is published as the Go module
# version v0.3XX.Y for release 3.XX.Y; the binary reports the release.
PROMTOOL_MODULE_VERSION = "v0.316.0"
PROMTOOL_VERSION = "3.16.0"

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mediaplane"


def kube_bin_dir() -> Path:
    return cache_dir() / "kube" / KUBE_VERSION / "bin"


def etcd_bin_dir() -> Path:
    return cache_dir() / "etcd" / ETCD_VERSION / "bin"


def helm_bin_dir() -> Path:
    return cache_dir() / "helm" / HELM_VERSION / "bin"


def promtool_bin_dir() -> Path:
    return cache_dir() / "promtool" / PROMTOOL_VERSION / "bin"


def go_sources_dir() -> Path:
    """The repo's Go modules; absent from an installed wheel, which can only use a cache."""
    return Path(__file__).resolve().parents[2] / "go"


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    etcd: Path
    helm: Path
    promtool: Path

    @property
    def kube_bin_dir(self) -> Path:
        return self.kubectl.parent

    @property
    def client_bin_dirs(self) -> list[Path]:
        """What a client of the cluster puts on PATH: kubectl, then helm."""
        return [self.kubectl.parent, self.helm.parent]


def binaries() -> Binaries:
    kube = kube_bin_dir()
    return Binaries(
        kube_apiserver=kube / "kube-apiserver",
        kube_controller_manager=kube / "kube-controller-manager",
        kubectl=kube / "kubectl",
        etcd=etcd_bin_dir() / "etcd",
        helm=helm_bin_dir() / "helm",
        promtool=promtool_bin_dir() / "promtool",
    )


def _version_output(path: Path) -> str:
    if path.name == "kubectl":
        argv = [str(path), "version", "--client"]
    elif path.name == "helm":
        argv = [str(path), "version", "--short"]
    else:
        argv = [str(path), "--version"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout + done.stderr


def reports_version(path: Path, version: str) -> bool:
    """True when `path` is executable and prints `version` (with or without the `v`)."""
    if not os.access(path, os.X_OK):
        return False
    bare = re.escape(version.removeprefix("v"))
    return re.search(rf"(?<![\d.])v?{bare}(?![\d.])", _version_output(path)) is not None


def _go() -> str:
    found = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if found is None:
        raise RuntimeError("the Go toolchain (`go`) is needed to build the control plane")
    return found


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CGO_ENABLED"] = "0"
    env["GOMODCACHE"] = str(cache_dir() / "go" / "mod")
    env["GOCACHE"] = str(cache_dir() / "go" / "build")
    return env


def kube_ldflags() -> str:
    flags = ["-s", "-w"]
    minor = KUBE_VERSION.removeprefix("v").split(".")[1]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={KUBE_VERSION}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={KUBE_BUILD_DATE}",
        ]
    return " ".join(flags)


def _module_dir(name: str) -> Path:
    path = go_sources_dir() / name
    if not (path / "go.mod").is_file():
        raise RuntimeError(
            f"{path}/go.mod not found: building the control plane needs a repo checkout "
            f"(or prebuilt binaries in {cache_dir()})"
        )
    return path


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One build at a time per cache dir, across processes."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with (cache_dir() / ".build.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _foreign_builds(out_dir: Path) -> list[int]:
    """Pids of `go build` processes writing into `out_dir` that do not hold our lock.

    A build started by hand (or by an older script) with the same output dir would race
    ours; waiting for it is cheaper than building twice on two cores.
    """
    target = str(out_dir)
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        is_build = len(args) > 2 and Path(args[0]).name == "go" and args[1] == "build"
        if is_build and any(a.rstrip("/").startswith(target) for a in args):
            pids.append(int(proc.name))
    return pids


def _wait_for_foreign_builds(out_dir: Path, log: Log) -> None:
    announced = False
    while pids := _foreign_builds(out_dir):
        if not announced:
            log(f"waiting for a build already running into {out_dir} (pid {pids[0]})")
            announced = True
        time.sleep(5)


def _run_build(argv: list[str], cwd: Path, log: Log) -> None:
    log(f"building in {cwd}: {' '.join(argv)}")
    started = time.monotonic()
    subprocess.run(argv, cwd=cwd, env=_go_env(), check=True)
    log(f"built in {time.monotonic() - started:.0f}s")


def build_kube(commands: tuple[str, ...] = KUBE_COMMANDS, log: Log = _stderr) -> None:
    out = kube_bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out / f".build-{os.getpid()}"
    tmp.mkdir()
    try:
        argv = [_go(), "build", "-trimpath", "-ldflags", kube_ldflags(), "-o", f"{tmp}/"]
        argv += [f"k8s.io/kubernetes/cmd/{c}" for c in commands]
        _run_build(argv, _module_dir("kube"), log)
        for command in commands:
            (tmp / command).replace(out / command)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _build_command(name: str, out: Path, module: str, package: str, ldflags: str,
                   log: Log) -> None:
    """`go build` of one main package of `devcluster/go/<module>` into `out/<name>`."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f".{name}.build-*"):
        stale.unlink(missing_ok=True)
    tmp = out / f".{name}.build-{os.getpid()}"
    try:
        argv = [_go(), "build", "-trimpath", "-ldflags", ldflags, "-o", str(tmp), package]
        _run_build(argv, _module_dir(module), log)
        tmp.replace(out / name)
    finally:
        tmp.unlink(missing_ok=True)


def build_etcd(log: Log = _stderr) -> None:
    _build_command("etcd", etcd_bin_dir(), "etcd", "go.etcd.io/etcd/server/v3", "-s -w", log)


def helm_ldflags() -> str:
    flags = ["-s", "-w", f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}"]
    for pkg in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
        flags += [f"-X {pkg}.k8sVersionMajor=1", f"-X {pkg}.k8sVersionMinor={HELM_KUBE_MINOR}"]
    return " ".join(flags)


def build_helm(log: Log = _stderr) -> None:
    _build_command("helm", helm_bin_dir(), "helm", "helm.sh/helm/v3/cmd/helm", helm_ldflags(),
                   log)


def promtool_ldflags() -> str:
    return f"-s -w -X github.com/prometheus/common/version.Version={PROMTOOL_VERSION}"


def build_promtool(log: Log = _stderr) -> None:
    _build_command("promtool", promtool_bin_dir(), "promtool",
                   "github.com/prometheus/prometheus/cmd/promtool", promtool_ldflags(), log)


def missing() -> list[Path]:
    """Binaries that are absent or report another version than pinned."""
    bins = binaries()
    wanted = [
        (bins.kube_apiserver, KUBE_VERSION),
        (bins.kube_controller_manager, KUBE_VERSION),
        (bins.kubectl, KUBE_VERSION),
        (bins.etcd, ETCD_VERSION),
        (bins.helm, HELM_VERSION),
        (bins.promtool, PROMTOOL_VERSION),
    ]
    return [path for path, version in wanted if not reports_version(path, version)]


def ensure_binaries(log: Log = _stderr) -> Binaries:
    """Build whatever is missing; a no-op (a few version checks) when all are in place."""
    bins = binaries()
    if not missing():
        return bins
    with _build_lock():
        _wait_for_foreign_builds(kube_bin_dir(), log)
        _wait_for_foreign_builds(etcd_bin_dir(), log)
        _wait_for_foreign_builds(helm_bin_dir(), log)
        _wait_for_foreign_builds(promtool_bin_dir(), log)
        kube = [c for c in KUBE_COMMANDS if not reports_version(kube_bin_dir() / c, KUBE_VERSION)]
        if kube:
            build_kube(tuple(kube), log)
        if not reports_version(bins.etcd, ETCD_VERSION):
            build_etcd(log)
        if not reports_version(bins.helm, HELM_VERSION):
            build_helm(log)
        if not reports_version(bins.promtool, PROMTOOL_VERSION):
            build_promtool(log)
    still = missing()
    if still:
        raise RuntimeError(f"built, but these do not report the pinned version: {still}")
    return bins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mediaplane.devcluster.binaries",
        description=f"Build (if missing) kube {KUBE_VERSION}, etcd {ETCD_VERSION}, "
        f"helm {HELM_VERSION} and promtool {PROMTOOL_VERSION}.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 if any is missing")
    group.add_argument("--bin-dir", action="store_true", help="print the kube bin dir")
    args = parser.parse_args(argv)
    if args.bin_dir:
        print(kube_bin_dir())
        return 0
    if args.check:
        absent = missing()
        for path in absent:
            print(f"missing or wrong version: {path}")
        return 1 if absent else 0
    bins = ensure_binaries()
    for path in (bins.kube_apiserver, bins.kube_controller_manager, bins.kubectl, bins.etcd,
                 bins.helm, bins.promtool):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
