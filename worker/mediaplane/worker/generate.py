"""The generate task: make an AI asset's source object and store it under its one key.

Images come from an image service (`providers`), speech from Piper on a voice loaded from
disk; ffmpeg turns either into the declared type. The bytes are posted through a POST
policy that accepts exactly the asset's source key and type, and the result carries their
sha256 and size: the operator records them as the asset's declaration, and the ordinary
probe then checks the stored object against it like any upload.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import random
import time
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from mediaplane.core.tasks import (
    VOICES_DIR_ENV,
    AudioFormat,
    GeneratedObject,
    GenerationKind,
    GenerationOutcome,
    GenerationTask,
    SpeechJob,
)
from mediaplane.worker import process
from mediaplane.worker.errors import (
    EXIT_INVALID_TASK,
    EXIT_TRANSCODE,
    EXIT_UPLOAD,
    InfraError,
)
from mediaplane.worker.sniff import Family, sniff

if TYPE_CHECKING:
    from mediaplane.core.tasks import WorkerTask

log = logging.getLogger(__name__)

ENCODE_TIMEOUT = 300.0
ATTEMPTS = 5
_GLOBAL = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y"]
_IMAGE_DEMUXERS = {Family.PNG: "png_pipe", Family.JPEG: "jpeg_pipe", Family.WEBP: "webp_pipe"}
_AUDIO_CODECS: dict[AudioFormat, list[str]] = {
    AudioFormat.MP3: ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"],
    AudioFormat.WAV: ["-c:a", "pcm_s16le", "-f", "wav"],
    AudioFormat.OGG: ["-c:a", "libopus", "-b:a", "64k", "-ar", "48000", "-f", "ogg"],
    AudioFormat.M4A: ["-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-f", "ipod"],
}


def _invalid(message: str) -> InfraError:
    return InfraError("InvalidTask", message, exit_code=EXIT_INVALID_TASK)


def _ffmpeg(argv: list[str], workdir: Path, what: str) -> None:
    done = process.run(argv, timeout=ENCODE_TIMEOUT, workdir=str(workdir))
    if not done.ok:
        raise InfraError("EncodeFailed", f"{what}: {done.stderr_tail[-300:]}",
                         exit_code=EXIT_TRANSCODE)


# --- images ------------------------------------------------------------------------------

def image_to_png(data: bytes, scratch: Path) -> bytes:
    """A PNG without metadata, whatever still the service answered (PNG, JPEG or WebP)."""
    family = sniff(data[:65536])
    demuxer = _IMAGE_DEMUXERS.get(family) if family is not None else None
    if demuxer is None:
        raise InfraError("ProviderInvalidAnswer", f"the service answered {family or 'bytes'}"
                         ", not a PNG, JPEG or WebP picture", exit_code=EXIT_TRANSCODE)
    source, out = scratch / "picture.in", scratch / "picture.png"
    source.write_bytes(data)
    _ffmpeg([*_GLOBAL, "-protocol_whitelist", "file", "-f", demuxer, "-i", str(source),
             "-frames:v", "1", "-map_metadata", "-1", "-fflags", "+bitexact",
             "-c:v", "png", "-f", "image2", "-update", "1", str(out)], scratch, "to PNG")
    return out.read_bytes()


def make_image(task: GenerationTask, scratch: Path) -> tuple[bytes, float]:
    from mediaplane.worker.providers import generate_image

    job = task.image
    if job is None:
        raise _invalid("an image generation needs `image`")
    prompt = f"{task.prompt}, {job.style_prompt}" if job.style_prompt else task.prompt
    started = time.monotonic()
    picture = generate_image(prompt, job)
    seconds = time.monotonic() - started
    return image_to_png(picture, scratch), seconds


# --- speech ------------------------------------------------------------------------------

def voice_files(job: SpeechJob, environ: dict[str, str] | None = None) -> tuple[Path, Path]:
    """The voice's .onnx and .onnx.json: from its package, or from the voices volume."""
    env = os.environ if environ is None else environ
    if job.package:
        module = importlib.import_module(job.package)
        return Path(module.model_path()), Path(module.config_path())
    if not job.model_path:
        raise _invalid(f"voice {job.voice!r} has neither a package nor a file")
    base = env.get(VOICES_DIR_ENV)
    if not base:
        raise _invalid(f"voice {job.voice!r} is a file but no voices volume is mounted")
    root = Path(base).resolve()
    model = (root / job.model_path).resolve()
    if not model.is_relative_to(root):
        raise _invalid(f"voice file {job.model_path!r} is outside the voices volume")
    config = model.with_name(model.name + ".json")
    if not model.is_file() or not config.is_file():
        raise InfraError("VoiceMissing", f"voice {job.voice!r}: {job.model_path} (and its "
                         ".json) not found on the voices volume", exit_code=EXIT_INVALID_TASK)
    return model, config


