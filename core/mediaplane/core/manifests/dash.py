"""DASH: the one reader of the MPDs ffmpeg writes and the writer of every MPD we store or serve.

Three steps, one per process:

- the worker reads its rendition's MPD for the codecs string and bandwidth (`representation`);
- the operator merges the renditions' MPDs into one static MPD, each Representation with a
  BaseURL to its folder (`merge`), stored next to the HLS master;
- the API turns a stored MPD into one a player can fetch (`sign`): SegmentTemplates become
  SegmentLists of presigned URLs, because a template cannot carry a signature per segment.

In a signed SegmentList every segment gets its own `S` element (no `r` repeats): players
(dash.js at least) index a SegmentList's URLs by timeline entry, so a repeated entry would
make them fetch one URL several times and never the rest.

The XML is ffmpeg's or ours, never a user's: it is parsed with the standard library.
"""

from __future__ import annotations

import functools
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass

DASH_NS = "urn:mpeg:dash:schema:mpd:2011"
_NS = {"d": DASH_NS}
for _prefix, _uri in (("", DASH_NS), ("xsi", "http://www.w3.org/2001/XMLSchema-instance"),
                      ("xlink", "http://www.w3.org/1999/xlink"),
                      ("cenc", "urn:mpeg:cenc:2013")):
    ET.register_namespace(_prefix, _uri)

_NUMBER = re.compile(r"\$Number(%0(\d+)d)?\$")
_ROOT_ATTRIBUTES = ("profiles", "minBufferTime")
_SET_ATTRIBUTES = ("contentType", "mimeType", "segmentAlignment", "startWithSAP", "lang", "par")

Presign = Callable[[str], str]  # object key -> fetchable URL


class ManifestError(ValueError):
    pass


def _q(tag: str) -> str:
    return f"{{{DASH_NS}}}{tag}"


def _parse(text: str) -> ET.Element:
    try:
        return ET.fromstring(text)  # noqa: S314 (ffmpeg's or our own output, see above)
    except ET.ParseError as error:
        raise ManifestError(f"not an MPD: {error}") from None


@dataclass(frozen=True)
class Representation:
    codecs: str | None
    bandwidth: int | None
    width: int | None
    height: int | None


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def representation(text: str) -> Representation:
    """The first Representation of an MPD ffmpeg wrote for one stream."""
    rep = _parse(text).find(".//d:Representation", _NS)
    if rep is None:
        raise ManifestError("MPD has no Representation")
    return Representation(codecs=rep.get("codecs"), bandwidth=_int(rep.get("bandwidth")),
                          width=_int(rep.get("width")), height=_int(rep.get("height")))


def iso_seconds(duration: str | None) -> float:
    """Seconds of an ISO 8601 duration as ffmpeg writes it (PT#H#M#S); 0 when unreadable."""
    match = re.fullmatch(
        r"P(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?",
        duration or "")
    if not match:
        return 0.0
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


@dataclass(frozen=True)
class Rendition:
    """One rendition's MPD for `merge`: its id in the merged MPD, its folder relative to
    the merged MPD, and the codecs string to use when ffmpeg left it out."""

    id: str
    folder: str
    mpd: str
    codecs: str | None = None


