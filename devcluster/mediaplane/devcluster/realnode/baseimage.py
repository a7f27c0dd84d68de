"""The base images of a build without Docker Hub: Debian bookworm made here by debootstrap.

`python`: minbase + python3.11 (Debian's, 3.11.2; ours is 3.11 too) + pip 25.3 (the pip
images/Dockerfile pins), in place of python:3.11-slim-bookworm. `node`: that plus
Debian's nodejs and npm, for the Dockerfile's `players` stage. Both pushed to the local
registry; images/Dockerfile takes them through its PYTHON_IMAGE and NODE_IMAGE build args.

What differs from the Docker Hub images, on purpose:
- the apt sources are this machine's for bookworm (main, updates, security), so the
  worker stage's `apt-get install ffmpeg` goes where the host's apt goes;
- the root CAs are Debian's plus those this machine adds
  (/usr/local/share/ca-certificates): pip, apt and npm in build containers then trust
  what the host trusts (a TLS-inspecting egress proxy, for one). Such a base is for this
  machine's registry only; Docker users keep the usual bases.
- python3.11's EXTERNALLY-MANAGED marker is removed: like the python images, the base is
  meant for `pip install` into the system interpreter.

The rootfs tarball and the image are cached by a key of everything above (suite,
packages, pip version, the host CA files, this recipe's version): debootstrap runs once.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mediaplane.devcluster.binaries import Log, _stderr, cache_dir
from mediaplane.devcluster.realnode import mounts
from mediaplane.devcluster.realnode.buildkit import BuildKit
from mediaplane.devcluster.realnode.registry import RegistryClient

RECIPE_VERSION = 1
SUITE = "bookworm"
VARIANT = "minbase"
PACKAGES = ("python3.11", "python3", "python-is-python3", "ca-certificates", "netbase")
PIP_VERSION = "25.3"
PYTHON_REPOSITORY = "mediaplane-base/python"
NODE_REPOSITORY = "mediaplane-base/node"
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
DOCKERFILES = Path(__file__).resolve().parent / "dockerfiles"

# debuerreotype's "slim" rules, as the Debian *-slim images have them.
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
"""
_APT_RM = "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"
APT_CLEAN = (f'DPkg::Post-Invoke {{ "{_APT_RM}"; }};\n'
             f'APT::Update::Post-Invoke {{ "{_APT_RM}"; }};\n'
             'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n')


@dataclass(frozen=True)
class DebianSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def _deb822_entries(text: str) -> Iterable[dict[str, str]]:
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith("#") or ":" not in line or line.startswith((" ", "\t")):
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if fields:
            yield fields


def host_sources(apt_dir: Path = Path("/etc/apt")) -> list[DebianSource]:
    """This machine's apt sources for bookworm (deb822 files and sources.list lines)."""
    found: list[DebianSource] = []
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for entry in _deb822_entries(path.read_text()):
            if "deb" not in entry.get("types", "").split() or entry.get(
                    "enabled", "yes") == "no":
                continue
            suites = tuple(s for s in entry.get("suites", "").split() if s.startswith(SUITE))
            for uri in entry.get("uris", "").split():
                if suites:
                    found.append(DebianSource(uri, suites,
                                              tuple(entry.get("components", "main").split())))
    lists = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            parts = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(parts) >= 4 and parts[0] == "deb" and parts[2].startswith(SUITE):
                found.append(DebianSource(parts[1], (parts[2],), tuple(parts[3:])))
    return found


