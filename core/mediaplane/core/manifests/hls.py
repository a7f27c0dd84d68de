"""HLS: the one parser of media playlists and the one writer of every playlist we serve.

What is parsed is ffmpeg's own output (the dash muxer's `hls_playlist`), a small subset of
RFC 8216: a map, segments with EXTINF, the end tag. The writer emits the same subset, so
the worker's stored playlists, the operator's stored master and the API's signed ones are
all produced here. Tests read our output with the independent `m3u8` library; it is not
used here because rewriting a playlist's map URI with it silently keeps the old one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mediaplane.core.tasks import VariantType

if TYPE_CHECKING:
    from mediaplane.core.resources import VariantStatus

AUDIO_GROUP = "audio"
SUBTITLE_GROUP = "subs"
_MAP_URI = re.compile(r'#EXT-X-MAP:.*?URI="([^"]+)"')


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class Segment:
    uri: str
    duration: float


@dataclass(frozen=True)
class MediaPlaylist:
    init: str | None
    segments: tuple[Segment, ...]
    ended: bool
    version: int = 7
    media_sequence: int = 1

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    @property
    def target_duration(self) -> int:
        """EXT-X-TARGETDURATION: the longest segment, rounded to the nearest integer
        (RFC 8216 §4.3.3.1), never below 1."""
        longest = max((s.duration for s in self.segments), default=1.0)
        return max(1, math.floor(longest + 0.5))

    @property
    def files(self) -> tuple[str, ...]:
        return ((self.init,) if self.init else ()) + tuple(s.uri for s in self.segments)

    def with_uris(self, resolve: Callable[[str], str]) -> MediaPlaylist:
        """The same playlist with the map and every segment URI passed through `resolve`."""
        return replace(self, init=resolve(self.init) if self.init else None,
                       segments=tuple(Segment(resolve(s.uri), s.duration)
                                      for s in self.segments))

    def render(self) -> str:
        """VOD playlist text. EXT-X-PROGRAM-DATE-TIME is never written: ffmpeg stamps the
        encoder's wall clock, which means nothing for VOD and differs between rungs."""
        lines = ["#EXTM3U", f"#EXT-X-VERSION:{self.version}",
                 f"#EXT-X-TARGETDURATION:{self.target_duration}",
                 f"#EXT-X-MEDIA-SEQUENCE:{self.media_sequence}",
                 "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS"]
        if self.init:
            lines.append(f'#EXT-X-MAP:URI="{self.init}"')
        for segment in self.segments:
            lines += [f"#EXTINF:{segment.duration:.6f},", segment.uri]
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"


def parse_media_playlist(text: str) -> MediaPlaylist:
    if not text.startswith("#EXTM3U"):
        raise ManifestError("not an HLS playlist")
    init: str | None = None
    segments: list[Segment] = []
    pending: float | None = None
    ended = False
    version, sequence = 7, 1
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#EXTINF:"):
            try:
                pending = float(line[len("#EXTINF:"):].split(",", 1)[0])
            except ValueError:
                raise ManifestError(f"bad duration in {line!r}") from None
        elif line.startswith("#EXT-X-MAP:"):
            match = _MAP_URI.match(line)
            init = match.group(1) if match else None
        elif line.startswith("#EXT-X-VERSION:"):
            version = _int(line, version)
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = _int(line, sequence)
        elif line == "#EXT-X-ENDLIST":
            ended = True
        elif not line.startswith("#"):
            if pending is None:
                raise ManifestError(f"segment {line!r} without #EXTINF")
            segments.append(Segment(uri=line, duration=pending))
            pending = None
    return MediaPlaylist(init=init, segments=tuple(segments), ended=ended, version=version,
                         media_sequence=sequence)


