"""HLS and DASH as `core.manifests` reads and writes them: the worker's playlists, the
operator's stored master and merged MPD, the API's signed manifests. Independent readers
(the `m3u8` library, ElementTree) check what is written."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import m3u8
import pytest

from mediaplane.core.manifests import dash, hls
from mediaplane.core.resources import VariantStatus
from mediaplane.operator import manifests

PREFIX = "tenants/acme/assets/mda_x/"
NS = {"d": dash.DASH_NS}

FFMPEG_PLAYLIST = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-MAP:URI="init.m4s"
#EXTINF:4.000000,
#EXT-X-PROGRAM-DATE-TIME:2026-11-28T14:29:16.000+0000
seg-00001.m4s
#EXTINF:0.040000,
#EXT-X-PROGRAM-DATE-TIME:2026-11-28T14:29:20.000+0000
seg-00002.m4s
#EXT-X-ENDLIST
"""

RENDITION_MPD = """<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011"
     type="static" mediaPresentationDuration="PT{seconds}S" minBufferTime="PT4.0S">
  <ProgramInformation></ProgramInformation>
  <Period id="0" start="PT0.0S">
    <AdaptationSet id="0" contentType="{ctype}" startWithSAP="1" segmentAlignment="true">
      <Representation id="0" mimeType="{ctype}/mp4" codecs="{codecs}" bandwidth="{bw}">
        <SegmentTemplate timescale="1000" initialization="init.m4s"
                         media="seg-$Number%05d$.m4s" startNumber="1">
          <SegmentTimeline><S t="0" d="4000" r="2"/><S d="1000"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>"""


def variant(name: str, type_: str, bandwidth: int, codecs: str, **extra: Any) -> VariantStatus:
    return VariantStatus.model_validate({
        "name": name, "type": type_, "state": "succeeded", "bandwidth": bandwidth,
        "codecs": codecs, "playlist": f"{PREFIX}variants/{name}/media_0.m3u8",
        "mpd": f"{PREFIX}variants/{name}/manifest.mpd", **extra})


VARIANTS = [
    variant("360p", "video", 800_000, "avc1.64001e", width=640, height=360),
    variant("240p", "video", 400_000, "avc1.640015", width=426, height=240),
    variant("audio", "audio", 128_000, "mp4a.40.2"),
    VariantStatus.model_validate({"name": "720p", "type": "video", "state": "running"}),
    VariantStatus.model_validate({"name": "poster", "type": "poster", "state": "succeeded",
                                  "file": f"{PREFIX}variants/poster/poster.jpg"}),
]


def test_media_playlist_parse_and_render() -> None:
    playlist = hls.parse_media_playlist(FFMPEG_PLAYLIST)
    assert playlist.init == "init.m4s"
    assert playlist.ended
    assert playlist.files == ("init.m4s", "seg-00001.m4s", "seg-00002.m4s")
    assert playlist.duration == pytest.approx(4.04)
    rendered = playlist.render()
    assert "PROGRAM-DATE-TIME" not in rendered
    assert hls.parse_media_playlist(rendered) == playlist
    independent = m3u8.loads(rendered)
    assert [s.uri for s in independent.segments] == ["seg-00001.m4s", "seg-00002.m4s"]
    assert independent.segment_map[0].uri == "init.m4s"
    assert independent.target_duration == 4
    assert independent.is_endlist


def test_media_playlist_uris_are_rewritten_together() -> None:
    signed = hls.parse_media_playlist(FFMPEG_PLAYLIST).with_uris(lambda u: f"https://s/{u}?x=1")
    independent = m3u8.loads(signed.render())
    assert independent.segment_map[0].uri == "https://s/init.m4s?x=1"
    assert [s.uri for s in independent.segments] == ["https://s/seg-00001.m4s?x=1",
                                                     "https://s/seg-00002.m4s?x=1"]


def test_unreadable_playlists_are_refused() -> None:
    with pytest.raises(hls.ManifestError):
        hls.parse_media_playlist("<html>")
    with pytest.raises(hls.ManifestError):
        hls.parse_media_playlist("#EXTM3U\nseg.m4s\n")


def test_peak_bandwidth_ignores_a_tiny_tail() -> None:
    playlist = hls.parse_media_playlist(FFMPEG_PLAYLIST)
    sizes = {"seg-00001.m4s": 500_000, "seg-00002.m4s": 20_000}
    assert hls.peak_bandwidth(playlist.segments, sizes, 4) == 1_000_000


def test_stored_master_lists_done_rungs_with_an_audio_group() -> None:
    playlist = m3u8.loads(manifests.hls_master(VARIANTS, PREFIX))
    assert playlist.is_variant
    assert [p.uri for p in playlist.playlists] == ["variants/240p/media_0.m3u8",
                                                   "variants/360p/media_0.m3u8"]
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


