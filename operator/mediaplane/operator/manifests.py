"""The asset-level HLS master playlist and DASH MPD over the variants that are done.

Each worker writes CMAF segments with its own HLS media playlist and single-rendition MPD;
one set of segments serves both. These functions only list renditions, with paths relative
to the asset prefix, so the manifests stay valid wherever the objects are served from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from mpegdash.nodes import MPEGDASH, AdaptationSet, BaseURL, Period
from mpegdash.parser import MPEGDASHParser

from mediaplane.core.tasks import TaskType

AUDIO_GROUP = "audio"


def relative(key: str, asset_prefix: str) -> str:
    if not key.startswith(asset_prefix):
        raise ValueError(f"{key!r} is not under {asset_prefix!r}")
    return key[len(asset_prefix):]


def streamable(variants: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Done audio/video renditions, video by ascending bandwidth, then audio."""
    done = [v for v in variants if v.get("state") == "succeeded" and v.get("playlist")
            and v.get("mpd") and v["type"] in (TaskType.VIDEO.value, TaskType.AUDIO.value)]
    return sorted(done, key=lambda v: (v["type"] != TaskType.VIDEO.value, v.get("bandwidth") or 0))


def hls_master(variants: Sequence[Mapping[str, Any]], asset_prefix: str) -> str:
    """An HLS master playlist: video rungs as variant streams sharing one audio group."""
    renditions = streamable(variants)
    video = [v for v in renditions if v["type"] == TaskType.VIDEO.value]
    audio = [v for v in renditions if v["type"] == TaskType.AUDIO.value]
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if video and audio:
        main = audio[0]
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="{main["name"]}",'
            f'DEFAULT=YES,AUTOSELECT=YES,URI="{relative(main["playlist"], asset_prefix)}"')
        for v in video:
            codecs = ",".join(c for c in (v.get("codecs"), main.get("codecs")) if c)
            bandwidth = (v.get("bandwidth") or 0) + (main.get("bandwidth") or 0)
            lines.append(f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},'
                         f'RESOLUTION={v.get("width")}x{v.get("height")},'
                         f'CODECS="{codecs}",AUDIO="{AUDIO_GROUP}"')
            lines.append(relative(v["playlist"], asset_prefix))
    else:
        for v in video or audio:
            attributes = [f'BANDWIDTH={v.get("bandwidth") or 0}']
            if v["type"] == TaskType.VIDEO.value:
                attributes.append(f'RESOLUTION={v.get("width")}x{v.get("height")}')
            if v.get("codecs"):
                attributes.append(f'CODECS="{v["codecs"]}"')
            lines.append("#EXT-X-STREAM-INF:" + ",".join(attributes))
            lines.append(relative(v["playlist"], asset_prefix))
    return "\n".join(lines) + "\n"


def dash_mpd(variants: Sequence[Mapping[str, Any]], rendition_mpds: Mapping[str, str],
             asset_prefix: str) -> str:
    """One static MPD: an AdaptationSet per content type and codec family.

    `rendition_mpds` maps a variant name to the MPD text its worker wrote. Each
    Representation keeps its SegmentTemplate and gains a BaseURL to its variant folder.
    """
    renditions = streamable(variants)
    if not renditions:
        raise ValueError("no done rendition to list")
    parsed = {v["name"]: MPEGDASHParser.parse(rendition_mpds[v["name"]]) for v in renditions}
    first = parsed[renditions[0]["name"]]
    sets: dict[str, AdaptationSet] = {}
    durations: list[str] = []
    for v in renditions:
        mpd = parsed[v["name"]]
        if mpd.media_presentation_duration:
            durations.append(mpd.media_presentation_duration)
        for source_set in mpd.periods[0].adaptation_sets:
            for representation in source_set.representations:
                if not representation.segment_templates and source_set.segment_templates:
                    representation.segment_templates = source_set.segment_templates
                representation.id = v["name"]
                base = BaseURL()
                base.base_url_value = _folder(v["mpd"], asset_prefix)
                representation.base_urls = [base]
                if not representation.codecs and v.get("codecs"):
                    representation.codecs = v["codecs"]
                group = _group_key(source_set, representation)
                target = sets.get(group)
                if target is None:
                    target = _empty_set_like(source_set, len(sets))
                    sets[group] = target
                target.representations = [*(target.representations or []), representation]
    merged = MPEGDASH()
    merged.xmlns = first.xmlns or "urn:mpeg:dash:schema:mpd:2011"
    merged.profiles = first.profiles
    merged.type = "static"
    merged.min_buffer_time = first.min_buffer_time
    merged.media_presentation_duration = max(durations, key=_iso_seconds) if durations else None
    period = Period()
    period.id = "0"
    period.start = "PT0S"
    period.adaptation_sets = list(sets.values())
    merged.periods = [period]
    return str(MPEGDASHParser.get_as_doc(merged).toprettyxml(indent="  "))


def _folder(mpd_key: str, asset_prefix: str) -> str:
    path = relative(mpd_key, asset_prefix)
    return path.rsplit("/", 1)[0] + "/"


def _group_key(source_set: AdaptationSet, representation: Any) -> str:
    content = source_set.content_type or source_set.mime_type or representation.mime_type or ""
    family = (representation.codecs or "").split(".")[0]
    return f"{content}:{family}"


def _empty_set_like(source_set: AdaptationSet, index: int) -> AdaptationSet:
    target = AdaptationSet()
    target.id = index
    target.content_type = source_set.content_type
    target.mime_type = source_set.mime_type
    target.segment_alignment = source_set.segment_alignment or "true"
    target.start_with_sap = source_set.start_with_sap
    target.lang = source_set.lang
    target.par = source_set.par
    target.max_width = None
    target.max_height = None
    target.representations = []
    return target


def _iso_seconds(duration: str) -> float:
    """Seconds of an ISO 8601 duration as ffmpeg writes it (PT#H#M#S)."""
    match = re.fullmatch(r"P(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?",
                         duration)
    if not match:
        return 0.0
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds
