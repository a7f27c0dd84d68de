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
MAX_CUE_CHARACTERS = 5_000  # a cue is a line or two on screen; more is not a caption
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
# Captions are shown by players inside web pages: only WebVTT's own cue markup survives
# (c, i, b, u, ruby, rt, v, lang and timestamps), every other tag is dropped, script and
# style elements with their content, and a stray "<" or "&" is escaped.
_DROPPED_ELEMENTS = re.compile(r"<(script|style|iframe|object|embed)\b.*?(</\1\s*>|$)",
                               re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^<>]*>")
_CUE_TAG = re.compile(
    r"</?(c|i|b|u|ruby|rt)(\.[A-Za-z0-9_-]+)*>"
    r"|<(v|lang)(\.[A-Za-z0-9_-]+)*( [^<>&\"']{1,100})?>|</(v|lang)>"
    r"|<(\d{2,}:)?\d{2}:\d{2}\.\d{3}>")
_ENTITY = re.compile(r"&(amp|lt|gt|lrm|rlm|nbsp);")


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
        # `raw_text`: webvtt-py's `text` is the cue with its markup already stripped.
        if len(cue.raw_text) > MAX_CUE_CHARACTERS:
            raise ApiError("validation.caption", f"the cue at {cue.start} has "
                           f"{len(cue.raw_text)} characters, more than {MAX_CUE_CHARACTERS}")
        cue.text = sanitise_cue(cue.raw_text)
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


def _escape(text: str) -> str:
    out = []
    for index, char in enumerate(text):
        if char == "<":
            out.append("&lt;")
        elif char == "&" and not _ENTITY.match(text, index):
            out.append("&amp;")
        else:
            out.append(char)
    return "".join(out)


def sanitise_cue(text: str) -> str:
    """The cue with only WebVTT's own markup left (see `_CUE_TAG`)."""
    text = _DROPPED_ELEMENTS.sub("", text)
    parts: list[str] = []
    position = 0
    for tag in _TAG.finditer(text):
        parts.append(_escape(text[position:tag.start()]))
        if _CUE_TAG.fullmatch(tag.group()):
            parts.append(tag.group())
        position = tag.end()
    parts.append(_escape(text[position:]))
    return "".join(parts)
