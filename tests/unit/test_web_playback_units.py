"""Pure pieces of web playback: the storyboard's WebVTT (written by the worker, rewritten
by the API), the bucket's CORS rules, the player page's config."""

from __future__ import annotations

import io

import pytest
import webvtt

from mediaplane.api import player, streaming
from mediaplane.core import bucketcors
from mediaplane.core.resources import MediaAsset, MediaAssetStatus
from mediaplane.core.tasks import MediaKind
from mediaplane.worker.storyboard import storyboard_vtt, timestamp
from tests.support.resources import playable_status

ASSET_ID = "mda_0123456789abcdefghjkmnpqrs"


def test_worker_storyboard_cues_walk_the_grid_row_by_row() -> None:
    text = storyboard_vtt("storyboard.jpg", tiles=5, columns=2, interval=2.5, tile_width=160,
                          tile_height=90)
    cues = webvtt.from_buffer(io.StringIO(text)).captions
    assert [c.text for c in cues] == [
        "storyboard.jpg#xywh=0,0,160,90", "storyboard.jpg#xywh=160,0,160,90",
        "storyboard.jpg#xywh=0,90,160,90", "storyboard.jpg#xywh=160,90,160,90",
        "storyboard.jpg#xywh=0,180,160,90"]
    assert [(c.start, c.end) for c in cues][-1] == ("00:00:10.000", "00:00:12.500")
    assert timestamp(3723.5) == "01:02:03.500"


def test_api_storyboard_presigns_the_sprite_beside_the_webvtt_only() -> None:
    folder = "tenants/a/assets/x/variants/storyboard/"
    text = storyboard_vtt("storyboard.jpg", tiles=2, columns=2, interval=2, tile_width=100,
                          tile_height=50)
    signed = streaming.storyboard_vtt(text, folder, lambda key: f"https://s3/{key}?sig=1")
    cues = webvtt.from_buffer(io.StringIO(signed)).captions
    assert cues[1].text == f"https://s3/{folder}storyboard.jpg?sig=1#xywh=100,0,100,50"
    for target in ("../other/x.jpg", "a/b.jpg", ".hidden.jpg"):
        hostile = text.replace("storyboard.jpg", target)
        with pytest.raises(ValueError, match="not a sprite beside it"):
            streaming.storyboard_vtt(hostile, folder, lambda key: key)


def test_bucket_rules_playback_and_upload() -> None:
    assert bucketcors.rules([]) == []
    playback, upload = bucketcors.rules(["*"], ["https://app.test"])
    assert (playback["AllowedMethods"], playback["AllowedHeaders"]) == (["GET", "HEAD"],
                                                                        ["Range"])
    assert playback["ExposeHeaders"] == ["Content-Length", "Content-Range", "ETag"]
    assert (upload["AllowedMethods"], upload["AllowedOrigins"], upload["ExposeHeaders"]) == (
        ["POST"], ["https://app.test"], ["ETag"])
    assert bucketcors.origins(" https://a.test/, ,https://b.test") == ["https://a.test",
                                                                       "https://b.test"]


def test_player_config_of_a_video_and_an_image() -> None:
    links = streaming.Links("https://media.test", ASSET_ID)
    video = MediaAsset.new("acme", ASSET_ID, kind=MediaKind.VIDEO, mime="video/mp4",
                           sha256="a" * 64, size_bytes=10)
    video.status = playable_status("acme", ASSET_ID)
    config = player.config_for(video, links, "TOKEN", player.Engine.DASH, lambda k: k)
    assert config.hls == f"https://media.test/api/v1/media/{ASSET_ID}/stream/hls/all/index.m3u8" \
        "?token=TOKEN"
    assert config.dash is not None
    assert config.dash.endswith("/stream/dash/all.mpd?token=TOKEN")
    assert (config.poster, config.storyboard, config.duration) == (None, None, 8.0)
    image = MediaAsset.new("acme", ASSET_ID, kind=MediaKind.IMAGE, mime="image/png",
                           sha256="b" * 64, size_bytes=10)
    image.status = MediaAssetStatus.model_validate({"phase": "ready", "playable": True,
        "variants": [{"name": n, "type": "image", "state": "succeeded", "width": w,
                      "file": f"k/{n}/image.{ext}"}
                     for n, w, ext in (("w640", 640, "webp"), ("w320", 320, "webp"),
                                       ("j640", 640, "jpg"))]})
    stills = player.config_for(image, links, "TOKEN", player.Engine.HLS, lambda k: k).images
    assert [(s.width, s.type) for s in stills] == [(320, "image/webp"), (640, "image/webp"),
                                                   (640, "image/jpeg")]
