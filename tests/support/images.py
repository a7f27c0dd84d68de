"""Each image's distribution installed alone from wheels into a fresh virtualenv, exactly
as images/Dockerfile installs it: for the packaging tests, and for benchmarks that must
measure a process as its image runs it (not with the dev virtualenv's extra packages)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("core", "worker", "operator", "api")
WHEEL_EXTRAS = {"worker": "[speech,tts]"}


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mediaplane" / "wheelhouse"


def build_wheelhouse() -> Path:
    """Wheels of our distributions and every pinned dependency (the worker's with its
    speech and text-to-speech extras), built once per version of the sources into the
    cache."""
    digest = hashlib.sha256()
    for path in [ROOT / "constraints.txt", *(ROOT / c / "pyproject.toml" for c in COMPONENTS)]:
        digest.update(path.read_bytes())
    for component in COMPONENTS:
        for source in sorted((ROOT / component / "mediaplane").rglob("*")):
            if source.is_file() and "__pycache__" not in source.parts:
                digest.update(source.read_bytes())  # code, and the player's static files
    target = _cache_dir() / digest.hexdigest()[:16]
    if not (target / ".complete").exists():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
                        "--wheel-dir", str(target), "--constraint", str(ROOT / "constraints.txt"),
                        *(str(ROOT / c) + WHEEL_EXTRAS.get(c, "") for c in COMPONENTS)],
                       check=True, timeout=900)
        (target / ".complete").touch()
    return target


@dataclass(frozen=True)
class Image:
    name: str
    python: Path
    site_packages: Path

    def run(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.python), "-c", code], capture_output=True, text=True,
                              timeout=120, check=False, cwd="/")

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.site_packages.rglob("*") if p.is_file())


def install(name: str, wheelhouse: Path, root: Path, extras: str = "") -> Image:
    """mediaplane-<name> (with `extras`, e.g. "speech") alone in a new virtualenv."""
    venv = root / name
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    requirement = f"mediaplane-{name}{f'[{extras}]' if extras else ''}==0.1.0"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "-q", "--disable-pip-version-check", "--no-index",
                    "--find-links", str(wheelhouse), requirement], check=True, timeout=600)
    site = next((venv / "lib").glob("python3*/site-packages"))
    return Image(name, venv / "bin" / "python", site)
