"""The worker end to end: a real S3 server, real media, the worker as its pod runs it.

Inputs are read through presigned GETs and outputs written through a presigned POST policy,
exactly as the operator presigns them; assertions look at what landed in the bucket.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any

import m3u8
import pytest
import webvtt
from mpegdash.parser import MPEGDASHParser

from bench.pipeline import worker_cpu
from mediaplane.core import commands
from mediaplane.core.ladder import Ladder, probe_audio, speculative_rung
from mediaplane.core.podenv import LAUNCH_ENV
from mediaplane.core.tasks import Expected, SharedOutput, TaskType, VariantSpec, WorkerTask
from tests.support.media import video_clip
from tests.worker.conftest import ffprobe_report, run_worker_process, worker_command

if TYPE_CHECKING:
    from pathlib import Path

    from tests.worker.conftest import FfprobeJson, Media, RunWorker, S3Bucket

ASSET = "tenants/acme/assets/mda_0123456789abcdefghjkmnpqrs/"


def source(s3: S3Bucket, media_path: Path, name: str, mime: str) -> str:
    """Each test stores its own source under the layout's fixed name `source`."""
    return s3.put_source(f"{ASSET}{name}/source", media_path, mime)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def probe_task(url: str, path: Path, mime: str, kind: str, **override: Any) -> WorkerTask:
    expected = {"sha256": sha256(path), "size_bytes": path.stat().st_size, "mime": mime,
                "kind": kind} | override
    return WorkerTask(type=TaskType.PROBE, input_url=url,
                      expected=Expected.model_validate(expected))


def variant_task(s3: S3Bucket, url: str, variant: dict[str, Any], prefix: str) -> WorkerTask:
    spec = VariantSpec.model_validate(variant)
    return WorkerTask(type=TaskType.producing(spec.type), input_url=url, variant=spec,
                      output=s3.presign_output(prefix))


def audio_packets(ffprobe_json: FfprobeJson, path: Path) -> list[tuple[str, str]]:
    """(pts, size) of each packet of the first audio stream: equal lists mean a copy."""
    report = ffprobe_json(path, "-select_streams", "a:0", "-show_packets")
    return [(p["pts"], p["size"]) for p in report["packets"]]


def join_segments(root: Path, playlist: m3u8.M3U8) -> Path:
    """init + media segments in playlist order: what a player feeds its decoder."""
    joined = root / "joined.mp4"
    with joined.open("wb") as out:
        out.write((root / playlist.segment_map[0].uri).read_bytes())
        for segment in playlist.segments:
            out.write((root / segment.uri).read_bytes())
    return joined


# --- probe ----------------------------------------------------------------------------


def test_probe_accepts_the_clip(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path,
) -> None:
    url = source(s3_bucket, media.clip, "probe-clip", "video/mp4")
    run = run_worker(probe_task(url, media.clip, "video/mp4", "video"), tmp_path)
    assert run.returncode == 0, run.stderr
    result = run.result
    assert result["kind"] == "probe"
    assert result["verdict"] == "accepted"
    probe = result["probe"]
    assert probe["detectedMime"] == "video/mp4"
    assert probe["formatName"] == "mov,mp4,m4a,3gp,3g2,mj2"
    assert probe["durationSeconds"] == pytest.approx(4.0, abs=0.1)
    assert (probe["width"], probe["height"]) == (640, 360)
    assert (probe["videoCodec"], probe["audioCodec"]) == ("h264", "aac")
    # what the ladder reads to copy the audio rather than encode it
    assert (probe["audioProfile"], probe["audioChannels"], probe["audioSampleRate"]) == (
        "LC", 2, 48000)
    assert 64_000 <= probe["audioBitrate"] <= 192_000
    assert probe["hasVideo"] is True
    assert probe["hasAudio"] is True


def beside_probe(s3: S3Bucket, task: WorkerTask, prefix: str) -> WorkerTask:
    """The probe task asking its pod to copy the audio once it accepts the source, as the
    operator writes it for a video (`ladder.probe_audio`)."""
    audio = probe_audio(Ladder())
    assert audio is not None
    return task.model_copy(update={"also": [
        SharedOutput(variant=audio, output=s3.presign_output(prefix))]})


def test_the_probes_pod_copies_the_audio_once_it_accepts_the_source(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path, ffprobe_json:
    FfprobeJson,
) -> None:
    url = source(s3_bucket, media.clip, "probe-beside", "video/mp4")
    prefix = f"{ASSET}variants/probe-beside-audio/"
    task = beside_probe(s3_bucket, probe_task(url, media.clip, "video/mp4", "video"), prefix)
    run = run_worker(task, tmp_path / "run")
    assert run.returncode == 0, run.stderr + run.result_text
    assert run.result["verdict"] == "accepted"
    (out,) = run.result["also"]
    assert (out["name"], out["codecs"]) == ("audio", "mp4a.40.2")
    local = tmp_path / "fetched"
    types = s3_bucket.fetch_all(prefix, local)
    assert types["init.m4s"] == "audio/mp4"
    joined = join_segments(local, m3u8.load(str(local / out["playlist"])))

    assert audio_packets(ffprobe_json, joined) == audio_packets(ffprobe_json, media.clip), \
        "copied: the source's own AAC packets"


def test_the_probes_pod_reads_the_source_once_and_copies_the_audio_from_that_copy(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path,
) -> None:
    """The source comes from a loopback server that counts its requests: the probe's
    download is the only one, so the audio was copied from the bytes the probe checked."""
    body = media.clip.read_bytes()
    requests: list[str] = []

    class Source(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.headers.get("Range") or "whole")
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            del args

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Source)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{ASSET}probe-once/source"
        prefix = f"{ASSET}variants/probe-once-audio/"
        task = beside_probe(s3_bucket, probe_task(url, media.clip, "video/mp4", "video"),
                            prefix)
        run = run_worker(task, tmp_path / "run")
    finally:
        server.shutdown()
        server.server_close()
    assert run.returncode == 0, run.stderr + run.result_text
    (out,) = run.result["also"]
    assert out["name"] == "audio"
    assert requests == ["whole"], "one download: the audio copy read the checked copy"


def test_the_probes_pod_copies_nothing_it_would_have_to_encode_or_refuses(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path,
) -> None:
    """Mono sound must be encoded (its own pod does that); a refused source gets nothing."""
    mono = video_clip(tmp_path, seconds=2, channels=1)
    url = source(s3_bucket, mono.path, "probe-mono", "video/mp4")
    prefix = f"{ASSET}variants/probe-mono-audio/"
    run = run_worker(beside_probe(s3_bucket, probe_task(url, mono.path, "video/mp4",
                                                        "video"), prefix), tmp_path / "a")
    assert run.returncode == 0, run.stderr + run.result_text
    assert run.result["verdict"] == "accepted"
    assert "also" not in run.result
    assert s3_bucket.fetch_all(prefix, tmp_path / "none-a") == {}

    url = source(s3_bucket, media.clip, "probe-refused", "video/mp4")
    prefix = f"{ASSET}variants/probe-refused-audio/"
    task = probe_task(url, media.clip, "video/mp4", "video", sha256="0" * 64)
    run = run_worker(beside_probe(s3_bucket, task, prefix), tmp_path / "b")
    assert run.returncode == 0, run.stderr + run.result_text
    assert run.result["verdict"] == "quarantined"
    assert "also" not in run.result
    assert s3_bucket.fetch_all(prefix, tmp_path / "none-b") == {}


def with_rung(s3: S3Bucket, task: WorkerTask, prefix: str, *, launch: bool = False,
              max_source_seconds: float = 300.0) -> tuple[WorkerTask, dict[str, str]]:
    """The probe task asking its pod to encode the lowest rung meanwhile too, as the
    operator writes it (`ladder.rung_beside_probe`, segments stored during the encode once
    the source is accepted), and the pod's launch of that encode (`MEDIAPLANE_LAUNCH`) when
    `launch`."""
    rung = speculative_rung(Ladder())
    task = task.model_copy(update={"stream_segments": True, "also": [
        *(task.also or []), SharedOutput(variant=rung, output=s3.presign_output(prefix),
                                         max_source_seconds=max_source_seconds)]})
    first = commands.first_command(task)
    assert first is not None, "the rung is the probe's first command"
    return task, ({LAUNCH_ENV: first.to_json()} if launch else {})


@pytest.mark.parametrize("launch", [True, False], ids=["launched", "started-by-the-worker"])
def test_the_probes_pod_encodes_the_lowest_rung_while_it_checks_the_source(
    s3_bucket: S3Bucket, media: Media, tmp_path: Path, ffprobe_json: FfprobeJson,
    launch: bool,
) -> None:
    url = source(s3_bucket, media.clip, f"probe-rung-{launch}", "video/mp4")
    audio_prefix = f"{ASSET}variants/probe-rung-{launch}-audio/"
    rung_prefix = f"{ASSET}variants/probe-rung-{launch}-240p/"
    task, env = with_rung(s3_bucket, beside_probe(s3_bucket, probe_task(
        url, media.clip, "video/mp4", "video"), audio_prefix), rung_prefix, launch=launch)
    run = run_worker_process(task, tmp_path / "run", extra_env=env)
    assert run.returncode == 0, run.stderr + run.result_text
    assert run.result["verdict"] == "accepted"
    assert [(o["name"], o.get("height")) for o in run.result["also"]] == [
        ("audio", None), ("240p", 240)]
    if launch:
        assert "adopting ffmpeg" in run.stderr
    local = tmp_path / "fetched"
    s3_bucket.fetch_all(rung_prefix, local)
    playlist = m3u8.load(str(local / run.result["also"][1]["playlist"]))
    joined = join_segments(local, playlist)
    (video,) = ffprobe_json(joined, "-select_streams", "v:0")["streams"]
    assert (video["codec_name"], video["height"]) == ("h264", 240)
    assert sum(s.duration for s in playlist.segments) == pytest.approx(4.0, abs=0.1)
    # The rung's own ffmpeg copied the audio: no ffmpeg of its own, the source's packets.
    assert "ffmpeg wrote 240p and audio" in run.stderr
    assert "ffmpeg wrote audio" not in run.stderr
    sound = tmp_path / "fetched-audio"
    s3_bucket.fetch_all(audio_prefix, sound)
    joined_sound = join_segments(sound, m3u8.load(str(sound / run.result["also"][0]["playlist"])))
    assert audio_packets(ffprobe_json, joined_sound) == audio_packets(ffprobe_json, media.clip)
    assert not list((tmp_path / "run" / "scratch").rglob("*.m4s")), "the scratch is cleaned"