def merge(renditions: Sequence[Rendition]) -> str:
    """One static MPD: an AdaptationSet per content type and codec family, each
    Representation keeping its SegmentTemplate and gaining a BaseURL to its folder."""
    if not renditions:
        raise ManifestError("no rendition to list")
    parsed = [(r, _parse(r.mpd)) for r in renditions]
    first = parsed[0][1]
    root = ET.Element(_q("MPD"), {"type": "static"})
    for attribute in _ROOT_ATTRIBUTES:
        if first.get(attribute):
            root.set(attribute, first.get(attribute, ""))
    longest = max(parsed, key=lambda p: iso_seconds(p[1].get("mediaPresentationDuration")))[1]
    if longest.get("mediaPresentationDuration"):
        root.set("mediaPresentationDuration", longest.get("mediaPresentationDuration", ""))
    period = ET.SubElement(root, _q("Period"), {"id": "0", "start": "PT0S"})
    sets: dict[str, ET.Element] = {}
    for rendition, mpd in parsed:
        for source_set in mpd.iterfind("d:Period/d:AdaptationSet", _NS):
            set_template = source_set.find("d:SegmentTemplate", _NS)
            for rep in source_set.iterfind("d:Representation", _NS):
                target = _merge_target(sets, period, source_set, rep)
                target.append(_relocated(rep, rendition, set_template))
    _cover_timelines(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _timeline_end(root: ET.Element) -> float:
    """Seconds from the presentation's start to the end of its longest SegmentTimeline."""
    end = 0.0
    for adaptation in root.iterfind(".//d:AdaptationSet", _NS):
        set_template = adaptation.find("d:SegmentTemplate", _NS)
        for rep in adaptation.iterfind("d:Representation", _NS):
            own = rep.find("d:SegmentTemplate", _NS)
            template = own if own is not None else set_template
            timeline = template.find("d:SegmentTimeline", _NS) if template is not None else None
            if template is None or timeline is None:
                continue
            segments = timeline_segments(timeline)
            if segments:
                offset = int(template.get("presentationTimeOffset", "0"))
                ticks = sum(segments[-1]) - offset
                end = max(end, ticks / int(template.get("timescale", "1")))
    return end


def _cover_timelines(root: ET.Element) -> None:
    """Raises mediaPresentationDuration to where the longest track ends, when it is short.

    ffmpeg writes the duration cut to a tenth of a second: 12.0107 s of AAC (a whole
    number of 1024-sample frames) is "PT12.0S". dash.js takes the presentation as over
    once the clock passes that, seeks back into the last segment and pauses; whenever its
    200 ms check fell in the 11 ms between 12.0 and the media element's own end, playback
    stopped at 11.5 s, paused, and never ended. The duration is rounded up to the
    millisecond, so the element's own end always comes first.
    """
    end = _timeline_end(root)
    if end > iso_seconds(root.get("mediaPresentationDuration")):
        root.set("mediaPresentationDuration", _iso(math.ceil(end * 1000) / 1000))


def _merge_target(sets: dict[str, ET.Element], period: ET.Element, source_set: ET.Element,
                  rep: ET.Element) -> ET.Element:
    content = source_set.get("contentType") or source_set.get("mimeType") or \
        rep.get("mimeType") or ""
    group = f"{content}:{(rep.get('codecs') or '').split('.')[0]}"
    target = sets.get(group)
    if target is None:
        attributes = {"id": str(len(sets))}
        attributes.update({a: source_set.get(a, "") for a in _SET_ATTRIBUTES
                           if source_set.get(a)})
        attributes.setdefault("segmentAlignment", "true")
        target = sets[group] = ET.SubElement(period, _q("AdaptationSet"), attributes)
    return target


def _relocated(rep: ET.Element, rendition: Rendition, set_template: ET.Element | None
               ) -> ET.Element:
    """A copy of `rep` with the rendition's id, a BaseURL to its folder and its template."""
    copy = ET.Element(_q("Representation"), dict(rep.attrib))
    copy.set("id", rendition.id)
    if not copy.get("codecs") and rendition.codecs:
        copy.set("codecs", rendition.codecs)
    template = rep.find("d:SegmentTemplate", _NS)
    if template is None:
        template = set_template
    for child in rep:
        if child.tag not in (_q("SegmentTemplate"), _q("BaseURL")):
            copy.append(child)
    base = ET.SubElement(copy, _q("BaseURL"))
    base.text = rendition.folder
    if template is not None:
        copy.append(template)
    return copy


@dataclass(frozen=True)
class TextTrack:
    """A WebVTT file offered as a subtitle AdaptationSet."""

    id: str
    language: str
    url: str
    label: str | None = None


def sign(mpd: str, default_folder: str, presign: Presign,
         captions: Sequence[TextTrack] = ()) -> str:
    """The MPD with every segment URL presigned and the caption tracks added.

    `default_folder` is the key prefix relative segment paths resolve against (a
    Representation's BaseURL is relative to it).
    """
    root = _parse(mpd)
    _cover_timelines(root)  # MPDs stored before merge rounded up (see there)
    periods = root.findall("d:Period", _NS)
    for period in periods:
        for adaptation in period.findall("d:AdaptationSet", _NS):
            set_template = adaptation.find("d:SegmentTemplate", _NS)
            for rep in adaptation.findall("d:Representation", _NS):
                _to_segment_list(rep, set_template, default_folder, presign)
            if set_template is not None:
                adaptation.remove(set_template)
    if periods:
        for index, track in enumerate(captions):
            periods[-1].append(_text_set(track, 1000 + index))
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _to_segment_list(rep: ET.Element, set_template: ET.Element | None, default_folder: str,
                     presign: Presign) -> None:
    own = rep.find("d:SegmentTemplate", _NS)
    template = own if own is not None else set_template
    if template is None:
        return
    folder = default_folder
    base = rep.find("d:BaseURL", _NS)
    if base is not None:
        folder = default_folder + (base.text or "")
        rep.remove(base)
    if own is not None:
        rep.remove(own)
    timeline = template.find("d:SegmentTimeline", _NS)
    if timeline is None:
        raise ManifestError("only a SegmentTemplate with a SegmentTimeline can be signed")
    media = template.get("media", "")
    if "$" in _NUMBER.sub("", media):
        raise ManifestError(f"unsupported identifier in media template {media!r}")
    segment_list = ET.SubElement(rep, _q("SegmentList"))
    for attribute in ("timescale", "presentationTimeOffset"):
        if template.get(attribute):
            segment_list.set(attribute, template.get(attribute, ""))
    init = template.get("initialization")
    if init:
        ET.SubElement(segment_list, _q("Initialization"), sourceURL=presign(folder + init))
    expanded = ET.SubElement(segment_list, _q("SegmentTimeline"))
    number = int(template.get("startNumber", "1"))
    urls = []
    for start, duration in timeline_segments(timeline):
        ET.SubElement(expanded, _q("S"), t=str(start), d=str(duration))
        path = _NUMBER.sub(functools.partial(_format_number, number=number), media)
        urls.append(presign(folder + path))
        number += 1
    for url in urls:
        ET.SubElement(segment_list, _q("SegmentURL"), media=url)


def timeline_segments(timeline: ET.Element) -> list[tuple[int, int]]:
    """(start, duration) of every segment of a SegmentTimeline, `r` repeats expanded."""
    segments: list[tuple[int, int]] = []
    now = 0
    for s in timeline.findall("d:S", _NS):
        if s.get("t") is not None:
            now = int(s.get("t", "0"))
        duration = int(s.get("d", "0"))
        repeat = int(s.get("r", "0"))
        if duration <= 0 or repeat < 0:
            raise ManifestError("a SegmentTimeline entry without a positive duration, "
                                "or with an open-ended repeat")
        for _ in range(repeat + 1):
            segments.append((now, duration))
            now += duration
    return segments


def _template(root: ET.Element) -> ET.Element:
    """The SegmentTemplate of an MPD ffmpeg wrote for one stream (the Representation's own,
    or its AdaptationSet's)."""
    template = root.find(".//d:Representation/d:SegmentTemplate", _NS)
    if template is None:
        template = root.find(".//d:AdaptationSet/d:SegmentTemplate", _NS)
    if template is None or template.find("d:SegmentTimeline", _NS) is None:
        raise ManifestError("MPD has no SegmentTemplate with a SegmentTimeline")
    return template


def renumber(mpd: str, start_number: int) -> str:
    """The MPD of one chunk of a rendition, its segments numbered from `start_number` (the
    chunk's files are renamed to match)."""
    root = _parse(mpd)
    _template(root).set("startNumber", str(start_number))
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _iso(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def join(mpds: Sequence[str]) -> str:
    """One rendition's MPD from the MPDs of its consecutive chunks.

    The chunks were encoded with absolute timestamps, so their timelines must meet end to
    start in one timescale and their numbers follow on: anything else would be a gap or a
    jump in playback, and is refused rather than written."""
    if not mpds:
        raise ManifestError("no chunk to join")
    roots = [_parse(text) for text in mpds]
    templates = [_template(root) for root in roots]
    timescale = templates[0].get("timescale", "1")
    entries: list[tuple[int, int]] = []
    number = int(templates[0].get("startNumber", "1"))
    for index, template in enumerate(templates):
        timeline = template.find("d:SegmentTimeline", _NS)
        assert timeline is not None  # _template checked it
        segments = timeline_segments(timeline)
        if template.get("timescale", "1") != timescale:
            raise ManifestError(f"chunk {index} has another timescale")
        if entries and segments and segments[0][0] != sum(entries[-1]):
            raise ManifestError(f"chunk {index} starts at {segments[0][0]}, not where the "
                                f"previous one ends ({sum(entries[-1])})")
        if int(template.get("startNumber", "1")) != number + len(entries):
            raise ManifestError(f"chunk {index}'s segments are not numbered on from the last")
        entries += segments
    if not entries:
        raise ManifestError("the chunks hold no segment")
    first = roots[0]
    timeline = templates[0].find("d:SegmentTimeline", _NS)
    assert timeline is not None
    for child in list(timeline):
        timeline.remove(child)
    for start, duration, repeat in _runs(entries):
        attributes = {"t": str(start), "d": str(duration)}
        if repeat:
            attributes["r"] = str(repeat)
        ET.SubElement(timeline, _q("S"), attributes)
    seconds = (sum(entries[-1]) - entries[0][0]) / int(timescale)
    first.set("mediaPresentationDuration", _iso(seconds))
    first.set("maxSegmentDuration", _iso(max(d for _, d in entries) / int(timescale)))
    return ET.tostring(first, encoding="unicode", xml_declaration=True)


def _runs(entries: Sequence[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(start, duration, repeats) runs of contiguous equal durations, as ffmpeg writes them."""
    runs: list[tuple[int, int, int]] = []
    for start, duration in entries:
        if runs:
            run_start, run_duration, repeat = runs[-1]
            if run_duration == duration and run_start + run_duration * (repeat + 1) == start:
                runs[-1] = (run_start, run_duration, repeat + 1)
                continue
        runs.append((start, duration, 0))
    return runs


def _format_number(match: re.Match[str], *, number: int) -> str:
    width = match.group(2)
    return f"{number:0{int(width)}d}" if width else str(number)


def _text_set(track: TextTrack, set_id: int) -> ET.Element:
    adaptation = ET.Element(_q("AdaptationSet"), {
        "id": str(set_id), "contentType": "text", "mimeType": "text/vtt",
        "lang": track.language})
    if track.label:
        label = ET.SubElement(adaptation, _q("Label"))
        label.text = track.label
    ET.SubElement(adaptation, _q("Role"), schemeIdUri="urn:mpeg:dash:role:2011",
                  value="subtitle")
    rep = ET.SubElement(adaptation, _q("Representation"), {"id": track.id, "bandwidth": "256"})
    base = ET.SubElement(rep, _q("BaseURL"))
    base.text = track.url
    return adaptation
