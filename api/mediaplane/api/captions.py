"""Caption files from users: parsed with real parsers, normalised to WebVTT.

WebVTT is read with webvtt-py and SubRip with pysrt (strictly: a malformed cue is an
error, not a skipped line), then written back by webvtt-py, so what is stored and served
is always a well-formed WebVTT file whatever was sent.
"""

from __future__ import annotations

import io
import re

import pysrt
import webvtt

from mediaplane.api.errors import ApiError

MAX_CUES = 50_000
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")


def check_language(language: str) -> str:
    if not _LANGUAGE.match(language) or len(language) > 35:
        raise ApiError("validation.invalid", f"language {language!r} is not a BCP 47 tag")
    return language


def to_webvtt(content: str) -> tuple[str, str]:
    """(normalised WebVTT, the detected input format 'vtt' or 'srt')."""
    text = content.lstrip("\ufeff")
    if not text.strip():
        raise ApiError("validation.caption", "the caption file is empty")
    if text.startswith("WEBVTT"):
        captions = _parse_vtt(text)
        detected = "vtt"
    else:
        captions = _parse_srt(text)
        detected = "srt"
    if not captions:
        raise ApiError("validation.caption", "the caption file has no cues")
    if len(captions) > MAX_CUES:
        raise ApiError("validation.caption", f"more than {MAX_CUES} cues")
    for cue in captions:
        if cue.end_in_seconds < cue.start_in_seconds:
            raise ApiError("validation.caption",
                           f"cue at {cue.start} ends before it starts ({cue.end})")
    document = webvtt.WebVTT(captions=captions)
    buffer = io.StringIO()
    document.write(buffer)
    return buffer.getvalue(), detected


def _parse_vtt(text: str) -> list[webvtt.Caption]:
    try:
        return list(webvtt.WebVTT.from_string(text, strict=True).captions)
    except Exception as error:  # webvtt-py raises several types for bad input
        raise ApiError("validation.caption", f"not valid WebVTT: {error}") from None


def _parse_srt(text: str) -> list[webvtt.Caption]:
    try:
        items = pysrt.from_string(text, error_handling=pysrt.ERROR_RAISE)
    except Exception as error:  # pysrt raises InvalidItem, ValueError…
        raise ApiError("validation.caption", f"neither WebVTT nor valid SubRip: {error}"
                       ) from None
    return [webvtt.Caption(start=_timestamp(item.start), end=_timestamp(item.end),
                           text=item.text) for item in items]


def _timestamp(time: pysrt.SubRipTime) -> str:
    return f"{time.hours:02d}:{time.minutes:02d}:{time.seconds:02d}.{time.milliseconds:03d}"