def clip_with_sound(directory: Path, sound_seconds: float | None) -> Path:
    """4 s of 640x360 H.264 with `sound_seconds` of stereo AAC (None: no audio stream)."""
    path = directory / f"clip-sound-{sound_seconds}.mp4"
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=4"]
    if sound_seconds is not None:
        argv += ["-f", "lavfi", "-i",
                 f"sine=frequency=440:sample_rate=48000:duration={sound_seconds}",
                 "-ac", "2", "-c:a", "aac", "-b:a", "128k"]
    subprocess.run([*argv, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                    str(path)], check=True, timeout=120)
    return path


def test_the_audio_copied_beside_the_rung_is_copied_again_when_it_is_not_whole(
    s3_bucket: S3Bucket, tmp_path: Path, ffprobe_json: FfprobeJson,
) -> None:
    """Sound that ends 3 s before the picture: the rung's copy ends where the rung's
    video does not, so the pod copies the audio again with an ffmpeg of its own, from the
    checked local copy, and stores that (the same sound)."""
    clip = clip_with_sound(tmp_path, 1.0)
    url = source(s3_bucket, clip, "probe-short-sound", "video/mp4")
    audio_prefix = f"{ASSET}variants/probe-short-sound-audio/"
    task, env = with_rung(s3_bucket, beside_probe(s3_bucket, probe_task(
        url, clip, "video/mp4", "video"), audio_prefix),
        f"{ASSET}variants/probe-short-sound-240p/", launch=True)
    run = run_worker_process(task, tmp_path / "run", extra_env=env)
    assert run.returncode == 0, run.stderr + run.result_text
    assert [o["name"] for o in run.result["also"]] == ["audio", "240p"]
    assert "not whole: copied again" in run.stderr
    assert "ffmpeg wrote audio" in run.stderr
    sound = tmp_path / "fetched"
    s3_bucket.fetch_all(audio_prefix, sound)
    joined = join_segments(sound, m3u8.load(str(sound / run.result["also"][0]["playlist"])))
    assert audio_packets(ffprobe_json, joined) == audio_packets(ffprobe_json, clip)


def test_a_source_without_sound_keeps_its_rung_when_the_audio_copy_was_asked_for(
    s3_bucket: S3Bucket, tmp_path: Path,
) -> None:
    """The rung's ffmpeg was told to copy the audio before anyone knew there was none: that
    output fails alone, and the rung is stored whole."""
    clip = clip_with_sound(tmp_path, None)
    url = source(s3_bucket, clip, "probe-no-sound", "video/mp4")
    audio_prefix = f"{ASSET}variants/probe-no-sound-audio/"
    rung_prefix = f"{ASSET}variants/probe-no-sound-240p/"
    task, env = with_rung(s3_bucket, beside_probe(s3_bucket, probe_task(
        url, clip, "video/mp4", "video"), audio_prefix), rung_prefix, launch=True)
    run = run_worker_process(task, tmp_path / "run", extra_env=env)
    assert run.returncode == 0, run.stderr + run.result_text
    assert run.result["probe"]["hasAudio"] is False
    (rung,) = run.result["also"]
    assert rung["name"] == "240p"
    assert rung["durationSeconds"] == pytest.approx(4.0, abs=0.1)
    assert s3_bucket.fetch_all(audio_prefix, tmp_path / "none") == {}
    assert len(s3_bucket.list_keys(rung_prefix)) == rung["files"]


