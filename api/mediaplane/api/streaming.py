"""Served manifests: what a player fetches, made from the asset and the stored manifests.

The HLS master is rendered from the asset's status alone (the cache holds it: no storage
round trip) and points at the façade's signed media playlists; media playlists and MPDs are
read from storage once and rewritten with presigned object URLs, so segments go straight
from storage to the player. Caption tracks are added as subtitles. Pure functions: the
parsing and writing are `core.manifests`'.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import webvtt

from mediaplane.core.manifests import dash, hls
from mediaplane.core.resources import CaptionTrack, MediaAsset

ALL = "all"  # the variant name for the whole ladder
CAPTIONS_PREFIX = "captions-"
TOKEN_PLACEHOLDER = "__MEDIAPLANE_STREAM_TOKEN__"  # noqa: S105 (a marker, not a secret)

Presign = Callable[[str], str]  # object key -> fetchable URL


@dataclass(frozen=True)
class Links:
    """Façade URLs of one asset's streams, with the token left as a placeholder so a
    rendered manifest can be cached and the token put in per request."""

    base: str
    asset_id: str

    def hls(self, variant: str) -> str:
        return (f"{self.base}/api/v1/media/{self.asset_id}/stream/hls/{_path(variant)}"
                f"/index.m3u8?token={TOKEN_PLACEHOLDER}")

    def dash(self, variant: str) -> str:
        return (f"{self.base}/api/v1/media/{self.asset_id}/stream/dash/{_path(variant)}.mpd"
                f"?token={TOKEN_PLACEHOLDER}")

    def caption(self, language: str) -> str:
        """A caption track's WebVTT through the façade: a URL with one query parameter, so
        it survives being a DASH BaseURL (ffmpeg's DASH reader mangles an `&` there)."""
        return (f"{self.base}/api/v1/media/{self.asset_id}/stream/captions/{quote(language)}"
                f".vtt?token={TOKEN_PLACEHOLDER}")

    def storyboard(self) -> str:
        return (f"{self.base}/api/v1/media/{self.asset_id}/stream/storyboard.vtt"
                f"?token={TOKEN_PLACEHOLDER}")

    def player(self) -> str:
        return f"{self.base}/player/{self.asset_id}?token={TOKEN_PLACEHOLDER}"


_PLAIN = re.compile(r"^[A-Za-z0-9._-]+$")


def _path(segment: str) -> str:
    """A path segment as it goes in a URL (variant names need no escaping; languages may)."""
    return segment if _PLAIN.match(segment) else quote(segment, safe="")


def with_token(body: str, token: str) -> str:
    return body.replace(TOKEN_PLACEHOLDER, token)


def caption_variant(language: str) -> str:
    return CAPTIONS_PREFIX + language


def hls_master(asset: MediaAsset, links: Links) -> str:
    """The master over the asset's streamable renditions and approved caption tracks."""
    subtitles = [hls.SubtitleTrack(language=t.language, name=t.title,
                                   uri=links.hls(caption_variant(t.language)))
                 for t in asset.caption_tracks()]
    return hls.master_playlist(asset.status.variants, lambda v: links.hls(v.name), subtitles)


def hls_media(playlist: str, folder: str, presign: Presign) -> str:
    """A rendition's media playlist with the init and every segment presigned."""
    parsed = hls.parse_media_playlist(playlist)
    return parsed.with_uris(lambda uri: presign(folder + uri)).render()


def hls_subtitles(vtt_url: str, duration_seconds: float) -> str:
    return hls.subtitle_playlist(vtt_url, duration_seconds)


def storyboard_vtt(vtt: str, folder: str, presign: Presign) -> str:
    """The stored storyboard with each cue's sprite (`name#xywh=…`, relative to the
    WebVTT) replaced by its presigned URL, the region kept as the URL's fragment."""
    document = webvtt.from_buffer(io.StringIO(vtt))
    urls: dict[str, str] = {}
    for caption in document.captions:
        target, hash_, fragment = caption.text.strip().partition("#")
        if not target or "/" in target or target.startswith("."):
            raise ValueError(f"a storyboard cue names {target!r}, not a sprite beside it")
        if target not in urls:
            urls[target] = presign(folder + target)
        caption.text = urls[target] + hash_ + fragment
    buffer = io.StringIO()
    document.write(buffer)
    return buffer.getvalue()


def dash_mpd(mpd: str, folder: str, presign: Presign,
             captions: Sequence[tuple[CaptionTrack, str]] = ()) -> str:
    """The stored MPD with SegmentLists of presigned URLs; `captions` pairs each track with
    its URL."""
    tracks = [dash.TextTrack(id=caption_variant(track.language), language=track.language,
                             url=url, label=track.title) for track, url in captions]
    return dash.sign(mpd, folder, presign, tracks)
