"""BuildKit (buildkitd with its runc worker, and buildctl) for building images without Docker.

One daemon per build session, stopped after it; its root (the build cache) is kept in
`~/.cache/mediaplane/buildkit/root` so a rebuild reuses every unchanged step. Build
containers use the host's network (pip, apt and npm reach their registries as the host
does) and live in the `mediaplane-buildkit` cgroup, removed when the daemon stops.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from mediaplane.devcluster.binaries import Log, _stderr, cache_dir
from mediaplane.devcluster.processes import ManagedProcess, spawn, wait_until
from mediaplane.devcluster.realnode import cgroups
from mediaplane.devcluster.realnode.binaries import NodeBinaries, sbin_path

CGROUP_PARENT = "mediaplane-buildkit"


def root_dir() -> Path:
    return cache_dir() / "buildkit" / "root"


def render_config(*, root: Path, socket: Path, insecure_registries: Sequence[str]) -> str:
    lines = [
        f"root = {json.dumps(str(root))}",
        "[log]",
        '  format = "text"',
        "[grpc]",
        f"  address = [{json.dumps('unix://' + str(socket))}]",
        "[worker.oci]",
        "  enabled = true",
        '  snapshotter = "overlayfs"',
        '  networkMode = "host"',
        f"  defaultCgroupParent = {json.dumps(CGROUP_PARENT)}",
        "  gc = true",
        '  maxUsedSpace = "30GB"',
        '  minFreeSpace = "5GB"',
        "  max-parallelism = 2",
        "[worker.containerd]",
        "  enabled = false",
    ]
    for host in insecure_registries:
        lines += [f"[registry.{json.dumps(host)}]", "  http = true"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BuildResult:
    image: str
    digest: str
    seconds: float


class BuildKit:
    """`with BuildKit(bins, ["127.0.0.1:5000"]) as bk: bk.build(...)`."""

    def __init__(self, bins: NodeBinaries, insecure_registries: Sequence[str], *,
                 log: Log = _stderr) -> None:
        self.bins = bins
        self.insecure_registries = list(insecure_registries)
        self.log = log
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: ManagedProcess | None = None
        self._lock: IO[str] | None = None

    @property
    def run_dir(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("BuildKit is not started")
        return Path(self._tmp.name)

    @property
    def address(self) -> str:
        return f"unix://{self.run_dir / 'buildkitd.sock'}"

    def __enter__(self) -> BuildKit:
        root = root_dir()
        root.mkdir(parents=True, exist_ok=True)
        lock = (root.parent / "root.lock").open("w")
        if _locked(lock):
            self.log("waiting for the BuildKit cache (another build holds it)")
        fcntl.flock(lock, fcntl.LOCK_EX)
        self._lock = lock
        try:
            self._tmp = tempfile.TemporaryDirectory(prefix="mediaplane-buildkit-")
            config = self.run_dir / "buildkitd.toml"
            config.write_text(render_config(root=root, socket=self.run_dir / "buildkitd.sock",
                                            insecure_registries=self.insecure_registries))
            self._proc = spawn(
                "buildkitd",
                [str(self.bins.buildkitd), f"--config={config}", "--oci-worker=true",
                 "--containerd-worker=false"],
                {**os.environ, "PATH": sbin_path()},
                log_path=cache_dir() / "buildkit" / "buildkitd.log",
                stop_timeout=20.0,
            )
            wait_until(self._workers_ready, what="buildkitd", timeout=60.0, watch=[self._proc])
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None
        cgroups.remove_tree(CGROUP_PARENT)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _workers_ready(self) -> bool:
        done = subprocess.run([str(self.bins.buildctl), "--addr", self.address, "debug",
                               "workers"], capture_output=True, text=True, timeout=10,
                              check=False)
        return done.returncode == 0 and bool(done.stdout.strip())

    def build(self, *, context: Path, dockerfile: Path, image: str, target: str | None = None,
              build_args: Mapping[str, str] | None = None, log_path: Path) -> BuildResult:
        """Build `dockerfile` (the builtin Dockerfile frontend) and push it as `image`."""
        metadata = self.run_dir / f"metadata-{time.monotonic_ns()}.json"
        argv = [
            str(self.bins.buildctl), "--addr", self.address, "build",
            "--frontend", "dockerfile.v0",
            "--local", f"context={context}",
            "--local", f"dockerfile={dockerfile.parent}",
            "--opt", f"filename={dockerfile.name}",
            "--output", f"type=image,name={image},push=true,registry.insecure=true",
            "--metadata-file", str(metadata),
            "--progress", "plain",
        ]
        if target:
            argv += ["--opt", f"target={target}"]
        for key, value in (build_args or {}).items():
            argv += ["--opt", f"build-arg:{key}={value}"]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with log_path.open("ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
            out.flush()
            done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            from mediaplane.devcluster.processes import tail

            raise RuntimeError(f"building {image} failed (log {log_path}):\n{tail(log_path, 40)}")
        digest = json.loads(metadata.read_text())["containerimage.digest"]
        return BuildResult(image=image, digest=str(digest), seconds=time.monotonic() - started)


def _locked(fh: IO[str]) -> bool:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fh, fcntl.LOCK_UN)
    return False

