"""Caption tracks (manual ones stored here, generated ones listed) and transcripts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from mediaplane.api import models
from mediaplane.api.captions import check_language, to_webvtt
from mediaplane.api.deps import AssetId, Context, CurrentPrincipal, CurrentTenant
from mediaplane.api.errors import ApiError, not_found
from mediaplane.api.openapi import errors
from mediaplane.api.views import Presenter
from mediaplane.core import keys, names
from mediaplane.core.errors import ConflictError
from mediaplane.core.resources import ManualCaption, MediaAsset
from mediaplane.core.states import AssetPhase

router = APIRouter(prefix="/api/v1/media", tags=["captions"])

Language = Annotated[str | None, Query(alias="lang", max_length=35,
                                       description="BCP 47 tag, e.g. en-US")]
CONFLICT_RETRIES = 5


@router.get("/{asset_id}/captions", response_model=models.Envelope[list[models.Caption]],
            summary="Caption tracks, optionally of one language",
            responses=errors("media.not_found"))
async def list_captions(asset_id: AssetId, context: Context, principal: CurrentPrincipal,
                        tenant: CurrentTenant, lang: Language = None
                        ) -> models.Envelope[list[models.Caption]]:
    asset = await context.assets.get(tenant.name, names.name_from_asset_id(asset_id))
    if asset is None:
        raise not_found(asset_id)
    return models.Envelope(data=Presenter(context, principal).captions(asset, lang))


@router.post("/{asset_id}/captions", status_code=201,
             response_model=models.Envelope[models.Caption],
             summary="Add or replace a manual caption track (WebVTT or SubRip)",
             responses=errors("media.not_found", "validation.caption", "media.quarantined",
                              "media.deleting", "media.conflict"))
async def add_caption(asset_id: AssetId, body: models.CaptionRequest, context: Context,
                      principal: CurrentPrincipal, tenant: CurrentTenant
                      ) -> models.Envelope[models.Caption]:
    language = check_language(body.language)
    vtt, _ = to_webvtt(body.content)
    name = names.name_from_asset_id(asset_id)
    key = keys.caption_key(tenant.name, asset_id, language)
    for _ in range(CONFLICT_RETRIES):
        asset = await context.assets.get(tenant.name, name, fresh=True)
        if asset is None:
            raise not_found(asset_id)
        _check_writable(asset)
        await asyncio.to_thread(context.storage.put_text, key, vtt, "text/vtt; charset=utf-8")
        track = ManualCaption(language=language, key=key, approved=True, label=body.label)
        others = [t for t in asset.spec.captions if t.language.lower() != language.lower()]
        captions = [t.to_body() for t in [*others, track]]
        try:
            patched = await context.assets.patch(
                tenant.name, name, {"spec": {"captions": captions}},
                resource_version=asset.metadata.resource_version)
        except ConflictError:
            continue  # someone else changed the asset: read it again
        if patched is None:
            raise not_found(asset_id)
        created = Presenter(context, principal).captions(patched, language)
        return models.Envelope(data=created[0])
    raise ApiError("media.conflict", "the asset kept changing; retry")


def _check_writable(asset: MediaAsset) -> None:
    if asset.deleting:
        raise ApiError("media.deleting", "the asset is being deleted")
    if asset.phase is AssetPhase.QUARANTINED:
        raise ApiError("media.quarantined", "the asset is quarantined")


@router.get("/{asset_id}/transcript", response_model=models.Envelope[models.TranscriptDetail],
            summary="The transcript (text and signed links), once speech to text made one",
            description="`url` (plain text) and `segmentsUrl` (JSON, timed segments) are "
            "signed links that expire after 15 minutes; `text` is the plain text itself.",
            responses=errors("media.not_found", "transcript.not_found"))
async def get_transcript(asset_id: AssetId, context: Context, principal: CurrentPrincipal,
                         tenant: CurrentTenant, lang: Language = None
                         ) -> models.Envelope[models.TranscriptDetail]:
    asset = await context.assets.get(tenant.name, names.name_from_asset_id(asset_id))
    if asset is None:
        raise not_found(asset_id)
    track = Presenter.transcript_track(asset, lang)
    missing = ApiError("transcript.not_found",
                       f"asset {asset_id} has no transcript" + (f" in {lang}" if lang else ""))
    if track is None:
        raise missing
    if await asyncio.to_thread(context.storage.head, track.key) is None:
        raise missing  # gone with an asset being deleted
    text = await asyncio.to_thread(context.storage.get_text, track.key)
    seconds = context.settings.transcript_url_ttl_seconds
    presign = context.storage.presign_get
    return models.Envelope(data=models.TranscriptDetail(
        language=track.language, url=presign(track.key, seconds),
        segments_url=presign(track.segments_key, seconds) if track.segments_key else None,
        expires_at=datetime.now(UTC) + timedelta(seconds=seconds), model=track.model,
        text=text))
