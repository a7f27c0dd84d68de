"""Signed HLS and DASH manifests. The link's token is the grant (players send no header).

Hot path: the asset comes from the watch-fed cache, rendered manifests are cached with the
token left as a placeholder, and segments never pass through here (presigned URLs). The
HLS master needs nothing but the asset's status; a rendition's playlist or MPD is read from
storage once per asset version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from mediaplane.api import streaming
from mediaplane.api.auth import Principal
from mediaplane.api.context import ApiContext
from mediaplane.api.deps import AssetId, Context, OptionalPrincipal, stream_caller
from mediaplane.api.errors import ApiError, not_found
from mediaplane.api.openapi import errors
from mediaplane.api.signing import StreamGrant
from mediaplane.core import keys, names
from mediaplane.core.resources import CaptionTrack, MediaAsset, VariantStatus
from mediaplane.core.states import AssetPhase, VariantState
from mediaplane.core.tasks import VariantType

router = APIRouter(prefix="/api/v1/media", tags=["streaming"])

HLS_TYPE = "application/vnd.apple.mpegurl"
DASH_TYPE = "application/dash+xml"
VariantName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$",
                                  description="a variant name, `all` for the whole ladder, "
                                  "or `captions-<lang>` (HLS) for a subtitle track")]
Token = Annotated[str | None, Query(max_length=2048, description="the stream link's token")]

STREAM_ERRORS = errors("media.not_found", "media.transcoding", "media.quarantined",
                       "media.failed", "validation.variant", "stream.signature.invalid",
                       "stream.signature.expired", authenticated=False)
RETRY = {"Retry-After": "2"}
# The playlist and MPD routes read their caller themselves (`deps.stream_caller`); the
# document still names the optional bearer they check, as the dependency declared it.
BEARER_TOO: dict[str, Any] = {"security": [{"HTTPBearer": []}]}


async def authorised_asset(context: ApiContext, asset_id: str, token: str | None,
                            principal: Principal | None, variant: str = streaming.ALL
                            ) -> tuple[StreamGrant, MediaAsset]:
    grant = context.signer.verify(token, asset_id, variant)
    if principal is not None and (principal.user, principal.tenant) != (grant.user,
                                                                          grant.tenant):
        raise ApiError("stream.signature.invalid", "the stream link is for another user")
    asset = await context.assets.get(grant.tenant, names.name_from_asset_id(asset_id))
    if asset is None:
        raise not_found(asset_id)
    if asset.phase is AssetPhase.QUARANTINED:
        raise ApiError("media.quarantined", "the asset is quarantined and never served")
    if asset.phase is AssetPhase.FAILED:
        raise ApiError("media.failed", "the asset's processing failed")
    if not asset.playable:
        raise ApiError("media.transcoding", "the asset is not playable yet; retry shortly",
                       headers=RETRY)
    return grant, asset


def _variant(asset: MediaAsset, name: str) -> VariantStatus:
    variant = asset.status.variant(name)
    if variant is None:
        raise ApiError("validation.variant", f"the asset has no variant {name!r}")
    if not variant.is_stream:
        raise ApiError("validation.variant", f"{name} is not a stream")
    if not variant.streamable:
        raise ApiError("media.transcoding", f"variant {name} is not done yet", headers=RETRY)
    return variant


def _caption(asset: MediaAsset, language: str) -> CaptionTrack:
    track = next((t for t in asset.caption_tracks() if t.language == language), None)
    if track is None:
        raise ApiError("validation.variant", f"no caption track {language!r}")
    return track


async def _cached(context: ApiContext, key: tuple[str, ...],
                  render: Callable[[], Awaitable[str]]) -> str:
    """One render per key at a time: concurrent requests for a cold manifest wait for the
    same read from storage instead of each starting their own."""
    body: str | None = context.render_cache.get(key)
    if body is not None:
        return body
    pending = context.rendering.get(key)
    if pending is None:
        pending = asyncio.ensure_future(render())
        context.rendering[key] = pending
        pending.add_done_callback(lambda _: context.rendering.pop(key, None))
    rendered: str = await asyncio.shield(pending)
    context.render_cache[key] = rendered
    return rendered


def _respond(body: str, media_type: str, token: str) -> Response:
    return Response(streaming.with_token(body, token), media_type=media_type,
                    headers={"Cache-Control": "private, max-age=5"})


@router.get("/{asset_id}/stream/hls/{variant}/index.m3u8", response_class=Response,
            summary="HLS playlist (signed link): `all` is the master playlist",
            responses={200: {"content": {HLS_TYPE: {}}}, **STREAM_ERRORS},
            openapi_extra=BEARER_TOO)
async def hls(request: Request, asset_id: AssetId, variant: VariantName,
              token: Token = None) -> Response:
    context, principal = await stream_caller(request)
    grant, asset = await authorised_asset(context, asset_id, token, principal, variant)
    presign = presigner(context, asset.prefix)
    key = ("hls", grant.tenant, asset_id, asset.metadata.resource_version or "", variant)
    if variant == streaming.ALL:
        links = streaming.Links(context.settings.public_url.rstrip("/"), asset_id)

        async def render_master() -> str:
            return streaming.hls_master(asset, links)

        body = await _cached(context, key, render_master)
    elif variant.startswith(streaming.CAPTIONS_PREFIX):
        track = _caption(asset, variant[len(streaming.CAPTIONS_PREFIX):])
        duration = asset.status.probe.duration_seconds if asset.status.probe else None

        async def render_subtitles() -> str:
            return streaming.hls_subtitles(presign(track.key), duration or 0.0)

        body = await _cached(context, key, render_subtitles)
    else:
        rendition = _variant(asset, variant)
        playlist, folder = rendition.playlist or "", rendition.folder or ""

        async def render_media() -> str:
            presign(playlist)  # refuses a key outside the asset before reading it
            text = await asyncio.to_thread(context.storage.get_text, playlist)
            return streaming.hls_media(text, folder, presign)

        body = await _cached(context, key, render_media)
    return _respond(body, HLS_TYPE, token or "")


@router.get("/{asset_id}/stream/dash/{variant}.mpd", response_class=Response,
            summary="DASH MPD (signed link): `all` is the whole ladder",
            responses={200: {"content": {DASH_TYPE: {}}}, **STREAM_ERRORS},
            openapi_extra=BEARER_TOO)
async def dash(request: Request, asset_id: AssetId, variant: VariantName,
               token: Token = None) -> Response:
    context, principal = await stream_caller(request)
    grant, asset = await authorised_asset(context, asset_id, token, principal, variant)
    prefix = asset.prefix
    presign = presigner(context, prefix)
    tracks: list[CaptionTrack] = []
    if variant == streaming.ALL:
        manifests = asset.status.manifests
        mpd_key = (manifests.dash if manifests else None) or \
            keys.dash_manifest_key(grant.tenant, asset_id)
        folder = prefix
        tracks = asset.caption_tracks()
    else:
        rendition = _variant(asset, variant)
        mpd_key, folder = rendition.mpd or "", rendition.folder or ""

    links = streaming.Links(context.settings.public_url.rstrip("/"), asset_id)

    async def render() -> str:
        presign(mpd_key)
        text = await asyncio.to_thread(context.storage.get_text, mpd_key)
        return streaming.dash_mpd(text, folder, presign,
                                  [(t, links.caption(t.language)) for t in tracks])

    key = ("dash", grant.tenant, asset_id, asset.metadata.resource_version or "", variant)
    body = await _cached(context, key, render)
    return _respond(body, DASH_TYPE, token or "")


VTT_TYPE = "text/vtt; charset=utf-8"
Language = Annotated[str, Path(pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$",
                               description="the caption track's language (BCP 47)")]


@router.get("/{asset_id}/stream/captions/{language}.vtt", response_class=Response,
            summary="A caption track's WebVTT (signed link), as the DASH MPD names it",
            responses={200: {"content": {"text/vtt": {}}}, **STREAM_ERRORS})
async def caption_file(asset_id: AssetId, language: Language, context: Context,
                       principal: OptionalPrincipal, token: Token = None) -> Response:
    grant, asset = await authorised_asset(context, asset_id, token, principal)
    track = _caption(asset, language)
    if not keys.is_under(track.key, asset.prefix):
        raise ApiError("internal", "a caption track names an object outside the asset")

    async def render() -> str:
        return await asyncio.to_thread(context.storage.get_text, track.key)

    key = ("caption", grant.tenant, asset_id, asset.metadata.resource_version or "", language)
    body = await _cached(context, key, render)
    return Response(body, media_type=VTT_TYPE, headers={"Cache-Control": "private, max-age=5"})


@router.get("/{asset_id}/stream/storyboard.vtt", response_class=Response,
            summary="Seek previews (signed link): WebVTT cues naming regions of a sprite",
            responses={200: {"content": {"text/vtt": {}}}, **STREAM_ERRORS})
async def storyboard(asset_id: AssetId, context: Context, principal: OptionalPrincipal,
                     token: Token = None) -> Response:
    grant, asset = await authorised_asset(context, asset_id, token, principal)
    board = storyboard_variant(asset)
    if board is None:
        raise ApiError("validation.variant", "the asset has no storyboard (yet)")
    vtt_key, folder = board.file or "", board.folder or ""
    presign = presigner(context, asset.prefix)

    async def render() -> str:
        presign(vtt_key)  # refuses a key outside the asset before reading it
        text = await asyncio.to_thread(context.storage.get_text, vtt_key)
        return streaming.storyboard_vtt(text, folder, presign)

    key = ("storyboard", grant.tenant, asset_id, asset.metadata.resource_version or "")
    body = await _cached(context, key, render)
    return Response(body, media_type=VTT_TYPE, headers={"Cache-Control": "private, max-age=5"})


def storyboard_variant(asset: MediaAsset) -> VariantStatus | None:
    """The asset's storyboard once it is done."""
    return next((v for v in asset.status.variants if v.type is VariantType.STORYBOARD
                 and v.state is VariantState.SUCCEEDED and v.file), None)


def presigner(context: ApiContext, prefix: str) -> streaming.Presign:
    """Presigns keys of this asset only: a key outside its prefix (a corrupted status, a
    `..` in a playlist) is never signed."""
    seconds = context.presign_seconds

    def presign(key: str) -> str:
        if not keys.is_under(key, prefix):
            raise ApiError("internal", "a manifest names an object outside the asset")
        return context.storage.presign_get(key, seconds)

    return presign
