"""A long video's rung encoded as parallel chunks plays as one rendition, for real.

The source is five minutes long (small pictures, so the test stays quick), which is the
ladder's default threshold for segment-parallel encoding: its rung runs as an Indexed Job
of five chunk pods and the operator joins them. The joined rendition is compared packet by
packet with the same rung encoded in one piece by the same ffmpeg command, then decoded
through the HLS master and the DASH MPD. Its sound is stereo AAC, which the ladder copies
into the audio rendition instead of encoding it: the same AAC packets come out.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import m3u8
from kubernetes import client as k8s
from mpegdash.parser import MPEGDASHParser

from mediaplane.core import commands, keys, names
from mediaplane.core.tasks import VariantSpec
from tests.e2e.test_pipeline import download_prefix, variants_by_name
from tests.support.assets import Assets
from tests.support.media import decode_all, ffprobe, video_clip

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SECONDS = 304  # 76 segments of 4 s; 5 chunks of 60 s, the last one 64 s
FRAMES = SECONDS * 25


def packets(path: Path) -> list[tuple[str, str, str, bool]]:
    """(pts, dts, duration, keyframe) of every video packet of a fragmented MP4."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "packet=pts,dts,duration,flags", "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True, timeout=120).stdout
    rows = [line.split(",") for line in out.splitlines() if line]
    return [(pts, dts, duration, "K" in flags) for pts, dts, duration, flags in rows]


