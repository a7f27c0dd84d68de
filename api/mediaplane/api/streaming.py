"""Served manifests: the stored HLS/DASH manifests with every URL made fetchable.

The operator writes manifests with paths relative to the asset prefix. What a player gets
instead: playlists of the façade (signed with the caller's stream token) for the HLS
master, and presigned object URLs for init and media segments, so segments go straight
from storage to the player. DASH SegmentTemplates become SegmentLists of presigned URLs
(a template cannot carry one signature per segment). Caption tracks are added as
subtitles. These functions are pure: text in, text out.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

DASH_NS = "urn:mpeg:dash:schema:mpd:2011"
_NS = {"d": DASH_NS}
for _prefix, _uri in (("", DASH_NS), ("xsi", "http://www.w3.org/2001/XMLSchema-instance"),
                      ("xlink", "http://www.w3.org/1999/xlink"),
                      ("cenc", "urn:mpeg:cenc:2013")):
    ET.register_namespace(_prefix, _uri)

ALL = "all"  # the variant name for the whole ladder
CAPTIONS_PREFIX = "captions-"
SUBTITLE_GROUP = "subs"
TOKEN_PLACEHOLDER = "__MEDIAPLANE_STREAM_TOKEN__"  # noqa: S105 (a marker, not a secret)

Presign = Callable[[str], str]  # object key -> fetchable URL

_URI_ATTRIBUTE = re.compile(r'URI="([^"]+)"')
_NUMBER = re.compile(r"\$Number(%0(\d+)d)?\$")


@dataclass(frozen=True)
class CaptionTrack:
    language: str
    key: str
    label: str


@dataclass(frozen=True)
class Links:
    """Façade URLs of one asset's streams, with the token left as a placeholder so a
    rendered manifest can be cached and the token put in per request."""

    base: str
    asset_id: str

    def hls(self, variant: str) -> str:
        return (f"{self.base}/api/v1/media/{self.asset_id}/stream/hls/{quote(variant)}"
                f"/index.m3u8?token={TOKEN_PLACEHOLDER}")

    def dash(self, variant: str) -> str:
        return (f"{self.base}/api/v1/media/{self.asset_id}/stream/dash/{quote(variant)}.mpd"
                f"?token={TOKEN_PLACEHOLDER}")


def with_token(body: str, token: str) -> str:
    return body.replace(TOKEN_PLACEHOLDER, token)


def caption_variant(language: str) -> str:
    return CAPTIONS_PREFIX + language


def hls_master(master: str, links: Links, captions: Sequence[CaptionTrack]) -> str:
    """The stored master with variant URIs pointing at the façade, plus subtitle tracks."""
    out: list[str] = []
    for line in master.splitlines():
        if line.startswith("#EXT-X-MEDIA:"):
            line = _URI_ATTRIBUTE.sub(lambda m: f'URI="{links.hls(_variant_of(m.group(1)))}"',
                                      line)
        elif line.startswith("#EXT-X-STREAM-INF:") and captions:
            line += f',SUBTITLES="{SUBTITLE_GROUP}"'
        elif line and not line.startswith("#"):
            line = links.hls(_variant_of(line))
        out.append(line)
        if line.startswith("#EXT-X-INDEPENDENT-SEGMENTS"):
            out.extend(_subtitle_media(captions, links))
    return "\n".join(out) + "\n"


def _subtitle_media(captions: Sequence[CaptionTrack], links: Links) -> list[str]:
    lines = []
    for index, track in enumerate(captions):
        default = "YES" if index == 0 else "NO"
        lines.append(
            f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{SUBTITLE_GROUP}",NAME="{track.label}",'
            f'LANGUAGE="{track.language}",DEFAULT={default},AUTOSELECT=YES,'
            f'URI="{links.hls(caption_variant(track.language))}"')
    return lines


def _variant_of(relative: str) -> str:
    """`variants/<name>/media_0.m3u8` -> `<name>`."""
    parts = relative.split("/")
    if len(parts) < 3 or parts[0] != "variants":
        raise ValueError(f"unexpected playlist path in the master: {relative!r}")
    return parts[1]


def hls_media(playlist: str, folder: str, presign: Presign) -> str:
    """A variant's media playlist with the init and every segment presigned."""
    out: list[str] = []
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-MAP:"):
            line = _URI_ATTRIBUTE.sub(lambda m: f'URI="{presign(folder + m.group(1))}"', line)
        elif line and not line.startswith("#"):
            line = presign(folder + line)
        out.append(line)
    return "\n".join(out) + "\n"