def test_the_probes_pod_stores_the_rungs_segments_from_its_verdict_on(
    s3_bucket: S3Bucket, tmp_path: Path,
) -> None:
    """Once the source is accepted, the rung's segments written so far and those to come
    are stored while the encode goes on; the rendition is the same whole one."""
    clip = video_clip(tmp_path, seconds=30, width=1280, height=720)
    url = source(s3_bucket, clip.path, "probe-rung-streamed", "video/mp4")
    prefix = f"{ASSET}variants/probe-rung-streamed-240p/"
    task, env = with_rung(s3_bucket, probe_task(url, clip.path, "video/mp4", "video"),
                          prefix, launch=True)
    run = run_worker_process(task, tmp_path / "run", extra_env=env)
    assert run.returncode == 0, run.stderr + run.result_text
    assert "segments during the encode" in run.stderr, run.stderr
    # The pod's CPU, split as `bench.pipeline` reads it from the worker's last line: the
    # rung's ffmpeg (30 s of 720p) outweighs the worker's own interpreter.
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    own, commands_cpu = worker_cpu(lines) or (0.0, 0.0)
    assert 0 < own < commands_cpu, lines[-1]
    (rung,) = run.result["also"]
    keys = s3_bucket.list_keys(prefix)
    assert (len(keys), sum(keys.values())) == (rung["files"], rung["bytes"])
    local = tmp_path / "fetched"
    s3_bucket.fetch_all(prefix, local)
    playlist = m3u8.load(str(local / rung["playlist"]))
    assert sum(s.duration for s in playlist.segments) == pytest.approx(30.0, abs=0.1)
    assert {f"{prefix}{s.uri}" for s in playlist.segments} < set(keys)


def test_a_refused_source_stops_the_rung_and_stores_nothing(
    s3_bucket: S3Bucket, media: Media, tmp_path: Path,
) -> None:
    """The encode started before the verdict; a refused source (a wrong checksum) stops it,
    and nothing of it is uploaded, though the task asks for segments during the encode."""
    long_clip = video_clip(tmp_path, seconds=20)  # its 240p takes longer than the checks
    url = source(s3_bucket, long_clip.path, "probe-rung-refused", "video/mp4")
    prefix = f"{ASSET}variants/probe-rung-refused-240p/"
    task, env = with_rung(s3_bucket, probe_task(url, long_clip.path, "video/mp4", "video",
                                                sha256="0" * 64), prefix, launch=True)
    run = run_worker_process(task, tmp_path / "run", extra_env=env)
    assert run.returncode == 0, run.stderr + run.result_text
    assert run.result["verdict"] == "quarantined"
    assert "also" not in run.result
    assert "stopped the 240p encode before its end" in run.stderr
    assert s3_bucket.fetch_all(prefix, tmp_path / "none") == {}
    assert not any((tmp_path / "run" / "scratch").iterdir()), "the scratch is cleaned"


def test_a_source_too_long_for_the_probes_pod_gets_no_rung(
    s3_bucket: S3Bucket, media: Media, tmp_path: Path,
) -> None:
    """A source as long as the ladder splits into chunks: the rung is stopped at the
    verdict and left to its own pods (the operator's `made_by_probe` finds none)."""
    url = source(s3_bucket, media.clip, "probe-rung-long", "video/mp4")
    prefix = f"{ASSET}variants/probe-rung-long-240p/"
    task, env = with_rung(s3_bucket, probe_task(url, media.clip, "video/mp4", "video"),
                          prefix, launch=True, max_source_seconds=2.0)
    run = run_worker_process(task, tmp_path / "run", extra_env=env)
    assert run.returncode == 0, run.stderr + run.result_text
    assert run.result["verdict"] == "accepted"
    assert "also" not in run.result
    assert s3_bucket.fetch_all(prefix, tmp_path / "none") == {}