def join(parts: Sequence[MediaPlaylist]) -> MediaPlaylist:
    """One rendition from the playlists of its consecutive chunks (segment-parallel
    encoding): the first chunk's map, every chunk's segments in order. Every chunk must have
    ended: a chunk cut short would leave a hole in the middle of the rendition."""
    if not parts:
        raise ManifestError("no chunk to join")
    if not all(p.ended and p.segments for p in parts):
        raise ManifestError("a chunk's playlist has no segment or did not end")
    return replace(parts[0], segments=tuple(s for p in parts for s in p.segments), ended=True)


def _int(line: str, default: int) -> int:
    value = line.split(":", 1)[1].strip()
    return int(value) if value.isdigit() else default


def peak_bandwidth(segments: Sequence[Segment], sizes: dict[str, int],
                   target_seconds: float) -> int:
    """Peak segment bitrate in bits/s, which HLS BANDWIDTH must not be below. A short tail
    segment (a few frames) would exaggerate it, so segments under half the target duration
    count only when there is nothing else."""
    full = [s for s in segments if s.duration >= target_seconds / 2] or list(segments)
    rates = [sizes[s.uri] * 8 / s.duration for s in full if s.duration > 0]
    return round(max(rates)) if rates else 0


@dataclass(frozen=True)
class SubtitleTrack:
    language: str
    name: str
    uri: str


def _quoted(value: str) -> str:
    """An attribute value for a quoted-string: no quotes or line breaks can get through."""
    return re.sub(r'["\r\n]', "", value)


def master_playlist(variants: Sequence[VariantStatus], uri: Callable[[VariantStatus], str],
                    subtitles: Sequence[SubtitleTrack] = ()) -> str:
    """The master playlist over the streamable renditions: video rungs as variant streams
    sharing one audio group (or audio renditions alone), optional WebVTT subtitles.

    `uri` says where each rendition's media playlist is: a relative path in the stored
    master, a signed façade link in the served one.
    """
    # Imported here: workers parse and write media playlists and never need the resources'
    # models, whose import is a sizeable part of a worker pod's start-up.
    from mediaplane.core.resources import streamable

    renditions = streamable(variants)
    video = [v for v in renditions if v.type is VariantType.VIDEO]
    audio = [v for v in renditions if v.type is VariantType.AUDIO]
    subs = f',SUBTITLES="{SUBTITLE_GROUP}"' if subtitles and video else ""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if video:
        for index, track in enumerate(subtitles):
            lines.append(
                f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{SUBTITLE_GROUP}",'
                f'NAME="{_quoted(track.name)}",LANGUAGE="{_quoted(track.language)}",'
                f'DEFAULT={"YES" if index == 0 else "NO"},AUTOSELECT=YES,'
                f'URI="{track.uri}"')
    if video and audio:
        main = audio[0]
        lines.append(f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="{main.name}",'
                     f'DEFAULT=YES,AUTOSELECT=YES,URI="{uri(main)}"')
        for v in video:
            codecs = ",".join(c for c in (v.codecs, main.codecs) if c)
            bandwidth = (v.bandwidth or 0) + (main.bandwidth or 0)
            lines.append(f"#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},"
                         f"RESOLUTION={v.width}x{v.height},CODECS=\"{codecs}\","
                         f'AUDIO="{AUDIO_GROUP}"{subs}')
            lines.append(uri(v))
    else:
        for v in video or audio:
            attributes = [f"BANDWIDTH={v.bandwidth or 0}"]
            if v.type is VariantType.VIDEO:
                attributes.append(f"RESOLUTION={v.width}x{v.height}")
            if v.codecs:
                attributes.append(f'CODECS="{v.codecs}"')
            lines.append("#EXT-X-STREAM-INF:" + ",".join(attributes) + subs)
            lines.append(uri(v))
    return "\n".join(lines) + "\n"


def subtitle_playlist(uri: str, duration_seconds: float) -> str:
    """A one-segment WebVTT media playlist (the whole track is one file)."""
    duration = max(duration_seconds, 0.001)
    return "\n".join([
        "#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{math.ceil(duration)}",
        "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-MEDIA-SEQUENCE:0", f"#EXTINF:{duration:.3f},",
        uri, "#EXT-X-ENDLIST", ""])