def test_master_with_subtitles_names_the_group_on_every_stream() -> None:
    tracks = [hls.SubtitleTrack(language="en", name='Eng"lish', uri="subs/en.m3u8")]
    playlist = m3u8.loads(hls.master_playlist(VARIANTS, lambda v: v.name, tracks))
    assert all(p.stream_info.subtitles == hls.SUBTITLE_GROUP for p in playlist.playlists)
    subtitles = [m for m in playlist.media if m.type == "SUBTITLES"]
    assert [(m.language, m.name, m.uri) for m in subtitles] == [("en", "English",
                                                                  "subs/en.m3u8")]


def test_keys_outside_the_asset_prefix_are_refused() -> None:
    bad = variant("240p", "video", 1, "avc1",
                  playlist="tenants/other/assets/mda_y/variants/240p/media_0.m3u8")
    with pytest.raises(ValueError, match="not under"):
        manifests.hls_master([bad], PREFIX)


def merged() -> ET.Element:
    texts = {
        "360p": RENDITION_MPD.format(ctype="video", codecs="avc1.64001e", bw=800000,
                                     seconds="13.0"),
        "240p": RENDITION_MPD.format(ctype="video", codecs="avc1.640015", bw=400000,
                                     seconds="13.0"),
        "audio": RENDITION_MPD.format(ctype="audio", codecs="mp4a.40.2", bw=128000,
                                      seconds="13.02"),
    }
    return ET.fromstring(manifests.dash_mpd(VARIANTS, texts, PREFIX))  # noqa: S314 (ours)


def test_merged_mpd_lists_renditions_with_base_urls() -> None:
    root = merged()
    assert root.get("type") == "static"
    assert root.get("mediaPresentationDuration") == "PT13.02S"
    sets = root.findall("d:Period/d:AdaptationSet", NS)
    assert [s.get("contentType") for s in sets] == ["video", "audio"]
    video = sets[0].findall("d:Representation", NS)
    assert [r.get("id") for r in video] == ["240p", "360p"]
    assert [r.findtext("d:BaseURL", namespaces=NS) for r in video] == ["variants/240p/",
                                                                        "variants/360p/"]
    template = video[0].find("d:SegmentTemplate", NS)
    assert template is not None
    assert template.get("media") == "seg-$Number%05d$.m4s"
    assert root.find("d:ProgramInformation", NS) is None


def presign(key: str) -> str:
    return f"https://s3.test/{key}?X-Amz-Signature=abc"


def test_signed_mpd_has_one_timeline_entry_and_one_url_per_segment() -> None:
    """dash.js indexes a SegmentList's URLs by timeline entry: `r` repeats must be gone."""
    text = ET.tostring(merged(), encoding="unicode")
    track = dash.TextTrack(id="captions-fr", language="fr", url="https://s3.test/fr.vtt",
                           label="Français")
    root = ET.fromstring(dash.sign(text, PREFIX, presign, [track]))  # noqa: S314 (ours)
    rep = root.find(".//d:Representation[@id='240p']", NS)
    assert rep is not None
    assert rep.find("d:SegmentTemplate", NS) is None
    assert rep.find("d:BaseURL", NS) is None
    segment_list = rep.find("d:SegmentList", NS)
    assert segment_list is not None
    assert segment_list.get("timescale") == "1000"
    init = segment_list.find("d:Initialization", NS)
    assert init is not None
    assert init.get("sourceURL") == presign(PREFIX + "variants/240p/init.m4s")
    entries = segment_list.findall("d:SegmentTimeline/d:S", NS)
    assert [(s.get("t"), s.get("d"), s.get("r")) for s in entries] == [
        ("0", "4000", None), ("4000", "4000", None), ("8000", "4000", None),
        ("12000", "1000", None)]
    urls = [s.get("media") for s in segment_list.findall("d:SegmentURL", NS)]
    assert urls == [presign(PREFIX + f"variants/240p/seg-{n:05d}.m4s") for n in range(1, 5)]
    text_set = root.find(".//d:AdaptationSet[@contentType='text']", NS)
    assert text_set is not None
    assert (text_set.get("lang"), text_set.findtext("d:Label", namespaces=NS)) == (
        "fr", "Français")
    assert text_set.findtext("d:Representation/d:BaseURL", namespaces=NS) == track.url


def test_representation_of_a_rendition_mpd() -> None:
    rep = dash.representation(RENDITION_MPD.format(ctype="video", codecs="avc1.64001e",
                                                   bw=800000, seconds="4"))
    assert rep == dash.Representation("avc1.64001e", 800_000, None, None)
    with pytest.raises(dash.ManifestError):
        dash.representation("not xml")


def chunk_mpd(first_number: int, start: int, durations: list[int], timescale: int = 15360
              ) -> str:
    entries = "".join(f'<S t="{start + sum(durations[:i])}" d="{d}"/>'
                      for i, d in enumerate(durations))
    return (RENDITION_MPD.format(seconds=sum(durations) / timescale, ctype="video",
                                 codecs="avc1.640015", bw=400000)
            .replace('timescale="1000"', f'timescale="{timescale}"')
            .replace('startNumber="1"', f'startNumber="{first_number}"')
            .replace('<S t="0" d="4000" r="2"/><S d="1000"/>', entries))