@pytest.mark.parametrize(("attr", "mime", "kind", "expect"), [
    ("png", "image/png", "image", {"width": 640, "height": 360, "detectedMime": "image/png"}),
    ("jpeg_exif", "image/jpeg", "image", {"width": 240, "height": 320}),
    ("mp3", "audio/mpeg", "audio", {"audioCodec": "mp3", "hasVideo": False,
                                    "detectedMime": "audio/mpeg"}),
    ("wav", "audio/wav", "audio", {"audioCodec": "pcm_s16le", "formatName": "wav"}),
])
def test_probe_accepts(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path, attr: str, mime:
    str, kind: str, expect: dict[str, Any],
) -> None:
    path: Path = getattr(media, attr)
    url = source(s3_bucket, path, f"probe-{attr}", mime)
    run = run_worker(probe_task(url, path, mime, kind), tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.result["verdict"] == "accepted", run.result
    assert expect.items() <= run.result["probe"].items()


def test_png_declared_as_mp4_is_quarantined(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path,
) -> None:
    url = source(s3_bucket, media.png, "png-as-mp4", "video/mp4")
    run = run_worker(probe_task(url, media.png, "video/mp4", "video"), tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.result["verdict"] == "quarantined"
    assert run.result["reason"] == "TypeMismatch"
    assert "png" in run.result["message"]
    assert "probe" not in run.result


def test_wrong_sha256_is_quarantined(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path,
) -> None:
    url = source(s3_bucket, media.clip, "bad-hash", "video/mp4")
    task = probe_task(url, media.clip, "video/mp4", "video", sha256="ab" * 32)
    run = run_worker(task, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.result["verdict"] == "quarantined"
    assert run.result["reason"] == "ChecksumMismatch"
    assert sha256(media.clip) in run.result["message"]


def test_wrong_size_is_quarantined(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path,
) -> None:
    url = source(s3_bucket, media.clip, "bad-size", "video/mp4")
    task = probe_task(url, media.clip, "video/mp4", "video", size_bytes=1000)
    run = run_worker(task, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.result["reason"] == "SizeMismatch"
    assert not list((tmp_path / "scratch").rglob("source"))  # scratch cleaned up


def test_audio_declared_as_video_is_a_kind_mismatch(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path,
) -> None:
    url = source(s3_bucket, media.m4a, "m4a-as-video", "video/mp4")
    run = run_worker(probe_task(url, media.m4a, "video/mp4", "video"), tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.result["reason"] == "KindMismatch"


def test_unreachable_input_is_an_infrastructure_failure(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path,
) -> None:
    url = s3_bucket.presign_get(f"{ASSET}missing/source")
    run = run_worker(probe_task(url, media.clip, "video/mp4", "video"), tmp_path)
    assert run.returncode != 0
    assert run.result_text.startswith("InputUnreachable:")
    assert len(run.result_text.encode()) <= 4096


# --- renditions -----------------------------------------------------------------------


def test_video_rung(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path, ffprobe_json:
    FfprobeJson,
) -> None:
    url = source(s3_bucket, media.clip, "video", "video/mp4")
    prefix = f"{ASSET}variants/240p/"
    variant = {"name": "240p", "type": "video", "height": 240, "video_bitrate_kbps": 400,
               "segment_seconds": 2}
    run = run_worker(variant_task(s3_bucket, url, variant, prefix), tmp_path / "run")
    assert run.returncode == 0, run.stderr + run.result_text
    out = run.result["output"]
    assert run.result["kind"] == "variant"
    assert (out["name"], out["width"], out["height"]) == ("240p", 426, 240)
    assert out["codecs"].startswith("avc1.64")
    assert out["playlist"] == "media_0.m3u8"
    assert out["mpd"] == "manifest.mpd"
    assert out["durationSeconds"] == pytest.approx(4.0, abs=0.1)
    assert out["bandwidth"] >= 400_000

    keys = s3_bucket.list_keys(prefix)
    assert len(keys) == out["files"]
    assert sum(keys.values()) == out["bytes"]
    assert {f"{prefix}init.m4s", f"{prefix}seg-00001.m4s", f"{prefix}seg-00002.m4s",
            f"{prefix}media_0.m3u8", f"{prefix}manifest.mpd"} <= set(keys)
    assert f"{prefix}master.m3u8" not in keys  # masters are the operator's

    local = tmp_path / "fetched"
    types = s3_bucket.fetch_all(prefix, local)
    assert types["media_0.m3u8"] == "application/vnd.apple.mpegurl"
    assert types["manifest.mpd"] == "application/dash+xml"
    assert types["seg-00001.m4s"] == "video/mp4"

    playlist = m3u8.load(str(local / "media_0.m3u8"))
    assert playlist.is_endlist
    assert playlist.segment_map[0].uri == "init.m4s"
    assert [s.uri for s in playlist.segments] == ["seg-00001.m4s", "seg-00002.m4s"]
    assert [s.duration for s in playlist.segments] == pytest.approx([2.0, 2.0], abs=0.05)
    assert "PROGRAM-DATE-TIME" not in (local / "media_0.m3u8").read_text()

    mpd = MPEGDASHParser.parse(str(local / "manifest.mpd"))
    rep = mpd.periods[0].adaptation_sets[0].representations[0]
    assert rep.codecs == out["codecs"]
    assert (rep.width, rep.height) == (426, 240)
    template = rep.segment_templates[0]
    assert (template.initialization, template.media) == ("init.m4s", "seg-$Number%05d$.m4s")

    joined = join_segments(local, playlist)
    decoded = ffprobe_json(joined, "-count_frames", "-select_streams", "v:0")
    stream = decoded["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 426, 240)
    assert int(stream["nb_read_frames"]) == 100  # 4 s at 25 fps, nothing lost
    assert len(ffprobe_json(joined)["streams"]) == 1  # video only


@pytest.mark.parametrize(("codec", "source_attr", "codecs"), [
    ("aac", "clip", "mp4a.40.2"),  # the audio rendition of a video asset
    ("opus", "mp3", "opus"),
])
def test_audio_rendition(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path, ffprobe_json:
    FfprobeJson, codec: str, source_attr: str, codecs: str,
) -> None:
    path: Path = getattr(media, source_attr)
    url = source(s3_bucket, path, f"audio-{codec}", "application/octet-stream")
    prefix = f"{ASSET}variants/audio-{codec}/"
    variant = {"name": f"audio-{codec}", "type": "audio", "audio_codec": codec,
               "audio_bitrate_kbps": 96, "segment_seconds": 2}
    run = run_worker(variant_task(s3_bucket, url, variant, prefix), tmp_path / "run")
    assert run.returncode == 0, run.stderr + run.result_text
    out = run.result["output"]
    assert out["codecs"] == codecs
    assert "width" not in out
    local = tmp_path / "fetched"
    types = s3_bucket.fetch_all(prefix, local)
    assert types["init.m4s"] == "audio/mp4"
    playlist = m3u8.load(str(local / out["playlist"]))
    MPEGDASHParser.parse(str(local / out["mpd"]))
    decoded = ffprobe_json(join_segments(local, playlist), "-count_frames")
    (stream,) = decoded["streams"]
    assert stream["codec_name"] == codec
    assert (stream["sample_rate"], stream["channels"]) == ("48000", 2)
    assert int(stream["nb_read_frames"]) > 0
    assert float(decoded["format"]["duration"]) == pytest.approx(
        out["durationSeconds"], abs=0.15)


def test_audio_passthrough_copies_the_sources_aac(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path, ffprobe_json:
    FfprobeJson,
) -> None:
    url = source(s3_bucket, media.clip, "audio-copy", "video/mp4")
    prefix = f"{ASSET}variants/audio/"
    variant = {"name": "audio", "type": "audio", "audio_codec": "aac",
               "audio_bitrate_kbps": 128, "audio_copy": True, "segment_seconds": 2}
    run = run_worker(variant_task(s3_bucket, url, variant, prefix), tmp_path / "run")
    assert run.returncode == 0, run.stderr + run.result_text
    out = run.result["output"]
    assert out["codecs"] == "mp4a.40.2"
    local = tmp_path / "fetched"
    s3_bucket.fetch_all(prefix, local)
    joined = join_segments(local, m3u8.load(str(local / out["playlist"])))

    # Copied, not encoded: the same AAC packets at the same times as in the source.
    assert audio_packets(ffprobe_json, joined) == audio_packets(ffprobe_json, media.clip)
    assert float(ffprobe_json(joined)["format"]["duration"]) == pytest.approx(
        out["durationSeconds"], abs=0.15)


# --- stills ---------------------------------------------------------------------------


def test_image_variant_is_webp_without_exif(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path, ffprobe_json:
    FfprobeJson,
) -> None:
    assert b"SecretCam" in media.jpeg_exif.read_bytes()
    url = source(s3_bucket, media.jpeg_exif, "photo", "image/jpeg")
    prefix = f"{ASSET}variants/w200-webp/"
    variant = {"name": "w200-webp", "type": "image", "width": 200, "image_format": "webp"}
    run = run_worker(variant_task(s3_bucket, url, variant, prefix), tmp_path / "run")
    assert run.returncode == 0, run.stderr + run.result_text
    out = run.result["output"]
    assert out["file"] == "image.webp"
    assert (out["width"], out["height"]) == (200, 267)  # upright: EXIF orientation applied
    types = s3_bucket.fetch_all(prefix, tmp_path / "fetched")
    assert types == {"image.webp": "image/webp"}
    data = (tmp_path / "fetched" / "image.webp").read_bytes()
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WEBP"
    assert b"EXIF" not in data
    assert b"Exif" not in data
    assert b"SecretCam" not in data
    probed = ffprobe_json(tmp_path / "fetched" / "image.webp")
    assert (probed["streams"][0]["width"], probed["streams"][0]["height"]) == (200, 267)


def test_image_is_never_upscaled(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path,
) -> None:
    url = source(s3_bucket, media.jpeg_exif, "photo-big", "image/jpeg")
    prefix = f"{ASSET}variants/w640-jpeg/"
    variant = {"name": "w640-jpeg", "type": "image", "width": 640, "image_format": "jpeg"}
    run = run_worker(variant_task(s3_bucket, url, variant, prefix), tmp_path / "run")
    assert run.returncode == 0, run.stderr + run.result_text
    out = run.result["output"]
    assert (out["file"], out["width"], out["height"]) == ("image.jpg", 240, 320)
    s3_bucket.fetch_all(prefix, tmp_path / "fetched")
    data = (tmp_path / "fetched" / "image.jpg").read_bytes()
    assert data[:2] == b"\xff\xd8"
    assert b"Exif" not in data
    assert b"SecretCam" not in data


@pytest.mark.parametrize("at", [1.0, 30.0])  # 30 s is past the end: the first frame instead
def test_poster(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path, at: float,
) -> None:
    url = source(s3_bucket, media.clip, f"poster-{at:g}", "video/mp4")
    prefix = f"{ASSET}variants/poster-{at:g}/"
    variant = {"name": "poster", "type": "poster", "poster_at_seconds": at,
               "image_format": "jpeg"}
    run = run_worker(variant_task(s3_bucket, url, variant, prefix), tmp_path / "run")
    assert run.returncode == 0, run.stderr + run.result_text
    out = run.result["output"]
    assert (out["file"], out["width"], out["height"]) == ("poster.jpg", 640, 360)
    assert s3_bucket.fetch_all(prefix, tmp_path / "fetched") == {"poster.jpg": "image/jpeg"}


def test_storyboard_sprite_and_webvtt(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path,
) -> None:
    """A 4 s clip, a tile every 1.5 s: three tiles of 120x68 (640x360 scaled, even height)
    in rows of two; each cue names its own region of the sprite, in time order."""
    url = source(s3_bucket, media.clip, "storyboard", "video/mp4")
    prefix = f"{ASSET}variants/storyboard/"
    variant = {"name": "storyboard", "type": "storyboard", "width": 120,
               "image_format": "jpeg", "storyboard_interval_seconds": 1.5,
               "storyboard_columns": 2, "storyboard_tiles": 3}
    run = run_worker(variant_task(s3_bucket, url, variant, prefix), tmp_path / "run")
    assert run.returncode == 0, run.stderr + run.result_text
    out = run.result["output"]
    assert (out["file"], out["width"], out["height"], out["files"]) == (
        "storyboard.vtt", 120, 68, 2)
    fetched = tmp_path / "fetched"
    assert s3_bucket.fetch_all(prefix, fetched) == {"storyboard.jpg": "image/jpeg",
                                                    "storyboard.vtt": "text/vtt"}
    sprite = ffprobe_report(fetched / "storyboard.jpg")["streams"][0]
    assert (sprite["width"], sprite["height"]) == (240, 136), "a 2x2 grid of 120x68 tiles"
    cues = webvtt.from_buffer(io.StringIO((fetched / "storyboard.vtt").read_text()))
    assert [(c.start, c.end, c.text) for c in cues.captions] == [
        ("00:00:00.000", "00:00:01.500", "storyboard.jpg#xywh=0,0,120,68"),
        ("00:00:01.500", "00:00:03.000", "storyboard.jpg#xywh=120,0,120,68"),
        ("00:00:03.000", "00:00:04.500", "storyboard.jpg#xywh=0,68,120,68")]


SHARED_OUTPUTS: list[dict[str, Any]] = [
    {"name": "240p", "type": "video", "height": 240, "video_bitrate_kbps": 400},
    {"name": "360p", "type": "video", "height": 360, "video_bitrate_kbps": 700},
    {"name": "storyboard", "type": "storyboard", "width": 120, "image_format": "jpeg",
     "storyboard_interval_seconds": 1.5, "storyboard_columns": 2, "storyboard_tiles": 3}]


@pytest.mark.parametrize("broken", [None, "360p"])
def test_a_shared_encodes_outputs_are_published_at_once_and_manifests_only_once_all_are_proven(
    s3_bucket: S3Bucket, media: Media, tmp_path: Path, broken: str | None,
) -> None:
    """The real shared ffmpeg writes two rungs and a storyboard; `publish_shared` stores
    them in parallel, each under its own policy. With one rung's segment gone before the
    proofs (`broken`), it fails with that rung's cause, and no output has a manifest in
    the bucket: no reader can see any of them, although other outputs' media may be
    stored (as streamed segments are)."""
    from mediaplane.worker import process, transcode
    from mediaplane.worker.errors import InfraError

    name = f"shared-{broken or 'whole'}"
    url = source(s3_bucket, media.clip, name, "video/mp4")
    specs = [VariantSpec.model_validate(v) for v in SHARED_OUTPUTS]
    prefixes = [f"{ASSET}variants/{name}-{spec.name}/" for spec in specs]
    rungs = [(spec, s3_bucket.presign_output(prefix)) for spec, prefix in zip(
        specs, prefixes, strict=True)]
    dirs = [tmp_path / commands.shared_out_dir(index) for index in range(len(specs))]
    for out_dir in dirs:
        out_dir.mkdir()
    done = process.run(commands.shared_video_command(url, list(zip(specs, dirs, strict=True))),
                       timeout=120, workdir=str(tmp_path))
    assert done.ok, done.stderr_tail
    if broken is not None:
        out_dir = dirs[[spec.name for spec in specs].index(broken)]
        segment = sorted(p for p in out_dir.iterdir() if commands.is_media_segment(p.name))[-1]
        segment.unlink()
        with pytest.raises(InfraError, match="incomplete rendition"):
            transcode.publish_shared(rungs, dirs, done, {})
        stored = [key for prefix in prefixes for key in s3_bucket.list_keys(prefix)]
        assert not [key for key in stored if key.endswith((".m3u8", ".mpd", ".vtt"))], stored
        return
    outputs = transcode.publish_shared(rungs, dirs, done, {})
    assert [o.name for o in outputs] == ["240p", "360p", "storyboard"]
    for output, prefix in zip(outputs, prefixes, strict=True):
        keys = s3_bucket.list_keys(prefix)
        assert (len(keys), sum(keys.values())) == (output.files, output.bytes), output.name
        if output.playlist is None:
            assert set(keys) == {f"{prefix}storyboard.jpg", f"{prefix}storyboard.vtt"}
            continue
        local = tmp_path / "fetched" / output.name
        s3_bucket.fetch_all(prefix, local)
        playlist = m3u8.load(str(local / output.playlist))
        assert {f"{prefix}{s.uri}" for s in playlist.segments} | {
            f"{prefix}init.m4s", f"{prefix}media_0.m3u8", f"{prefix}manifest.mpd"} == set(keys)


def test_refused_upload_is_an_infrastructure_failure(
    s3_bucket: S3Bucket, media: Media, run_worker: RunWorker, tmp_path: Path,
) -> None:
    url = source(s3_bucket, media.png, "refused", "image/png")
    prefix = f"{ASSET}variants/refused/"
    task = variant_task(s3_bucket, url, {"name": "refused", "type": "image", "width": 64,
                                  "image_format": "webp"}, prefix)
    assert task.output is not None
    outside = task.output.model_copy(update={"key_prefix": f"{ASSET}variants/elsewhere/"})
    task = task.model_copy(update={"output": outside})  # a prefix the policy does not sign
    run = run_worker(task, tmp_path / "run")
    assert run.returncode != 0
    assert run.result_text.startswith("UploadFailed:")
    assert not s3_bucket.list_keys(f"{ASSET}variants/elsewhere/")


def test_invalid_task_fails_with_a_readable_message(run_worker: RunWorker, tmp_path: Path) -> None:
    run = run_worker({"type": "video"}, tmp_path)
    assert run.returncode == 2
    assert run.result_text.startswith("InvalidTask:")


# --- segments stored during the encode -------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "after-the-encode"])
def test_segments_stored_during_the_encode_make_the_same_rendition(
    s3_bucket: S3Bucket, tmp_path: Path, ffprobe_json: FfprobeJson, stream: bool,
) -> None:
    """Segments uploaded while ffmpeg writes the rendition (`stream_segments`) leave the
    same objects as an upload after the encode: every file the manifests name, once."""
    clip = video_clip(tmp_path, seconds=20)
    url = source(s3_bucket, clip.path, f"streamed-{stream}", "video/mp4")
    prefix = f"{ASSET}variants/streamed-{stream}-240p/"
    variant = {"name": "240p", "type": "video", "height": 240, "video_bitrate_kbps": 400,
               "segment_seconds": 1}
    task = variant_task(s3_bucket, url, variant, prefix).model_copy(
        update={"stream_segments": stream})
    run = run_worker_process(task, tmp_path / "run")
    assert run.returncode == 0, run.stderr + run.result_text
    assert ("segments during the encode" in run.stderr) is stream, run.stderr
    out = run.result["output"]
    keys = s3_bucket.list_keys(prefix)
    assert (len(keys), sum(keys.values())) == (out["files"], out["bytes"])
    local = tmp_path / "fetched"
    s3_bucket.fetch_all(prefix, local)
    playlist = m3u8.load(str(local / "media_0.m3u8"))
    assert {f"{prefix}{n}" for n in [s.uri for s in playlist.segments]} | {
        f"{prefix}init.m4s", f"{prefix}media_0.m3u8", f"{prefix}manifest.mpd"} == set(keys)
    decoded = ffprobe_json(join_segments(local, playlist), "-count_frames")
    assert int(decoded["streams"][0]["nb_read_frames"]) == 500  # 20 s at 25 fps


def test_a_pod_stopped_mid_encode_stores_no_manifest_beside_its_streamed_segments(
    s3_bucket: S3Bucket, tmp_path: Path,
) -> None:
    """A pod stopped during its encode (SIGTERM: a node drained, the asset deleted) after
    some segments were stored leaves no playlist or MPD naming them: no reader sees a
    rendition, and its retry writes the same names."""
    clip = video_clip(tmp_path, seconds=30, width=1280, height=720)
    url = source(s3_bucket, clip.path, "streamed-stopped", "video/mp4")
    prefix = f"{ASSET}variants/streamed-stopped-240p/"
    variant = {"name": "240p", "type": "video", "height": 240, "video_bitrate_kbps": 400,
               "segment_seconds": 1}
    task = variant_task(s3_bucket, url, variant, prefix).model_copy(
        update={"stream_segments": True})
    argv, env = worker_command(task, tmp_path / "run")
    worker = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not s3_bucket.list_keys(prefix) and worker.poll() is None:
            assert time.monotonic() < deadline, "no segment stored during the encode"
            time.sleep(0.02)
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert worker.returncode == 128 + signal.SIGTERM, stderr
    keys = s3_bucket.list_keys(prefix)
    assert keys, stderr
    assert all(commands.is_media_segment(k.removeprefix(prefix)) for k in keys), keys