def audio_packets(path: Path) -> list[tuple[str, str]]:
    """(pts, size) of every audio packet: equal sizes at equal times mean the same bytes
    (an encoder would not reproduce them)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "packet=pts,size",
         "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True,
        timeout=120).stdout
    return [(pts, size) for pts, size, *_ in (line.split(",") for line in out.splitlines()
                                               if line)]


def concatenated(folder: Path, playlist: str, target: Path) -> Path:
    """The rendition as one file: its init segment, then its segments in playlist order."""
    parsed = m3u8.load(str(folder / playlist))
    with target.open("wb") as out:
        out.write((folder / parsed.segment_map[0].uri).read_bytes())
        for segment in parsed.segments:
            out.write((folder / segment.uri).read_bytes())
    return target


def test_a_long_video_is_encoded_in_parallel_chunks_and_plays_as_one(
        tenant: str, assets: Assets, media_dir: Path, s3: S3Client, bucket: str,
        kube_api: k8s.ApiClient, tmp_path: Path) -> None:
    source = video_clip(media_dir, seconds=SECONDS, width=320, height=240, channels=2)
    name = assets.upload(tenant, source)["metadata"]["name"]
    body = assets.wait_phase(tenant, name, "ready", timeout=420, complete=True)
    variants = variants_by_name(body)
    assert variants["240p"]["state"] == "succeeded"

    tj = next(t for t in assets.transcode_jobs(tenant, name)
              if t["metadata"]["name"] == names.child_name(name, "240p"))
    rung = VariantSpec.model_validate(tj["spec"]["variant"])
    assert (rung.chunks, rung.chunk_seconds) == (5, 60)
    job = k8s.BatchV1Api(kube_api).read_namespaced_job(tj["metadata"]["name"], tenant)
    assert (job.spec.completion_mode, job.spec.completions) == ("Indexed", 5)
    assert job.status.succeeded == 5

    prefix = keys.asset_prefix(tenant, names.asset_id_from_name(name))
    download_prefix(s3, bucket, prefix, tmp_path)
    rendition = tmp_path / "variants" / "240p"
    playlist = m3u8.load(str(rendition / "media_0.m3u8"))
    assert [s.uri for s in playlist.segments] == [f"seg-{n:05d}.m4s" for n in range(1, 77)]
    assert playlist.is_endlist
    assert abs(sum(s.duration for s in playlist.segments) - SECONDS) < 0.04

    # The DASH timeline is one contiguous run from 0 over the same 76 segments.
    mpd = MPEGDASHParser.parse((rendition / "manifest.mpd").read_text())
    representation = mpd.periods[0].adaptation_sets[0].representations[0]
    timeline = representation.segment_templates[0].segment_timelines[0].Ss
    entries: list[tuple[int, int]] = []
    for s in timeline:
        start = s.t if s.t is not None else sum(entries[-1])
        entries += [(start + i * s.d, s.d) for i in range((s.r or 0) + 1)]
    assert len(entries) == 76
    assert entries[0][0] == 0
    assert all(a + d == b for (a, d), (b, _) in itertools.pairwise(entries))

    # Packet for packet, the timestamps are those of the same rung encoded in one piece.
    whole_dir = tmp_path / "whole"
    whole_dir.mkdir()
    url = s3.generate_presigned_url("get_object", Params={
        "Bucket": bucket, "Key": keys.source_key(tenant, names.asset_id_from_name(name))},
        ExpiresIn=600)
    whole = rung.model_copy(update={"chunks": None, "chunk_seconds": None,
                                    "chunk_parallelism": None})
    subprocess.run(commands.video_command(url, whole, whole_dir), check=True, timeout=300,
                   cwd=whole_dir)
    joined = packets(concatenated(rendition, "media_0.m3u8", tmp_path / "joined.mp4"))
    reference = packets(concatenated(whole_dir, commands.HLS_MEDIA_NAME, tmp_path / "one.mp4"))
    assert len(joined) == FRAMES
    assert joined == reference
    dts = [int(p[1]) for p in joined]
    assert all(b > a for a, b in itertools.pairwise(dts)), "decode times only go up"
    assert sum(p[3] for p in joined) == 76, "one keyframe at the start of every segment"
    assert (rendition / "init.m4s").read_bytes() == (whole_dir / "init.m4s").read_bytes()

    # Both manifests play from start to end (every frame decodes, audio too).
    decode_all(str(tmp_path / "master.m3u8"))
    mpd_url = (tmp_path / "manifest.mpd").as_uri()
    decode_all(mpd_url)
    probed = ffprobe(str(rendition / "media_0.m3u8"), "-count_packets")
    video = probed["streams"][0]
    assert int(video["nb_read_packets"]) == FRAMES
    assert abs(float(probed["format"]["duration"]) - SECONDS) <= 1 / 25

    # The audio rendition is the source's AAC, copied: same packets, same times.
    audio_tj = next(t for t in assets.transcode_jobs(tenant, name)
                    if t["metadata"]["name"] == names.child_name(name, "audio"))
    assert audio_tj["spec"]["variant"]["audioCopy"] is True
    audio = concatenated(tmp_path / "variants" / "audio", "media_0.m3u8", tmp_path / "a.mp4")
    assert audio_packets(audio) == audio_packets(source.path)


def test_a_long_videos_encoded_audio_is_chunked_too_and_plays_without_a_gap(
        tenant: str, assets: Assets, media_dir: Path, s3: S3Client, bucket: str,
        kube_api: k8s.ApiClient, tmp_path: Path) -> None:
    """Mono sound is encoded (stereo 48 kHz AAC is what the ladder makes): its rendition is
    an Indexed Job of its own, joined by the operator like the rung's."""
    source = video_clip(media_dir, seconds=SECONDS, width=320, height=240, channels=1)
    name = assets.upload(tenant, source)["metadata"]["name"]
    assets.wait_phase(tenant, name, "ready", timeout=420, complete=True)
    audio_tj = next(t for t in assets.transcode_jobs(tenant, name)
                    if t["metadata"]["name"] == names.child_name(name, "audio"))
    spec = VariantSpec.model_validate(audio_tj["spec"]["variant"])
    assert (spec.audio_copy, spec.chunks, spec.chunk_seconds) == (False, 5, 60)
    job = k8s.BatchV1Api(kube_api).read_namespaced_job(audio_tj["metadata"]["name"], tenant)
    assert (job.spec.completion_mode, job.spec.completions) == ("Indexed", 5)

    prefix = keys.asset_prefix(tenant, names.asset_id_from_name(name))
    download_prefix(s3, bucket, prefix, tmp_path)
    audio = concatenated(tmp_path / "variants" / "audio", "media_0.m3u8", tmp_path / "a.mp4")
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
         "packet=pts,duration", "-of", "csv=p=0", str(audio)],
        check=True, capture_output=True, text=True, timeout=120).stdout
    timed = [(int(pts), int(duration) if duration.isdigit() else 1024)
             for pts, duration, *_ in (line.split(",") for line in out.splitlines() if line)]
    assert all(a + d == b for (a, d), (b, _) in itertools.pairwise(timed)), \
        "every AAC frame once: no gap, no overlap where the chunks meet"
    # The source's sound is 304 s (plus its own encoder's padding); ours within a frame.
    assert abs(sum(d for _, d in timed[1:]) / 48000 - SECONDS) <= 2 * 1024 / 48000
    mpd = MPEGDASHParser.parse((tmp_path / "variants" / "audio" / "manifest.mpd").read_text())
    assert mpd.periods[0].adaptation_sets[0].representations[0].codecs == "mp4a.40.2"
    decode_all(str(tmp_path / "master.m3u8"))
    decode_all((tmp_path / "manifest.mpd").as_uri())