def test_chunks_join_into_one_timeline_and_one_playlist() -> None:
    parts = [chunk_mpd(1, 0, [61440] * 3), chunk_mpd(4, 184320, [61440] * 2 + [30720])]
    joined = ET.fromstring(dash.join(parts))  # noqa: S314 (our own output)
    template = joined.find(".//d:SegmentTemplate", NS)
    assert template is not None
    assert template.get("startNumber") == "1"
    timeline = template.find("d:SegmentTimeline", NS)
    assert timeline is not None
    assert [dict(s.attrib) for s in timeline] == [{"t": "0", "d": "61440", "r": "4"},
                                                  {"t": "307200", "d": "30720"}]
    assert joined.get("mediaPresentationDuration") == "PT22.000S"
    assert dash.iso_seconds(joined.get("mediaPresentationDuration")) == 22.0

    def playlist(first: int, durations: list[float]) -> hls.MediaPlaylist:
        return hls.MediaPlaylist(init="init.m4s", ended=True, segments=tuple(
            hls.Segment(f"seg-{first + i:05d}.m4s", d) for i, d in enumerate(durations)))

    whole = hls.join([playlist(1, [4.0] * 3), playlist(4, [4.0, 4.0, 2.0])])
    parsed = m3u8.loads(whole.render())
    assert [s.uri for s in parsed.segments] == [f"seg-{n:05d}.m4s" for n in range(1, 7)]
    assert parsed.is_endlist
    assert parsed.segment_map[0].uri == "init.m4s"
    assert whole.duration == 22.0


def test_chunks_that_leave_a_gap_or_overlap_are_not_joined() -> None:
    first = chunk_mpd(1, 0, [61440] * 3)
    with pytest.raises(dash.ManifestError, match="starts at"):
        dash.join([first, chunk_mpd(4, 184320 + 512, [61440])])  # one frame missing
    with pytest.raises(dash.ManifestError, match="numbered"):
        dash.join([first, chunk_mpd(5, 184320, [61440])])
    with pytest.raises(dash.ManifestError, match="timescale"):
        dash.join([first, chunk_mpd(4, 184320, [61440], timescale=90000)])
    cut_short = hls.MediaPlaylist(init="init.m4s", ended=False,
                                  segments=(hls.Segment("seg-00001.m4s", 4.0),))
    with pytest.raises(hls.ManifestError):
        hls.join([cut_short])


def test_a_chunk_mpd_is_renumbered() -> None:
    renumbered = ET.fromstring(dash.renumber(chunk_mpd(1, 0, [61440]), 61))  # noqa: S314
    template = renumbered.find(".//d:SegmentTemplate", NS)
    assert template is not None
    assert template.get("startNumber") == "61"


def _track_mpd(ctype: str, timescale: int, durations: list[int], declared: str) -> str:
    entries = "".join(f'<S d="{d}"/>' if i else f'<S t="0" d="{d}"/>'
                      for i, d in enumerate(durations))
    return f"""<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"
     mediaPresentationDuration="{declared}" minBufferTime="PT4.0S">
  <Period id="0" start="PT0.0S"><AdaptationSet id="0" contentType="{ctype}">
    <Representation id="0" mimeType="{ctype}/mp4" codecs="x" bandwidth="1">
      <SegmentTemplate timescale="{timescale}" initialization="init.m4s"
                       media="seg-$Number%05d$.m4s" startNumber="1">
        <SegmentTimeline>{entries}</SegmentTimeline>
      </SegmentTemplate>
    </Representation>
  </AdaptationSet></Period>
</MPD>"""


def test_the_duration_covers_the_longest_track() -> None:
    """ffmpeg cuts the duration to a tenth of a second: 12.0107 s of AAC says PT12.0S, and
    dash.js, once the clock passed 12.0, sought back and paused instead of ending."""
    video = _track_mpd("video", 12800, [51200, 51200, 51200], "PT12.0S")  # 12.0 s
    audio = _track_mpd("audio", 48000, [191488, 192512, 192512], "PT12.0S")  # 12.0107 s
    merged = ET.fromstring(dash.merge([  # noqa: S314 (our own output)
        dash.Rendition("240p", "240p/", video), dash.Rendition("audio", "audio/", audio)]))
    assert merged.get("mediaPresentationDuration") == "PT12.011S"
    # An MPD stored before this (the short duration) is corrected where it is signed.
    stale = ET.tostring(merged, encoding="unicode").replace("PT12.011S", "PT12.0S")
    signed = ET.fromstring(dash.sign(stale, PREFIX, lambda key: f"https://s3.test/{key}"))  # noqa: S314
    assert signed.get("mediaPresentationDuration") == "PT12.011S"
    # A declared duration that already covers the timelines is left as it is.
    longer = _track_mpd("audio", 48000, [191488, 192512, 192512], "PT12.02S")
    kept = ET.fromstring(dash.merge([dash.Rendition("audio", "audio/", longer)]))  # noqa: S314
    assert kept.get("mediaPresentationDuration") == "PT12.02S"
