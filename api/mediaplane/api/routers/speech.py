"""Generated captions: ask for a track (speech to text), review it.

A request is recorded in the asset's spec (`spec.captionRequests[<language>]`, with the
install's model) by a JSON merge patch: a repeat, or any number of concurrent requests,
write the same entry, and the operator names the caption job after (asset, language,
model), so they all start one piece of work. The review verdict goes to
`spec.captionReview[<language>]`; kubectl users write the same fields.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from mediaplane.api import models
from mediaplane.api.deps import AssetId, Context, CurrentPrincipal, CurrentTenant
from mediaplane.api.errors import ApiError, not_found
from mediaplane.api.openapi import errors
from mediaplane.api.views import Presenter
from mediaplane.core import names
from mediaplane.core.resources import MediaAsset
from mediaplane.core.speech import LanguageError, normalise_tag, whisper_language
from mediaplane.core.states import AssetPhase, CaptionReview
from mediaplane.core.tasks import MediaKind

router = APIRouter(prefix="/api/v1/media", tags=["captions"])

RETRY_AFTER = {"Retry-After": "5"}
LanguagePath = Annotated[str, Path(max_length=35, description="BCP 47 tag, e.g. en-US")]


def _language(tag: str) -> str:
    try:
        language = normalise_tag(tag)
        whisper_language(language)
    except LanguageError as error:
        raise ApiError("validation.language", str(error)) from None
    return language


def _check_captionable(asset: MediaAsset) -> None:
    if asset.deleting:
        raise ApiError("media.deleting", "the asset is being deleted")
    if asset.phase is AssetPhase.QUARANTINED:
        raise ApiError("media.quarantined", "the asset is quarantined and never served")
    if asset.phase is AssetPhase.FAILED:
        raise ApiError("media.failed", "the asset's processing failed")
    probe = asset.status.probe
    if asset.spec.kind is MediaKind.IMAGE or (probe is not None and not probe.has_audio):
        raise ApiError("media.no_audio", "the asset has no audio stream to caption")
    if not asset.playable:
        raise ApiError("media.transcoding", "the asset is not playable yet; retry shortly",
                       headers=RETRY_AFTER)


@router.post("/ai/generate-caption", status_code=202,
             response_model=models.Envelope[models.CaptionJob],
             summary="Generate a caption track and a transcript from the asset's speech",
             description="Idempotent on (asset, language, model): a repeat answers the "
             "state of the same track. Speech in another language than the one asked for "
             "is translated when English is asked for, and fails the track otherwise.",
             responses=errors("media.not_found", "media.transcoding", "media.quarantined",
                              "media.failed", "media.deleting", "media.no_audio",
                              "validation.language", "rate.limited"))
async def generate_caption(body: models.GenerateCaptionRequest, context: Context,
                           principal: CurrentPrincipal, tenant: CurrentTenant,
                           response: Response) -> models.Envelope[models.CaptionJob]:
    response.headers.update(await context.limiter.hit(
        context.settings.caption_rate, "generate-caption", tenant.name, principal.user))
    language = _language(body.language)
    name = names.name_from_asset_id(body.asset_id)
    asset = await context.assets.get(tenant.name, name)
    if asset is None:
        raise not_found(body.asset_id)
    _check_captionable(asset)
    model = context.settings.speech_model
    request = asset.spec.caption_requests.get(language)
    job = asset.status.caption_job(language)
    asked = request is not None and (request.model or model) == model
    running = job is not None and job.model == model
    if not asked and not running:
        patched = await context.assets.patch(tenant.name, name, {"spec": {
            "captionRequests": {language: {"reviewRequired": body.review_required,
                                           "model": model}},
            "captionReview": {language: None}}})  # a new track needs a new review
        if patched is None:
            raise not_found(body.asset_id)
        asset = patched
    review = bool(request.review_required) if asked and request else body.review_required
    return models.Envelope(data=Presenter(context, principal).caption_job(asset, language, model,
                                                                          review))


@router.patch("/{asset_id}/captions/{language}", response_model=models.Envelope[models.Caption],
              summary="Approve or reject a generated caption track",
              description="Approved tracks appear in the HLS and DASH manifests; rejected "
              "ones never do. To correct a track, upload a manual one of the same language "
              "(POST …/captions): manual tracks take precedence in the manifests.",
              responses=errors("media.not_found", "caption.not_found", "validation.language",
                               "media.deleting", "media.quarantined"))
async def review_caption(asset_id: AssetId, language: LanguagePath,
                         body: models.CaptionReviewRequest, context: Context,
                         principal: CurrentPrincipal, tenant: CurrentTenant
                         ) -> models.Envelope[models.Caption]:
    try:
        tag = normalise_tag(language)
    except LanguageError as error:
        raise ApiError("validation.language", str(error)) from None
    name = names.name_from_asset_id(asset_id)
    asset = await context.assets.get(tenant.name, name)
    if asset is None:
        raise not_found(asset_id)
    if asset.deleting:
        raise ApiError("media.deleting", "the asset is being deleted")
    if asset.phase is AssetPhase.QUARANTINED:
        raise ApiError("media.quarantined", "the asset is quarantined")
    if not any(t.language == tag for t in asset.status.captions):
        raise ApiError("caption.not_found", f"asset {asset_id} has no generated {tag} track"
                       + (" yet" if asset.status.caption_job(tag) else ""))
    verdict = CaptionReview.APPROVED if body.approved else CaptionReview.REJECTED
    patched = await context.assets.patch(tenant.name, name,
                                         {"spec": {"captionReview": {tag: verdict.value}}})
    if patched is None:
        raise not_found(asset_id)
    generated = [c for c in Presenter(context, principal).captions(patched, tag)
                 if c.source.value == "generated"]
    return models.Envelope(data=generated[0])
