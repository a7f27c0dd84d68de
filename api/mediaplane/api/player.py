"""The player page: what it plays (from the asset, signed for the link's holder) and its
HTML, as pure functions; `routers/player.py` serves it.

The page is static markup plus a JSON config; `static/player.js` does the playing with
the vendored hls.js, dash.js or Shaka Player (`scripts/vendor-players.sh`). Every URL in
the config is a signed link (the stream token) or a presigned object URL, so the page
works from any origin and sends no credentials. A link that cannot be played gets a page
that says why instead of a player.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from mediaplane.api.streaming import ALL, Links, with_token
from mediaplane.core.resources import MediaAsset
from mediaplane.core.states import VariantState
from mediaplane.core.tasks import MediaKind, VariantType

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
STATIC_PATH = "/player/static"


class Engine(StrEnum):
    HLS = "hls"  # hls.js (or the browser's own HLS where MSE is missing)
    DASH = "dash"  # dash.js
    SHAKA = "shaka"  # Shaka Player, on the DASH manifest


ENGINE_SCRIPTS = {Engine.HLS: "hls.min.js", Engine.DASH: "dash.all.min.js",
                  Engine.SHAKA: "shaka-player.compiled.js"}

# The page names only itself and the storage: scripts and styles from here, media, images
# and manifests from anywhere (presigned storage URLs), workers from blobs (hls.js).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src * data: blob:",
    "media-src * data: blob:", "connect-src *", "worker-src 'self' blob:", "base-uri 'none'",
    "form-action 'none'"])
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # The page's URL carries the token: never send it to storage as a Referer.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
}

Presign = Callable[[str], str]


@dataclass(frozen=True)
class Still:
    url: str
    width: int | None
    height: int | None
    type: str


@dataclass(frozen=True)
class PlayerConfig:
    asset_id: str
    kind: MediaKind
    engine: Engine
    title: str
    duration: float | None = None
    hls: str | None = None
    dash: str | None = None
    poster: str | None = None
    storyboard: str | None = None
    images: list[Still] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [])}


def vendored() -> bool:
    """The players were vendored into the package (scripts/vendor-players.sh)."""
    return all((VENDOR_DIR / name).is_file() for name in ENGINE_SCRIPTS.values())


def config_for(asset: MediaAsset, links: Links, token: str, engine: Engine,
               presign: Presign) -> PlayerConfig:
    """What the page plays: the whole ladder's manifests, the poster, the storyboard, or
    the image sizes, each signed for this link."""
    probe = asset.status.probe
    done = [v for v in asset.status.variants if v.state is VariantState.SUCCEEDED]
    by_type = {v.type: v for v in reversed(done)}
    config = PlayerConfig(asset_id=asset.asset_id, kind=asset.spec.kind, engine=engine,
                          title=asset.spec.filename or asset.asset_id,
                          duration=probe.duration_seconds if probe else None)
    if asset.spec.kind is MediaKind.IMAGE:
        stills = sorted((v for v in done if v.type is VariantType.IMAGE and v.file),
                        key=lambda v: v.width or 0)
        images = [Still(url=presign(v.file or ""), width=v.width, height=v.height,
                        type="image/jpeg" if (v.file or "").endswith(".jpg") else "image/webp")
                  for v in stills]
        return replace(config, images=images)
    poster = by_type.get(VariantType.POSTER)
    storyboard = by_type.get(VariantType.STORYBOARD)
    return replace(
        config, hls=with_token(links.hls(ALL), token),
        dash=with_token(links.dash(ALL), token),
        poster=presign(poster.file) if poster is not None and poster.file else None,
        storyboard=with_token(links.storyboard(), token)
        if storyboard is not None and storyboard.file else None)


def _json_for_script(data: object) -> str:
    """JSON that cannot close the <script> element it sits in."""
    return (json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("&", "\\u0026"))


def _page(title: str, body: str, head: str = "") -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="robots" content="noindex"><title>{html.escape(title)}</title>'
            f'<link rel="icon" href="data:,">'
            f'<link rel="stylesheet" href="{STATIC_PATH}/player.css">{head}</head>'
            f'<body>{body}</body></html>\n')


def render(config: PlayerConfig) -> str:
    scripts = ""
    if config.kind is not MediaKind.IMAGE:
        scripts = f'<script src="{STATIC_PATH}/vendor/{ENGINE_SCRIPTS[config.engine]}"></script>'
    body = (f'<main class="mp-page" data-kind="{config.kind.value}">'
            f'<div id="mp-player" class="mp-player"></div>'
            f'<p id="mp-message" class="mp-message" role="alert" hidden></p></main>'
            f'<script id="mp-config" type="application/json">'
            f'{_json_for_script(config.to_json())}</script>'
            f'{scripts}<script src="{STATIC_PATH}/player.js"></script>')
    return _page(config.title, body)


# What a viewer is told, by error code; anything else shows the error's own message.
MESSAGES = {
    "stream.signature.expired": "This link has expired. Ask for a new link to watch it.",
    "stream.signature.invalid": "This link is not valid: it was changed, or it is for "
                                "other media.",
    "media.not_found": "There is nothing to play here: the media does not exist or was "
                       "deleted.",
    "media.transcoding": "This media is still being processed. The page reloads by itself "
                         "when it is ready.",
    "media.quarantined": "This media did not pass its safety checks and cannot be played.",
    "media.failed": "Processing this media failed; it cannot be played.",
    "unavailable": "The service is busy or unreachable right now. Try again in a moment.",
}
RELOAD_SECONDS = 5


def render_error(code: str, message: str, request_id: str) -> str:
    text = MESSAGES.get(code, message)
    head = (f'<meta http-equiv="refresh" content="{RELOAD_SECONDS}">'
            if code == "media.transcoding" else "")
    body = (f'<main class="mp-page"><section class="mp-error" role="alert" '
            f'data-code="{html.escape(code)}"><h1>Cannot play this link</h1>'
            f'<p class="mp-error-text">{html.escape(text)}</p>'
            f'<p class="mp-error-detail">Error <code>{html.escape(code)}</code>, request '
            f'<code>{html.escape(request_id)}</code></p></section></main>')
    return _page("Cannot play this link", body, head)
