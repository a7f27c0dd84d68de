"""Worker pieces on real files: sniffing, ffprobe judgement, upload forms, results."""

from __future__ import annotations

import json
import ssl
import struct
import subprocess
import zlib
from typing import TYPE_CHECKING

import pytest

from mediaplane.core import commands
from mediaplane.core.tasks import (
    MAX_RESULT_BYTES,
    Expected,
    MediaKind,
    PresignedPost,
    ProbeOutcome,
    Verdict,
)
from mediaplane.worker import process, upload
from mediaplane.worker.main import render
from mediaplane.worker.probe import check_declared, inspect
from mediaplane.worker.sniff import Family, accepted_families, id3_length, sniff_file

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Media


def expected(path: Path, mime: str, kind: MediaKind) -> Expected:
    return Expected(sha256="0" * 64, size_bytes=path.stat().st_size, mime=mime, kind=kind)


def copy_as_source(path: Path, tmp_path: Path) -> Path:
    """The worker stores its download as `source`, without extension; so do the tests."""
    dest = tmp_path / "source"
    dest.write_bytes(path.read_bytes())
    return dest


# --- sniffing -------------------------------------------------------------------------


def test_sniff_families(media: Media) -> None:
    assert sniff_file(media.clip) is Family.ISOBMFF
    assert sniff_file(media.m4a) is Family.ISOBMFF
    assert sniff_file(media.png) is Family.PNG
    assert sniff_file(media.apng) is Family.PNG
    assert sniff_file(media.jpeg_exif) is Family.JPEG
    assert sniff_file(media.wav) is Family.WAV
    assert sniff_file(media.mp3) is Family.MP3
    assert id3_length(media.mp3.read_bytes()[:10]) > 10


def test_sniff_more_containers(media: Media, tmp_path: Path) -> None:
    cases = {"clip.mkv": Family.MATROSKA, "clip.ts": Family.MPEGTS, "clip.mov": Family.ISOBMFF,
             "clip.webp": Family.WEBP, "clip.gif": Family.GIF, "tone.flac": Family.FLAC,
             "tone.ogg": Family.OGG, "tone.aac": Family.AAC}
    for name, family in cases.items():
        out = tmp_path / name
        args = ["-t", "1", "-c", "copy"] if name.startswith("clip.m") or name == "clip.ts" else []
        if name in ("clip.webp", "clip.gif"):
            args = ["-frames:v", "1"]
        src = media.clip if name.startswith("clip") else media.wav
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *args, str(out)],
                       check=True, timeout=60)
        assert sniff_file(out) is family, name


def test_declared_types_compare_as_families() -> None:
    assert Family.ISOBMFF in accepted_families(MediaKind.VIDEO, "video/quicktime")
    assert Family.ISOBMFF in accepted_families(MediaKind.AUDIO, "audio/x-m4a")
    assert Family.MATROSKA in accepted_families(MediaKind.VIDEO, "video/webm; codecs=vp9")
    assert accepted_families(MediaKind.VIDEO, "image/png") == frozenset()
    assert accepted_families(MediaKind.IMAGE, "image/svg+xml") == frozenset()
    png_as_video = Expected(sha256="", size_bytes=1, mime="video/mp4", kind=MediaKind.VIDEO)
    outcome = check_declared(png_as_video, Family.PNG)
    assert outcome is not None
    assert outcome.reason == "TypeMismatch"


# --- ffprobe judgement ----------------------------------------------------------------


def test_inspect_accepts_the_clip(media: Media, tmp_path: Path) -> None:
    source = copy_as_source(media.clip, tmp_path)
    outcome = inspect(source, expected(source, "video/mp4", MediaKind.VIDEO), Family.ISOBMFF,
                      tmp_path)
    assert outcome.verdict is Verdict.ACCEPTED, outcome
    probe = outcome.probe
    assert probe is not None
    assert (probe.width, probe.height) == (640, 360)
    assert probe.video_codec == "h264"
    assert probe.audio_codec == "aac"
    assert probe.has_video
    assert probe.has_audio
    assert probe.detected_mime == "video/mp4"
    assert probe.duration_seconds == pytest.approx(4.0, abs=0.1)


def test_inspect_reports_the_displayed_size_of_a_rotated_photo(media: Media,
                                                               tmp_path: Path) -> None:
    source = copy_as_source(media.jpeg_exif, tmp_path)
    outcome = inspect(source, expected(source, "image/jpeg", MediaKind.IMAGE), Family.JPEG,
                      tmp_path)
    assert outcome.probe is not None
    assert (outcome.probe.width, outcome.probe.height) == (240, 320)  # EXIF orientation 6
    assert outcome.probe.duration_seconds is None


def test_inspect_refuses_demuxers_outside_the_allow_list(media: Media, tmp_path: Path) -> None:
    source = copy_as_source(media.apng, tmp_path)  # PNG magic, but ffprobe picks `apng`
    outcome = inspect(source, expected(source, "image/png", MediaKind.IMAGE), Family.PNG,
                      tmp_path)
    assert outcome.verdict is Verdict.QUARANTINED
    assert outcome.reason == "DemuxerNotAllowed"