def hls_subtitles(vtt_url: str, duration_seconds: float) -> str:
    """A one-segment WebVTT media playlist (the whole track is one file)."""
    duration = max(duration_seconds, 0.001)
    return "\n".join([
        "#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{int(duration + 0.999)}",
        "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-MEDIA-SEQUENCE:0", f"#EXTINF:{duration:.3f},",
        vtt_url, "#EXT-X-ENDLIST", ""])


def dash_mpd(mpd: str, default_folder: str, presign: Presign,
             captions: Sequence[tuple[CaptionTrack, str]] = ()) -> str:
    """The MPD with SegmentTemplates expanded into SegmentLists of presigned URLs.

    `default_folder` is where relative segment paths resolve when a Representation has no
    BaseURL (a single rendition's MPD); `captions` pairs each track with its URL.
    """
    root = ET.fromstring(mpd)  # noqa: S314 (our own operator's output, not user input)
    for period in root.findall("d:Period", _NS):
        for adaptation in period.findall("d:AdaptationSet", _NS):
            set_template = adaptation.find("d:SegmentTemplate", _NS)
            for representation in adaptation.findall("d:Representation", _NS):
                _expand(representation, set_template, default_folder, presign)
            if set_template is not None:
                adaptation.remove(set_template)
        for index, (track, url) in enumerate(captions):
            period.append(_text_set(track, url, 1000 + index))
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _expand(representation: ET.Element, set_template: ET.Element | None,
            default_folder: str, presign: Presign) -> None:
    template = representation.find("d:SegmentTemplate", _NS)
    if template is None:
        template = set_template
    if template is None:
        return
    base = representation.find("d:BaseURL", _NS)
    folder = default_folder
    if base is not None and base.text:
        folder = default_folder + base.text
        representation.remove(base)
    own = representation.find("d:SegmentTemplate", _NS)
    if own is not None:
        representation.remove(own)
    segment_list = ET.SubElement(representation, f"{{{DASH_NS}}}SegmentList")
    for attribute in ("timescale", "presentationTimeOffset"):
        if template.get(attribute):
            segment_list.set(attribute, template.get(attribute, ""))
    init = template.get("initialization")
    if init:
        ET.SubElement(segment_list, f"{{{DASH_NS}}}Initialization",
                      sourceURL=presign(folder + init))
    timeline = template.find("d:SegmentTimeline", _NS)
    media = template.get("media", "")
    start = int(template.get("startNumber", "1"))
    if timeline is None:
        raise ValueError("only SegmentTemplate with a SegmentTimeline is served")
    count = sum(int(s.get("r", "0")) + 1 for s in timeline.findall("d:S", _NS))
    copied = ET.SubElement(segment_list, f"{{{DASH_NS}}}SegmentTimeline")
    for s in timeline.findall("d:S", _NS):
        ET.SubElement(copied, f"{{{DASH_NS}}}S", dict(s.attrib))
    for number in range(start, start + count):
        path = _NUMBER.sub(functools.partial(_format_number, number=number), media)
        ET.SubElement(segment_list, f"{{{DASH_NS}}}SegmentURL", media=presign(folder + path))


def _format_number(match: re.Match[str], *, number: int) -> str:
    width = match.group(2)
    return f"{number:0{int(width)}d}" if width else str(number)


def _text_set(track: CaptionTrack, url: str, set_id: int) -> ET.Element:
    adaptation = ET.Element(f"{{{DASH_NS}}}AdaptationSet", {
        "id": str(set_id), "contentType": "text", "mimeType": "text/vtt",
        "lang": track.language})
    ET.SubElement(adaptation, f"{{{DASH_NS}}}Role",
                  schemeIdUri="urn:mpeg:dash:role:2011", value="subtitle")
    representation = ET.SubElement(adaptation, f"{{{DASH_NS}}}Representation", {
        "id": caption_variant(track.language), "bandwidth": "256"})
    base = ET.SubElement(representation, f"{{{DASH_NS}}}BaseURL")
    base.text = url
    return adaptation
