"""The project's images built without Docker: BuildKit, a local registry, debootstrap bases.

    python -m mediaplane.devcluster.realnode.images [--tag 0.1.0] [TARGET ...]

builds the `operator`, `api` and `worker` targets of images/Dockerfile (FROM the local
bases through its PYTHON_IMAGE and NODE_IMAGE build args), pushes them to the local
registry as mediaplane/<target>:<tag>, and prints each image's size. `make images` runs
this where there is no Docker engine. A real node also needs the pause image and an
in-cluster S3 store (SeaweedFS), built the same way.

Every step is cached: the bases by their recipe, the build steps by BuildKit, so a second
run with nothing changed takes seconds and pushes nothing new.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mediaplane.devcluster.binaries import Log, _stderr, cache_dir
from mediaplane.devcluster.ports import LOOPBACK, free_port
from mediaplane.devcluster.processes import ManagedProcess, spawn, wait_until
from mediaplane.devcluster.realnode import baseimage, binaries, registry
from mediaplane.devcluster.realnode.buildkit import BuildKit, BuildResult

TARGETS = ("operator", "api", "worker")
DEFAULT_TAG = "0.1.0"
PAUSE_REPOSITORY = "mediaplane/pause"
SEAWEEDFS_REPOSITORY = "mediaplane/seaweedfs"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[4]


def dockerfile() -> Path:
    return repo_root() / "images" / "Dockerfile"


@dataclass(frozen=True)
class BuiltImage:
    target: str
    reference: str  # registry/repository:tag
    pinned: str  # registry/repository@sha256:...
    seconds: float

    @property
    def repository(self) -> str:
        return self.reference.rsplit(":", 1)[0]

    @property
    def digest(self) -> str:
        return self.pinned.split("@", 1)[1]


def _built(target: str, result: BuildResult) -> BuiltImage:
    repository = result.image.rsplit(":", 1)[0]
    return BuiltImage(target, result.image, f"{repository}@{result.digest}", result.seconds)


@contextlib.contextmanager
def local_registry(address: str | None = None, *, log: Log = _stderr) -> Iterator[str]:
    """Serve the registry storage on `address` (default: a free port on 127.0.0.1) while
    the block runs; yields the host:port to push to."""
    bins = binaries.ensure_node_binaries(log=log, names=binaries.BUILD_TOOLS)
    address = address or f"{LOOPBACK}:{free_port()}"
    with tempfile.TemporaryDirectory(prefix="mediaplane-registry-") as tmp:
        config = registry.write_config(Path(tmp) / "config.yml", address)
        proc = spawn("registry", registry.argv(bins.registry, config),
                     {**registry.env(), "PATH": "/usr/bin:/bin"},
                     log_path=cache_dir() / "registry" / "registry.log", stop_timeout=5.0)
        try:
            client = registry.RegistryClient(f"http://{address}")
            wait_until(client.ready, what="the image registry", timeout=30.0, watch=[proc])
            yield address
        finally:
            proc.stop()


def start_registry(address: str, log_path: Path) -> ManagedProcess:
    """The registry as a process a caller owns (a real node keeps it for its life)."""
    bins = binaries.node_binaries()
    config = registry.write_config(log_path.parent / "registry.yml", address)
    proc = spawn("registry", registry.argv(bins.registry, config),
                 {**registry.env(), "PATH": "/usr/bin:/bin"}, log_path=log_path,
                 stop_timeout=5.0)
    wait_until(registry.RegistryClient(f"http://{address}").ready,
               what="the image registry", timeout=30.0, watch=[proc])
    return proc


def build_project(buildkit: BuildKit, registry_host: str, *, tag: str = DEFAULT_TAG,
                  targets: Sequence[str] = TARGETS, log: Log = _stderr) -> list[BuiltImage]:
    bases = baseimage.ensure(buildkit, registry_host, log=log)
    built = []
    for target in targets:
        image = f"{registry_host}/mediaplane/{target}:{tag}"
        log(f"building {image} (images/Dockerfile --target {target})")
        result = buildkit.build(
            context=repo_root(), dockerfile=dockerfile(), target=target, image=image,
            build_args={"PYTHON_IMAGE": bases.python, "NODE_IMAGE": bases.node},
            log_path=cache_dir() / "images" / f"{target}.log")
        built.append(_built(target, result))
    return built


def build_pause(buildkit: BuildKit, registry_host: str, *, log: Log = _stderr) -> BuiltImage:
    """The pod sandbox image (FROM scratch: no base image needed)."""
    bins = binaries.ensure_node_binaries(log=log, names=("pause",))
    context = _stable_context("pause", {"pause": bins.pause})
    image = f"{registry_host}/{PAUSE_REPOSITORY}:{binaries.PAUSE_VERSION}"
    return _built("pause", buildkit.build(
        context=context, dockerfile=baseimage.DOCKERFILES / "pause.Dockerfile", image=image,
        log_path=cache_dir() / "images" / "pause.log"))


def build_seaweedfs(buildkit: BuildKit, registry_host: str, *,
                    log: Log = _stderr) -> BuiltImage:
    """SeaweedFS for an in-cluster S3 store: the dev cluster's own `weed` on the base."""
    from mediaplane.devcluster import seaweed

    bases = baseimage.ensure(buildkit, registry_host, log=log)
    weed = seaweed.weed_binary()
    context = _stable_context("seaweedfs", {"weed": weed})
    image = f"{registry_host}/{SEAWEEDFS_REPOSITORY}:{_weed_version(weed)}"
    return _built("seaweedfs", buildkit.build(
        context=context, dockerfile=baseimage.DOCKERFILES / "seaweedfs.Dockerfile",
        image=image, build_args={"BASE_IMAGE": bases.python},
        log_path=cache_dir() / "images" / "seaweedfs.log"))


