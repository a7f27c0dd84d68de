"""Small real media made with ffmpeg's generators, so tests need no fixtures on disk."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Media:
    path: Path
    mime: str
    kind: str

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def _ffmpeg(*args: str, timeout: float = 120) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=timeout)


def video_clip(directory: Path, seconds: int = 4, width: int = 640, height: int = 360,
               channels: int = 1) -> Media:
    """An H.264/AAC MP4 with moving test pictures and a tone (mono, or `channels`: stereo
    AAC is what the ladder copies rather than encodes). Written beside its final name and
    renamed when complete, so a run cut short never leaves a truncated clip to reuse."""
    layout = "" if channels == 1 else f"-{channels}ch"
    path = directory / f"clip-{width}x{height}-{seconds}s{layout}.mp4"
    if not path.exists():
        partial = path.with_suffix(".partial.mp4")
        # Up to 10 ms of wall time per 640x360 worth of frame: generous on a shared machine.
        budget = 120 + seconds * 25 * (width * height) / (640 * 360) * 0.01
        _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25:duration={seconds}",
                "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "96k", "-ac", str(channels), "-shortest",
                "-movflags", "+faststart", str(partial), timeout=budget)
        partial.rename(path)
    return Media(path, "video/mp4", "video")


def png_image(directory: Path, width: int = 800, height: int = 600) -> Media:
    path = directory / f"image-{width}x{height}.png"
    if not path.exists():
        _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=1", "-frames:v", "1",
                str(path))
    return Media(path, "image/png", "image")


def mp3_audio(directory: Path, seconds: int = 3) -> Media:
    path = directory / f"tone-{seconds}s.mp3"
    if not path.exists():
        _ffmpeg("-f", "lavfi", "-i", f"sine=frequency=660:sample_rate=44100:duration={seconds}",
                "-c:a", "libmp3lame", "-b:a", "128k", str(path))
    return Media(path, "audio/mpeg", "audio")


def ffprobe(target: str, *extra: str) -> dict[str, Any]:
    """ffprobe's JSON for a file or URL (streams and format)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", *extra, "-print_format", "json", "-show_streams",
         "-show_format", target], check=True, capture_output=True, text=True, timeout=60)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def decode_all(target: str, *extra: str) -> None:
    """Decodes every frame of every stream; raises with ffmpeg's complaint on any error."""
    proc = subprocess.run(["ffmpeg", "-v", "error", *extra, "-i", target, "-map", "0", "-f",
                           "null", "-"], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or proc.stderr.strip():
        raise AssertionError(f"decoding {target} failed: {proc.stderr[-2000:]}")