def render_sources(sources: list[DebianSource]) -> str:
    blocks = []
    for source in sources:
        blocks.append(
            f"Types: deb\nURIs: {source.uri}\nSuites: {' '.join(source.suites)}\n"
            f"Components: {' '.join(source.components)}\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    return "\n".join(blocks)


def _host_cas() -> list[Path]:
    return sorted(HOST_CA_DIR.glob("**/*.crt")) if HOST_CA_DIR.is_dir() else []


def cache_key(sources: list[DebianSource]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({
        "recipe": RECIPE_VERSION, "suite": SUITE, "variant": VARIANT,
        "packages": PACKAGES, "pip": PIP_VERSION,
        "sources": [[s.uri, s.suites, s.components] for s in sources],
    }, sort_keys=True).encode())
    for ca in _host_cas():
        digest.update(ca.name.encode() + b"\0" + ca.read_bytes())
    return digest.hexdigest()[:16]


def base_dir() -> Path:
    return cache_dir() / "base"


def _chroot(root: Path, *argv: str) -> None:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": "/root", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["chroot", str(root), *argv], env=env, check=True)


def _slim(root: Path) -> None:
    """What DPKG_EXCLUDES keeps out of later installs, removed from this one."""
    for sub in ("groff", "info", "linda", "lintian", "locale", "man"):
        directory = root / "usr/share" / sub
        if directory.is_dir():
            shutil.rmtree(directory)
            directory.mkdir()
    for package in (root / "usr/share/doc").iterdir():
        if package.is_dir() and not package.is_symlink():
            for child in package.iterdir():
                if child.name == "copyright":
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()


def make_rootfs(tarball: Path, sources: list[DebianSource], log: Log) -> None:
    """debootstrap, then the changes listed in this module's docstring, into `tarball`."""
    tarball.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=tarball.parent))
    root = work / "rootfs"
    try:
        main = next((s.uri for s in sources if SUITE in s.suites), None)
        argv = ["debootstrap", f"--variant={VARIANT}", f"--include={','.join(PACKAGES)}",
                SUITE, str(root)]
        if main:
            argv.append(main)
        log(f"debootstrap {SUITE} ({VARIANT} + {' '.join(PACKAGES)}) into {root}")
        subprocess.run(["nice", "-n", "10", *argv], check=True,
                       stdout=subprocess.DEVNULL)
        (root / "etc/dpkg/dpkg.cfg.d/mediaplane-slim").write_text(DPKG_EXCLUDES)
        (root / "etc/apt/apt.conf.d/mediaplane-clean").write_text(APT_CLEAN)
        _slim(root)
        if sources:
            (root / "etc/apt/sources.list").write_text("")
            (root / "etc/apt/sources.list.d/debian.sources").write_text(render_sources(sources))
        for ca in _host_cas():
            target = root / "usr/local/share/ca-certificates" / ca.relative_to(HOST_CA_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ca, target)
        _chroot(root, "update-ca-certificates")
        # pip installs itself from its own wheel (a wheel is importable): no get-pip.
        wheel_dir = root / "root" / "pip-wheel"
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--dest", str(wheel_dir), f"pip=={PIP_VERSION}"], check=True)
        wheel = "/root/pip-wheel/" + next(wheel_dir.glob("pip-*.whl")).name
        (root / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
        _chroot(root, "python3", f"{wheel}/pip", "install", "--quiet", "--no-index",
                "--no-cache-dir", "--root-user-action=ignore", wheel)
        shutil.rmtree(wheel_dir)
        for path in ("var/lib/apt/lists", "var/cache/apt/archives", "var/log"):
            for child in (root / path).glob("*"):
                if child.is_file():
                    child.unlink()
        for name in ("etc/resolv.conf", "etc/hostname", "etc/machine-id"):
            target = root / name
            if target.exists() or target.is_symlink():
                target.unlink()
                target.write_text("")
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf",
                        str(partial), "."], check=True)
        partial.replace(tarball)
    finally:
        mounts.unmount_all(work)
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class BaseImages:
    python: str
    node: str


def ensure(buildkit: BuildKit, registry_host: str, log: Log = _stderr) -> BaseImages:
    """Both base images in the registry at `registry_host` (built only when missing)."""
    sources = host_sources()
    key = cache_key(sources)
    client = RegistryClient(f"http://{registry_host}")
    python_ref = f"{registry_host}/{PYTHON_REPOSITORY}:{key}"
    node_ref = f"{registry_host}/{NODE_REPOSITORY}:{key}"
    if client.manifest(PYTHON_REPOSITORY, key) is None:
        context = base_dir() / key
        tarball = context / "rootfs.tar"
        if not tarball.is_file():
            make_rootfs(tarball, sources, log)
        log(f"pushing {python_ref}")
        buildkit.build(context=context, dockerfile=DOCKERFILES / "python-base.Dockerfile",
                       image=python_ref, log_path=base_dir() / "build.log")
    if client.manifest(NODE_REPOSITORY, key) is None:
        log(f"building {node_ref} (Debian's nodejs and npm on the base)")
        with tempfile.TemporaryDirectory() as empty:
            buildkit.build(context=Path(empty), dockerfile=DOCKERFILES / "node-base.Dockerfile",
                           image=node_ref, build_args={"BASE_IMAGE": python_ref},
                           log_path=base_dir() / "build.log")
    return BaseImages(python=python_ref, node=node_ref)

