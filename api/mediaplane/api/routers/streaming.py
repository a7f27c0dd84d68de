"""Signed HLS and DASH manifests. The link's token is the grant (players send no header).

Hot path: the asset is read through a short cache, rendered manifests are cached with the
token left as a placeholder, and segments never pass through here (presigned URLs).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, cast

from fastapi import APIRouter, Path, Query, Response

from mediaplane.api import streaming
from mediaplane.api.context import ApiContext
from mediaplane.api.deps import AssetId, Context, OptionalPrincipal
from mediaplane.api.errors import ApiError, not_found
from mediaplane.api.openapi import errors
from mediaplane.api.signing import StreamGrant
from mediaplane.api.views import playable
from mediaplane.core import keys, names

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


async def _authorised_asset(context: ApiContext, asset_id: str, token: str | None,
                            principal: Any) -> tuple[StreamGrant, dict[str, Any]]:
    grant = context.signer.verify(token, asset_id)
    if principal is not None and (principal.user, principal.tenant) != (grant.user,
                                                                          grant.tenant):
        raise ApiError("stream.signature.invalid", "the stream link is for another user")
    asset = await context.assets.get(grant.tenant, names.name_from_asset_id(asset_id))
    if asset is None:
        raise not_found(asset_id)
    status = asset.get("status") or {}
    if status.get("phase") == "quarantined":
        raise ApiError("media.quarantined", "the asset is quarantined and never served")
    if status.get("phase") == "failed":
        raise ApiError("media.failed", "the asset's processing failed")
    if not playable(asset):
        raise ApiError("media.transcoding", "the asset is not playable yet; retry shortly",
                       headers={"Retry-After": "2"})
    return grant, asset


def _variant(asset: dict[str, Any], name: str) -> dict[str, Any]:
    for v in (asset.get("status") or {}).get("variants") or []:
        if v["name"] == name:
            if v["type"] not in ("video", "audio"):
                raise ApiError("validation.variant", f"{name} is not a stream")
            if v.get("state") != "succeeded" or not v.get("playlist"):
                raise ApiError("media.transcoding", f"variant {name} is not done yet",
                               headers={"Retry-After": "2"})
            return cast(dict[str, Any], v)
    raise ApiError("validation.variant", f"the asset has no variant {name!r}")


def _captions(asset: dict[str, Any]) -> list[streaming.CaptionTrack]:
    spec, status = asset.get("spec") or {}, asset.get("status") or {}
    tracks = [*(spec.get("captions") or []), *(status.get("captions") or [])]
    seen: set[str] = set()
    out = []
    for t in tracks:
        if t["language"] not in seen:
            seen.add(t["language"])
            out.append(streaming.CaptionTrack(t["language"], t["key"],
                                              t.get("label") or t["language"]))
    return out


async def _cached(context: ApiContext, key: tuple[str, ...], render: Any) -> str:
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
            responses={200: {"content": {HLS_TYPE: {}}}, **STREAM_ERRORS})
async def hls(asset_id: AssetId, variant: VariantName, context: Context,
              principal: OptionalPrincipal, token: Token = None) -> Response:
    grant, asset = await _authorised_asset(context, asset_id, token, principal)
    tenant = grant.tenant
    version = asset["metadata"]["resourceVersion"]
    presign = _presigner(context, keys.asset_prefix(tenant, asset_id))
    if variant == streaming.ALL:
        master_key = (asset.get("status") or {}).get("manifests", {}).get("hls") or \
            keys.hls_master_key(tenant, asset_id)

        async def render_master() -> str:
            presign(master_key)  # refuses a key outside the asset
            text = await asyncio.to_thread(context.storage.get_text, master_key)
            links = streaming.Links(context.settings.public_url.rstrip("/"), asset_id)
            return streaming.hls_master(text, links, _captions(asset))

        body = await _cached(context, ("hls", tenant, asset_id, version, variant), render_master)
        return _respond(body, HLS_TYPE, token or "")
    if variant.startswith(streaming.CAPTIONS_PREFIX):
        language = variant[len(streaming.CAPTIONS_PREFIX):]
        track = next((t for t in _captions(asset) if t.language == language), None)
        if track is None:
            raise ApiError("validation.variant", f"no caption track {language!r}")
        duration = float(((asset.get("status") or {}).get("probe") or {})
                         .get("durationSeconds") or 0.0)

        async def render_subtitles() -> str:
            return streaming.hls_subtitles(presign(track.key), duration)

        body = await _cached(context, ("hls", tenant, asset_id, version, variant),
                             render_subtitles)
        return _respond(body, HLS_TYPE, token or "")
    v = _variant(asset, variant)
    folder = v["playlist"].rsplit("/", 1)[0] + "/"

    async def render_media() -> str:
        presign(v["playlist"])
        text = await asyncio.to_thread(context.storage.get_text, v["playlist"])
        return streaming.hls_media(text, folder, presign)

    body = await _cached(context, ("hls", tenant, asset_id, version, variant), render_media)
    return _respond(body, HLS_TYPE, token or "")


@router.get("/{asset_id}/stream/dash/{variant}.mpd", response_class=Response,
            summary="DASH MPD (signed link): `all` is the whole ladder",
            responses={200: {"content": {DASH_TYPE: {}}}, **STREAM_ERRORS})
async def dash(asset_id: AssetId, variant: VariantName, context: Context,
               principal: OptionalPrincipal, token: Token = None) -> Response:
    grant, asset = await _authorised_asset(context, asset_id, token, principal)
    tenant = grant.tenant
    version = asset["metadata"]["resourceVersion"]
    prefix = keys.asset_prefix(tenant, asset_id)
    presign = _presigner(context, prefix)
    if variant == streaming.ALL:
        mpd_key = (asset.get("status") or {}).get("manifests", {}).get("dash") or \
            keys.dash_manifest_key(tenant, asset_id)
        folder = prefix
        tracks = _captions(asset)
    else:
        v = _variant(asset, variant)
        mpd_key = v["mpd"]
        folder = mpd_key.rsplit("/", 1)[0] + "/"
        tracks = []

    async def render() -> str:
        presign(mpd_key)
        text = await asyncio.to_thread(context.storage.get_text, mpd_key)
        return streaming.dash_mpd(text, folder, presign,
                                  [(t, presign(t.key)) for t in tracks])

    body = await _cached(context, ("dash", tenant, asset_id, version, variant), render)
    return _respond(body, DASH_TYPE, token or "")


def _presigner(context: ApiContext, prefix: str) -> streaming.Presign:
    """Presigns keys of this asset only: a key outside its prefix (a corrupted status, a
    `..` in a playlist) is never signed."""
    seconds = context.presign_seconds

    def presign(key: str) -> str:
        if not keys.is_under(key, prefix):
            raise ApiError("internal", "a manifest names an object outside the asset")
        return context.storage.presign_get(key, seconds)

    return presign