def test_inspect_video_without_video_is_a_kind_mismatch(media: Media, tmp_path: Path) -> None:
    source = copy_as_source(media.m4a, tmp_path)
    outcome = inspect(source, expected(source, "video/mp4", MediaKind.VIDEO), Family.ISOBMFF,
                      tmp_path)
    assert outcome.reason == "KindMismatch"


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`x`height`; its pixel data is a few bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [12_000, 30_000])  # over our limit; over ffmpeg's own
def test_inspect_refuses_a_decompression_bomb_before_decoding(tmp_path: Path,
                                                              side: int) -> None:
    source = tmp_path / "source"
    source.write_bytes(png_claiming(side, side))  # a few hundred bytes claiming 144+ Mpx
    outcome = inspect(source, expected(source, "image/png", MediaKind.IMAGE), Family.PNG,
                      tmp_path)
    assert outcome.reason == "DimensionsTooLarge", outcome


def test_inspect_garbage_is_unreadable(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 2000)
    outcome = inspect(source, expected(source, "video/mp4", MediaKind.VIDEO), Family.ISOBMFF,
                      tmp_path)
    assert outcome.verdict is Verdict.QUARANTINED
    assert outcome.reason == "Unreadable"


# --- upload forms ---------------------------------------------------------------------


def test_content_types() -> None:
    assert upload.content_type("media_0.m3u8") == "application/vnd.apple.mpegurl"
    assert upload.content_type("manifest.mpd") == "application/dash+xml"
    assert upload.content_type("seg-00001.m4s") == "video/mp4"
    assert upload.content_type("init.m4s", audio_only=True) == "audio/mp4"
    assert upload.content_type("image.webp") == "image/webp"
    assert upload.content_type("poster.jpg") == "image/jpeg"


def test_manifests_are_uploaded_last() -> None:
    media, last = upload.upload_order(["manifest.mpd", "seg-00002.m4s", "media_0.m3u8",
                                       "init.m4s", "seg-00001.m4s"])
    assert media == ["init.m4s", "seg-00001.m4s", "seg-00002.m4s"]
    assert last == ["manifest.mpd", "media_0.m3u8"]


def test_form_fields_name_the_key_under_the_prefix() -> None:
    post = PresignedPost(url="http://s3/b", key_prefix="tenants/t/assets/a/variants/360p/",
                         fields={"key": "tenants/t/assets/a/variants/360p/${filename}",
                                 "policy": "p", "x-amz-signature": "s"})
    fields = upload.form_fields(post, "seg-00001.m4s", "video/mp4")
    assert fields["key"] == "tenants/t/assets/a/variants/360p/seg-00001.m4s"
    assert fields["Content-Type"] == "video/mp4"
    assert fields["policy"] == "p"
    for bad in ("../x", "/abs", "a//b", ""):
        with pytest.raises(ValueError, match="plain relative"):
            upload.form_fields(post, bad, "video/mp4")


# --- results --------------------------------------------------------------------------


def test_render_keeps_results_under_the_termination_message_cap() -> None:
    long = ProbeOutcome(verdict=Verdict.QUARANTINED, reason="Unreadable", message="x" * 10_000)
    text = render(long)
    assert len(text.encode()) <= MAX_RESULT_BYTES
    data = json.loads(text)
    assert data["reason"] == "Unreadable"
    assert data["kind"] == "probe"


def test_demuxer_allowlists_name_real_demuxers() -> None:
    """Every allow-listed name must be a demuxer (or alias) this ffprobe knows."""
    listing = subprocess.run(["ffprobe", "-hide_banner", "-demuxers"], capture_output=True,
                             text=True, check=True, timeout=30).stdout
    known: set[str] = set()
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("D"):
            known.update(parts[1].split(","))
    for names in commands.DEMUXERS.values():
        assert set(names) <= known


# --- subprocesses ---------------------------------------------------------------------


def test_run_kills_at_the_timeout(tmp_path: Path) -> None:
    done = process.run(["sleep", "30"], timeout=0.5, workdir=str(tmp_path))
    assert done.timed_out
    assert not done.ok


def test_run_flags_watched_phrases_despite_exit_zero(tmp_path: Path) -> None:
    done = process.run(["sh", "-c", "echo 'Stream ends prematurely at 48' >&2; echo out"],
                       timeout=10, workdir=str(tmp_path), watch=("Stream ends prematurely",))
    assert done.returncode == 0
    assert done.flagged == "Stream ends prematurely"
    assert not done.ok
    assert done.stdout == b"out\n"
    assert "prematurely" in done.stderr_tail


def test_run_hides_the_task_from_children(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAPLANE_TASK", "{secret}")
    done = process.run(["sh", "-c", "echo ${MEDIAPLANE_TASK:-none}"], timeout=10,
                       workdir=str(tmp_path))
    assert done.stdout == b"none\n"


# --- TLS contexts -------------------------------------------------------------------------


def test_a_plain_http_endpoint_loads_no_cas_and_its_context_trusts_nothing() -> None:
    """The dev cluster's S3 speaks plain HTTP: its clients skip the 20 ms of loading the CAs.
    Their context still verifies, against no CA at all, so it could not accept a peer."""
    plain = upload.tls_context("http://127.0.0.1:9000/bucket/key?X-Amz-Signature=s")
    assert plain.verify_mode is ssl.CERT_REQUIRED
    assert plain.check_hostname
    assert plain.cert_store_stats()["x509_ca"] == 0
    trusted = upload.tls_context("HTTPS://s3.example/bucket/key")
    assert trusted.verify_mode is ssl.CERT_REQUIRED
    assert trusted.cert_store_stats()["x509_ca"] > 0
    assert upload.tls_context("https://other.example/") is trusted, "loaded once per pod"
