"""A MediaAsset applied like `kubectl apply` becomes HLS and DASH renditions, for real.

Every assertion reads real outputs: the manifests are parsed, and ffmpeg decodes what the
workers wrote to the S3 server.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import m3u8
from mpegdash.parser import MPEGDASHParser

from mediaplane.core import keys, names
from tests.support.assets import Assets, condition, manifest, reason
from tests.support.media import Media, decode_all, ffprobe

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def download_prefix(s3: S3Client, bucket: str, prefix: str, target: Path) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    relative = []
    for obj in listing.get("Contents", []):
        rel = obj["Key"][len(prefix):]
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, obj["Key"], str(path))
        relative.append(rel)
    return sorted(relative)


def variants_by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in body["status"]["variants"]}


def test_video_clip_becomes_playable_hls_and_dash(tenant: str, assets: Assets, clip: Media,
                                                 s3: S3Client, bucket: str,
                                                 tmp_path: Path) -> None:
    name = assets.upload(tenant, clip)["metadata"]["name"]
    body = assets.wait_phase(tenant, name, "ready", complete=True)
    status = body["status"]

    assert condition(body, "Ready") == "True"
    assert reason(body, "Complete") == "AllVariantsSucceeded"
    assert status["observedGeneration"] == body["metadata"]["generation"]
    assert status["variantSummary"] == "5/5"
    assert status["probe"]["width"] == 640
    assert status["probe"]["height"] == 360
    assert status["probe"]["hasAudio"] is True
    variants = variants_by_name(body)
    assert set(variants) == {"240p", "360p", "audio", "poster", "storyboard"}
    assert {v["state"] for v in variants.values()} == {"succeeded"}

    prefix = keys.asset_prefix(tenant, names.asset_id_from_name(name))
    files = download_prefix(s3, bucket, prefix, tmp_path)
    assert "master.m3u8" in files
    assert "manifest.mpd" in files
    assert "source" in files

    master = m3u8.load(str(tmp_path / "master.m3u8"))
    assert [p.stream_info.resolution for p in master.playlists] == [(426, 240), (640, 360)]
    assert len(master.media) == 1
    assert master.media[0].type == "AUDIO"

    mpd = MPEGDASHParser.parse(str(tmp_path / "manifest.mpd"))
    sets = mpd.periods[0].adaptation_sets
    assert sorted(r.id for s in sets for r in s.representations) == ["240p", "360p", "audio"]

    # ffmpeg decodes the whole presentation through both manifests, every stream.
    decode_all(str(tmp_path / "master.m3u8"))
    # ffmpeg 5.1's dash demuxer resolves BaseURLs of a plain local path against the working
    # directory; as a file:// URL they resolve against the MPD, as over HTTP.
    mpd_url = (tmp_path / "manifest.mpd").as_uri()
    decode_all(mpd_url)
    dash = ffprobe(mpd_url)
    heights = sorted(s["height"] for s in dash["streams"] if s["codec_type"] == "video")
    assert heights == [240, 360]
    assert [s["codec_name"] for s in dash["streams"] if s["codec_type"] == "audio"] == ["aac"]
    for rung, height in (("240p", 240), ("360p", 360)):
        playlist = tmp_path / "variants" / rung / Path(variants[rung]["playlist"]).name
        probed = ffprobe(str(playlist))
        assert probed["streams"][0]["height"] == height
        assert abs(float(probed["format"]["duration"]) - 4.0) < 0.5
    poster = ffprobe(str(tmp_path / "variants/poster" / Path(variants["poster"]["file"]).name))
    assert poster["streams"][0]["codec_name"] == "mjpeg"
    # Seek previews: a 4 s clip, a tile every 2 s, 160 px wide (640x360 scaled: 90 high).
    assert (variants["storyboard"]["width"], variants["storyboard"]["height"]) == (160, 90)
    sprite = ffprobe(str(tmp_path / "variants/storyboard/storyboard.jpg"))["streams"][0]
    assert (sprite["width"], sprite["height"]) == (320, 90)
    storyboard = (tmp_path / "variants/storyboard/storyboard.vtt").read_text()
    assert storyboard.count("storyboard.jpg#xywh=") == 2

    reasons = {r for r, _ in assets.events(tenant, name)}
    assert {"Probing", "Transcoding", "Complete"} <= reasons
    assert reasons & {"Playable", "PlayableEarly"}


def test_image_gets_resized_variants_without_metadata(tenant: str, assets: Assets, image: Media,
                                                      s3: S3Client, bucket: str,
                                                      tmp_path: Path) -> None:
    name = assets.upload(tenant, image)["metadata"]["name"]
    body = assets.wait_phase(tenant, name, "ready", complete=True)
    variants = variants_by_name(body)
    assert set(variants) == {"w640-webp", "w320-webp", "w640-jpeg"}, "800 px wide: no 1280"
    expected = {"w640-webp": (640, "webp"), "w320-webp": (320, "webp"),
                "w640-jpeg": (640, "mjpeg")}
    for variant, (width, codec) in expected.items():
        local = tmp_path / variant
        s3.download_file(bucket, variants[variant]["file"], str(local))
        probed = ffprobe(str(local))
        assert (probed["streams"][0]["width"], probed["streams"][0]["codec_name"]) == (width,
                                                                                     codec)
        assert not probed["format"].get("tags"), "metadata must be stripped"


def test_audio_gets_aac_and_opus_renditions(tenant: str, assets: Assets, audio: Media,
                                            s3: S3Client, bucket: str, tmp_path: Path) -> None:
    name = assets.upload(tenant, audio)["metadata"]["name"]
    body = assets.wait_phase(tenant, name, "ready", complete=True)
    assert set(variants_by_name(body)) == {"aac-128k", "opus-96k"}
    prefix = keys.asset_prefix(tenant, names.asset_id_from_name(name))
    download_prefix(s3, bucket, prefix, tmp_path)
    master = m3u8.load(str(tmp_path / "master.m3u8"))
    assert len(master.playlists) == 2
    codecs = set()
    for playlist in master.playlists:
        decode_all(str(tmp_path / playlist.uri))
        codecs |= {s["codec_name"] for s in ffprobe(str(tmp_path / playlist.uri))["streams"]}
    assert codecs == {"aac", "opus"}


def test_bytes_that_are_not_the_declared_type_are_quarantined(tenant: str, assets: Assets,
                                                              image: Media) -> None:
    name = assets.upload(tenant, image, kind="video", mime="video/mp4")["metadata"]["name"]
    body = assets.wait_phase(tenant, name, "quarantined", timeout=90)
    assert condition(body, "Quarantined") == "True"
    assert reason(body, "Quarantined") == "TypeMismatch"
    assert condition(body, "Ready") == "False"
    message = body["status"]["quarantine"]["message"]
    assert "video/mp4" in message
    assert "png" in message
    assert [tj["spec"]["task"] for tj in assets.transcode_jobs(tenant, name)] == ["probe"]
    assert "Quarantined" in {r for r, _ in assets.events(tenant, name)}


def test_checksum_mismatch_is_quarantined(tenant: str, assets: Assets, clip: Media) -> None:
    name = assets.upload(tenant, clip, sha256="0" * 64)["metadata"]["name"]
    body = assets.wait_phase(tenant, name, "quarantined", timeout=90)
    assert reason(body, "Quarantined") == "ChecksumMismatch"
    assert clip.sha256 in body["status"]["quarantine"]["message"]
    assert body["status"].get("variants") is None


def test_asset_applied_before_its_upload_waits_then_proceeds(tenant: str, assets: Assets,
                                                             image: Media) -> None:
    asset_id = names.new_asset_id()
    name = assets.create(manifest(tenant, asset_id, image))["metadata"]["name"]
    waiting = assets.wait(tenant, name, lambda b: reason(b, "Uploaded") == "AwaitingUpload",
                          30, "AwaitingUpload")
    assert waiting["status"]["phase"] == "pending"
    assert condition(waiting, "Ready") == "False"
    assert assets.transcode_jobs(tenant, name) == [], "nothing runs before the bytes exist"

    assets.s3.put_object(Bucket=assets.bucket, Key=keys.source_key(tenant, asset_id),
                         Body=image.data, ContentType=image.mime)
    body = assets.wait_phase(tenant, name, "ready", complete=True, timeout=120)
    assert condition(body, "Uploaded") == "True"
