"""Reading back the manifests ffmpeg wrote, to describe the rendition and to check it.

ffmpeg can exit 0 after an input error with a truncated rendition, so the playlist is the
proof of success: it must end, name an init segment and at least one media segment, and
every file it names must exist. The MPD carries the codecs string (RFC 6381) that the
operator's master playlist and MPD need.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

_DASH_NS = "{urn:mpeg:dash:schema:mpd:2011}"
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

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    @property
    def files(self) -> tuple[str, ...]:
        return ((self.init,) if self.init else ()) + tuple(s.uri for s in self.segments)


@dataclass(frozen=True)
class Representation:
    codecs: str | None
    bandwidth: int | None
    width: int | None
    height: int | None


def parse_media_playlist(text: str) -> MediaPlaylist:
    if not text.startswith("#EXTM3U"):
        raise ManifestError("not an HLS playlist")
    init: str | None = None
    segments: list[Segment] = []
    pending: float | None = None
    ended = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#EXTINF:"):
            pending = float(line[len("#EXTINF:"):].split(",", 1)[0])
        elif line.startswith("#EXT-X-MAP:"):
            match = _MAP_URI.match(line)
            init = match.group(1) if match else None
        elif line == "#EXT-X-ENDLIST":
            ended = True
        elif not line.startswith("#"):
            if pending is None:
                raise ManifestError(f"segment {line!r} without #EXTINF")
            segments.append(Segment(uri=line, duration=pending))
            pending = None
    return MediaPlaylist(init=init, segments=tuple(segments), ended=ended)


def normalise_media_playlist(text: str) -> str:
    """Drop EXT-X-PROGRAM-DATE-TIME: ffmpeg stamps the encoder's wall clock, which means
    nothing for VOD and differs between rungs encoded at different times."""
    lines = [ln for ln in text.splitlines() if not ln.startswith("#EXT-X-PROGRAM-DATE-TIME")]
    return "\n".join(lines) + "\n"


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def parse_mpd(text: str) -> Representation:
    """The first Representation of an MPD ffmpeg wrote for one stream."""
    # Our own ffmpeg's output, never user input: no entity tricks to defend against.
    root = ET.fromstring(text)  # noqa: S314
    rep = root.find(f".//{_DASH_NS}Representation")
    if rep is None:
        raise ManifestError("MPD has no Representation")
    return Representation(codecs=rep.get("codecs"), bandwidth=_int(rep.get("bandwidth")),
                          width=_int(rep.get("width")), height=_int(rep.get("height")))


def peak_bandwidth(segments: tuple[Segment, ...], sizes: dict[str, int],
                   target_seconds: float) -> int:
    """Peak segment bitrate in bits/s, which HLS BANDWIDTH must not be below. A short tail
    segment (a few frames) would exaggerate it, so segments under half the target duration
    count only when there is nothing else."""
    full = [s for s in segments if s.duration >= target_seconds / 2] or list(segments)
    rates = [sizes[s.uri] * 8 / s.duration for s in full if s.duration > 0]
    return round(max(rates)) if rates else 0
