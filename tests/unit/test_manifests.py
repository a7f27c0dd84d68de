"""The master playlist and the merged MPD list exactly the done renditions."""

from __future__ import annotations

from typing import Any

import m3u8
import pytest
from mpegdash.parser import MPEGDASHParser

from mediaplane.operator import manifests

PREFIX = "tenants/acme/assets/mda_x/"

RENDITION_MPD = """<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011"
     type="static" mediaPresentationDuration="PT4.0S" minBufferTime="PT4.0S">
  <Period id="0" start="PT0.0S">
    <AdaptationSet id="0" contentType="{ctype}" startWithSAP="1" segmentAlignment="true">
      <Representation id="0" mimeType="{ctype}/mp4" codecs="{codecs}" bandwidth="{bw}">
        <SegmentTemplate timescale="1000" duration="4000" initialization="init.m4s"
                         media="seg-$Number%05d$.m4s" startNumber="1"/>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>"""


def variant(name: str, type_: str, bandwidth: int, codecs: str,
            **extra: object) -> dict[str, Any]:
    return {"name": name, "type": type_, "state": "succeeded", "bandwidth": bandwidth,
            "codecs": codecs, "playlist": f"{PREFIX}variants/{name}/media_0.m3u8",
            "mpd": f"{PREFIX}variants/{name}/manifest.mpd", **extra}


VARIANTS: list[dict[str, Any]] = [
    variant("360p", "video", 800_000, "avc1.64001e", width=640, height=360),
    variant("240p", "video", 400_000, "avc1.640015", width=426, height=240),
    variant("audio", "audio", 128_000, "mp4a.40.2"),
    {"name": "720p", "type": "video", "state": "running"},
    {"name": "poster", "type": "poster", "state": "succeeded",
     "file": f"{PREFIX}variants/poster/poster.jpg"},
]


def test_hls_master_lists_done_rungs_with_an_audio_group() -> None:
    playlist = m3u8.loads(manifests.hls_master(VARIANTS, PREFIX))
    assert playlist.is_variant
    uris = [p.uri for p in playlist.playlists]
    assert uris == ["variants/240p/media_0.m3u8", "variants/360p/media_0.m3u8"]
    first = playlist.playlists[0].stream_info
    assert first.bandwidth == 528_000
    assert first.resolution == (426, 240)
    assert first.codecs == "avc1.640015,mp4a.40.2"
    assert [m.uri for m in playlist.media] == ["variants/audio/media_0.m3u8"]


def test_audio_only_master_lists_audio_streams() -> None:
    audio = [variant("aac-128k", "audio", 128_000, "mp4a.40.2"),
             variant("opus-96k", "audio", 96_000, "opus")]
    playlist = m3u8.loads(manifests.hls_master(audio, PREFIX))
    assert [p.uri for p in playlist.playlists] == ["variants/opus-96k/media_0.m3u8",
                                                   "variants/aac-128k/media_0.m3u8"]


def test_dash_mpd_merges_renditions_with_base_urls() -> None:
    texts = {
        "360p": RENDITION_MPD.format(ctype="video", codecs="avc1.64001e", bw=800000),
        "240p": RENDITION_MPD.format(ctype="video", codecs="avc1.640015", bw=400000),
        "audio": RENDITION_MPD.format(ctype="audio", codecs="mp4a.40.2", bw=128000),
    }
    mpd = MPEGDASHParser.parse(manifests.dash_mpd(VARIANTS, texts, PREFIX))
    assert mpd.type == "static"
    sets = mpd.periods[0].adaptation_sets
    assert [s.content_type for s in sets] == ["video", "audio"]
    video = sets[0].representations
    assert [r.id for r in video] == ["240p", "360p"]
    assert [r.base_urls[0].base_url_value for r in video] == ["variants/240p/", "variants/360p/"]
    assert video[0].segment_templates[0].media == "seg-$Number%05d$.m4s"
    assert sets[1].representations[0].base_urls[0].base_url_value == "variants/audio/"


def test_keys_outside_the_asset_prefix_are_refused() -> None:
    bad = [variant("240p", "video", 1, "avc1")]
    bad[0]["playlist"] = "tenants/other/assets/mda_y/variants/240p/media_0.m3u8"
    with pytest.raises(ValueError, match="not under"):
        manifests.hls_master(bad, PREFIX)