def synthesize(text: str, job: SpeechJob, wav_path: Path) -> float:
    """Piper to a WAV file; returns the seconds the synthesis took."""
    from piper import PiperVoice  # deferred: only speech tasks load onnxruntime

    model, config = voice_files(job)
    started = time.monotonic()
    voice = PiperVoice.load(model, config_path=config)
    with wave.open(str(wav_path), "wb") as out:
        voice.synthesize_wav(text, out)
    return time.monotonic() - started


def encode_speech(wav: Path, audio_format: AudioFormat, scratch: Path) -> bytes:
    """Piper's WAV in the asked format, without metadata."""
    out = scratch / f"speech.{audio_format.value}"
    _ffmpeg([*_GLOBAL, "-protocol_whitelist", "file", "-f", "wav", "-i", str(wav),
             "-map_metadata", "-1", "-fflags", "+bitexact", *_AUDIO_CODECS[audio_format],
             str(out)], scratch, f"to {audio_format.value}")
    return out.read_bytes()


def make_speech(task: GenerationTask, scratch: Path) -> tuple[bytes, float]:
    job = task.speech
    if job is None:
        raise _invalid("a speech generation needs `speech`")
    raw = scratch / "piper.wav"
    seconds = synthesize(task.prompt, job, raw)
    return encode_speech(raw, job.format, scratch), seconds


# --- storing -----------------------------------------------------------------------------

def store(task: GenerationTask, data: bytes) -> str:
    """POSTs the object through the one-key policy; returns the ETag storage answered."""
    target = task.target
    fields = {k: v for k, v in target.fields.items()
              if k.lower() not in ("key", "content-type")}
    fields["key"] = target.key_prefix
    fields["Content-Type"] = task.mime
    last = ""
    with httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0)) as client:
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(min(10.0, 0.5 * 2**attempt) * (0.5 + random.random()))  # noqa: S311
            try:
                response = client.post(target.url, data=fields,
                                       files={"file": ("source", data, task.mime)})
            except httpx.TransportError as exc:
                last = str(exc) or type(exc).__name__
                continue
            if response.status_code < 300:
                return str(response.headers.get("etag", "")).strip('"')
            last = f"{response.status_code} {response.text[:200]}"
            if response.status_code < 500 and response.status_code not in (408, 429):
                break
    raise InfraError("UploadFailed", f"source: {last}", exit_code=EXIT_UPLOAD)


def run_generation(task: WorkerTask, scratch: Path) -> GenerationOutcome:
    generation = task.generation
    if generation is None:
        raise _invalid("a generate task needs `generation`")
    if generation.kind is GenerationKind.IMAGE:
        data, seconds = make_image(generation, scratch)
    else:
        data, seconds = make_speech(generation, scratch)
    etag = store(generation, data)
    log.info("stored %d bytes (%s), model time %.2f s", len(data), generation.mime, seconds)
    return GenerationOutcome(generated=GeneratedObject(
        sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data), etag=etag,
        mime=generation.mime, provider_seconds=round(seconds, 3)))