def build_node_images(buildkit: BuildKit, registry_host: str, *,
                      log: Log = _stderr) -> dict[str, BuiltImage]:
    """The pause image and SeaweedFS, which a real node runs besides the project's."""
    return {"pause": build_pause(buildkit, registry_host, log=log),
            "seaweedfs": build_seaweedfs(buildkit, registry_host, log=log)}


def _weed_version(weed: Path) -> str:
    """4.48 of `version 8000GB 4.48 pypi linux amd64` (8000GB is the build's volume limit)."""
    import re
    import subprocess

    done = subprocess.run([str(weed), "version"], capture_output=True, text=True, check=False)
    found = re.search(r"\b\d+\.\d+(?:\.\d+)?\b", done.stdout)
    return found.group(0) if found else "latest"


def _stable_context(name: str, files: dict[str, Path]) -> Path:
    """A build context dir that keeps its files between builds (BuildKit then sends and
    hashes nothing new); a file is copied again only when it changed."""
    import shutil

    context = cache_dir() / "images" / "contexts" / name
    context.mkdir(parents=True, exist_ok=True)
    for target_name, source in files.items():
        target = context / target_name
        src = source.stat()
        if (not target.exists() or target.stat().st_size != src.st_size
                or int(target.stat().st_mtime) != int(src.st_mtime)):
            shutil.copy2(source, target)
    return context


def unpacked_bytes(repository: str, tag: str, client: registry.RegistryClient) -> int:
    """The size of an image's layers once unpacked (what a node stores), read from the
    registry's own files."""
    total = 0
    for digest in client.layer_digests(repository, tag):
        decompressor = zlib.decompressobj(wbits=47)  # gzip or zlib headers
        with registry.blob_path(digest).open("rb") as fh:
            while chunk := fh.read(1 << 20):
                total += len(decompressor.decompress(chunk))
        total += len(decompressor.flush())
    return total


def size_table(images: Sequence[BuiltImage], registry_host: str) -> str:
    client = registry.RegistryClient(f"http://{registry_host}")
    rows = ["image                              layers   compressed     unpacked"]
    for image in images:
        repository = image.repository.split("/", 1)[1]
        tag = image.reference.rsplit(":", 1)[1]
        info = client.info(repository, tag)
        if info is None:
            rows.append(f"{image.reference}: not in the registry")
            continue
        unpacked = unpacked_bytes(repository, tag, client)
        name = f"{repository}:{tag}"
        rows.append(f"{name:<34} {info.layers:>6} {_mib(info.compressed_bytes):>12}"
                    f" {_mib(unpacked):>12}")
    return "\n".join(rows)


def _mib(value: int) -> str:
    return f"{value / (1 << 20):.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mediaplane.devcluster.realnode.images",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help=f"of images/Dockerfile (default: {' '.join(TARGETS)})")
    parser.add_argument("--tag", default=DEFAULT_TAG)
    parser.add_argument("--node-images", action="store_true",
                        help="also the pause and SeaweedFS images a real node runs")
    args = parser.parse_args(argv)
    targets = args.targets or list(TARGETS)
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s) {' '.join(unknown)}; choose from {' '.join(TARGETS)}")
    problems = binaries.check_host(images_only=True)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    started = time.monotonic()
    bins = binaries.ensure_node_binaries(names=binaries.BUILD_TOOLS)
    with local_registry() as host, BuildKit(bins, [host]) as buildkit:
        built = build_project(buildkit, host, tag=args.tag, targets=targets)
        if args.node_images:
            built += list(build_node_images(buildkit, host).values())
        print(size_table(built, host))
    for image in built:
        print(f"{image.target}: {image.pinned.split('/', 1)[1]} ({image.seconds:.0f} s)")
    print(f"built in {time.monotonic() - started:.0f} s; registry storage {registry.storage_dir()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
