"""AI generation: images and speech as ordinary assets, and what is on offer.

Order of the checks, so that a refused request leaves nothing behind and costs nothing:
the body and the catalogue (422), an image service being configured (503), moderation
(422 `ai.refused.safety`), an identical earlier request (200, free), the budget (429
`ai.refused.budget`), and only then the asset (202).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response

from mediaplane.api import models
from mediaplane.api.auth import Principal
from mediaplane.api.budgets import Budget
from mediaplane.api.deps import Context, CurrentPrincipal, CurrentTenant
from mediaplane.api.errors import ApiError
from mediaplane.api.generation import now
from mediaplane.api.kube import Tenant
from mediaplane.api.moderation import ModerationUnavailableError
from mediaplane.api.openapi import errors
from mediaplane.api.views import Presenter
from mediaplane.core import ai, names
from mediaplane.core.errors import AlreadyExistsError
from mediaplane.core.resources import (
    GenerationSpec,
    ImageGeneration,
    MediaAsset,
    SpeechGeneration,
)
from mediaplane.core.states import SourceOrigin
from mediaplane.core.tasks import GenerationKind, MediaKind

router = APIRouter(prefix="/api/v1/media/ai", tags=["ai"])
IMAGE_MIME = "image/png"


def _invalid(message: str, **details: Any) -> ApiError:
    return ApiError("validation.invalid", message, details=[details] if details else None)


@router.get("/capabilities", response_model=models.Envelope[models.AiCapabilities],
            summary="What can be generated here: image models, sizes, styles, voices, "
                    "formats, and the caller's budgets", responses=errors())
async def capabilities(context: Context, principal: CurrentPrincipal,
                       tenant: CurrentTenant) -> models.Envelope[models.AiCapabilities]:
    catalog = context.ai.catalog.get()
    service = catalog.image
    budgets = {}
    for kind in GenerationKind:
        budget = context.ai.budget(tenant, kind)
        usage = await context.ai.budgets.peek(tenant.name, kind.value, budget, now())
        budgets[kind.value] = models.BudgetInfo(
            limit=usage.limit, remaining=usage.remaining, period_seconds=budget.period_seconds,
            renews_at=datetime.fromtimestamp(usage.renews_at, UTC))
    return models.Envelope(data=models.AiCapabilities(
        image=models.ImageCapabilities(
            available=service is not None, provider=service.kind.value if service else None,
            models=list(service.models) if service else [],
            sizes={s.name: s.long_side for s in catalog.sizes},
            aspect_ratios=list(catalog.aspect_ratios), styles=[s.name for s in catalog.styles],
            max_prompt_chars=catalog.max_prompt_chars),
        speech=models.SpeechCapabilities(
            available=bool(catalog.voices),
            voices=[models.VoiceInfo(id=v.id, language=v.language, description=v.description)
                    for v in catalog.voices],
            formats=list(catalog.formats), max_text_chars=catalog.max_text_chars),
        budgets=budgets))


@router.post("/generate-image", status_code=202,
             response_model=models.Envelope[models.MediaAsset],
             summary="Generate an image as a new asset (200 with the existing asset for a "
                     "repeat of the same request)",
             responses={200: {"description": "the same request was made before: its asset, "
                                             "at no cost"},
                        **errors("ai.refused.safety", "ai.refused.budget", "ai.unavailable",
                                 "media.conflict", "media.deleting")})
async def generate_image(body: models.GenerateImageRequest, context: Context,
                         principal: CurrentPrincipal, tenant: CurrentTenant,
                         response: Response) -> models.Envelope[models.MediaAsset]:
    catalog = context.ai.catalog.get()
    service = catalog.image
    size = catalog.size(body.size)
    if size is None:
        raise _invalid(f"unknown size {body.size!r}", accepted=[s.name for s in catalog.sizes])
    ratio = body.aspect_ratio or "1:1"
    if ratio not in catalog.aspect_ratios:
        raise _invalid(f"unknown aspect ratio {ratio!r}", accepted=catalog.aspect_ratios)
    if body.style is not None and catalog.style(body.style) is None:
        raise _invalid(f"unknown style {body.style!r}",
                       accepted=[s.name for s in catalog.styles])
    prompt = ai.normalise_prompt(body.prompt)
    if not prompt:
        raise _invalid("the prompt is empty")
    if len(prompt) > catalog.max_prompt_chars:
        raise _invalid(f"the prompt has {len(prompt)} characters; at most "
                       f"{catalog.max_prompt_chars} are accepted")
    if service is None:
        raise ApiError("ai.unavailable", "image generation is not configured here; an admin "
                       "sets an image service in the AI catalogue (see the README)")
    model = body.model or service.models[0]
    if model not in service.models:
        raise _invalid(f"unknown model {model!r}", accepted=service.models)
    await _moderate(context, tenant, principal.user, GenerationKind.IMAGE, prompt)
    width, height = ai.dimensions(size.long_side, ratio)
    params = ImageGeneration(size=size.name, aspect_ratio=ratio, width=width, height=height,
                             style=body.style)
    generation = GenerationSpec(
        type=GenerationKind.IMAGE, model=model, prompt=prompt, image=params,
        request_sha256=ai.request_digest("image", prompt, params.to_body()))
    return await _generate(context, principal, tenant, generation, MediaKind.IMAGE,
                           IMAGE_MIME, "generated.png", response)


@router.post("/generate-audio", status_code=202,
             response_model=models.Envelope[models.MediaAsset],
             summary="Speak a text with a voice of the catalogue, as a new audio asset",
             responses={200: {"description": "the same request was made before: its asset, "
                                             "at no cost"},
                        **errors("ai.refused.safety", "ai.refused.budget", "media.conflict",
                                 "media.deleting")})
async def generate_audio(body: models.GenerateAudioRequest, context: Context,
                         principal: CurrentPrincipal, tenant: CurrentTenant,
                         response: Response) -> models.Envelope[models.MediaAsset]:
    catalog = context.ai.catalog.get()
    voice = catalog.voice(body.voice)
    if voice is None:
        raise _invalid(f"unknown voice {body.voice!r}", accepted=[v.id for v in catalog.voices])
    if not voice.speaks(body.language):
        raise _invalid(f"voice {voice.id!r} speaks {voice.language}, not {body.language}")
    if body.format not in catalog.formats:
        raise _invalid(f"format {body.format} is not offered", accepted=catalog.formats)
    text = ai.normalise_prompt(body.text)
    if not text:
        raise _invalid("the text is empty")
    if len(text) > catalog.max_text_chars:
        raise _invalid(f"the text has {len(text)} characters; at most "
                       f"{catalog.max_text_chars} are accepted")
    await _moderate(context, tenant, principal.user, GenerationKind.SPEECH, text)
    params = SpeechGeneration(voice=voice.id, language=voice.language, format=body.format)
    generation = GenerationSpec(
        type=GenerationKind.SPEECH, model=f"piper:{voice.id}", prompt=text, speech=params,
        request_sha256=ai.request_digest("speech", text, params.to_body()))
    return await _generate(context, principal, tenant, generation, MediaKind.AUDIO,
                           body.format.mime, f"speech.{body.format.value}", response)


async def _moderate(context: Context, tenant: Tenant, user: str, kind: GenerationKind,
                    text: str) -> None:
    try:
        verdict = await context.ai.moderator.check(text, tenant.ai_blocked_terms)
    except ModerationUnavailableError as error:
        raise ApiError("unavailable", str(error), headers={"Retry-After": "5"}) from None
    if verdict.allowed:
        return
    await context.tenants.post_event(
        tenant.name, "PromptRefused", f"a {kind.value} request by {user} was refused by "
        f"moderation ({verdict.stage}): category {verdict.category}")
    what = "prompt" if kind is GenerationKind.IMAGE else "text"
    raise ApiError("ai.refused.safety", f"the {what} was refused by moderation (category: "
                   f"{verdict.category})", details=[{"category": verdict.category}])


async def _generate(context: Context, principal: Principal, tenant: Tenant,
                    generation: GenerationSpec, kind: MediaKind, mime: str, filename: str,
                    response: Response) -> models.Envelope[models.MediaAsset]:
    asset_id = ai.generated_asset_id(tenant.name, generation.model, generation.request_sha256)
    name = names.name_from_asset_id(asset_id)
    presenter = Presenter(context, principal)
    budget = context.ai.budget(tenant, generation.type)
    cached = context.assets.cached(tenant.name, name)
    if cached is not None:
        return await _existing(context, cached, tenant, generation, budget, presenter, response)
    try:
        async with context.ai.budgets.store.claim(f"{tenant.name}/{name}"):
            found = await context.assets.get(tenant.name, name, fresh=True)
            if found is not None:
                return await _existing(context, found, tenant, generation, budget, presenter,
                                       response)
            usage, label = await context.ai.budgets.take(tenant.name, generation.type.value,
                                                         budget, now())
            response.headers.update(usage.headers(now()))
            if not usage.taken:
                renews = datetime.fromtimestamp(usage.renews_at, UTC)
                wait = str(max(1, usage.renews_at - int(now())))
                raise ApiError("ai.refused.budget",
                               f"the {generation.type.value} budget of {tenant.name} "
                               f"({usage.limit} per {budget.period_seconds} s) is used up; "
                               f"it renews at {renews.isoformat()}",
                               headers={**usage.headers(now()), "Retry-After": wait},
                               details=[{"renewsAt": renews.isoformat(),
                                         "limit": usage.limit}])
            asset = MediaAsset.new(
                tenant.name, asset_id, kind=kind, mime=mime, filename=filename,
                origin=SourceOrigin.AI, generation=generation,
                labels={names.LABEL_MANAGED_BY: names.MANAGED_BY},
                annotations={names.UPLOADED_BY_ANNOTATION: principal.user,
                             names.AI_BUDGET_WINDOW_ANNOTATION: label},
                finalizers=[names.FINALIZER])
            try:
                created = await context.assets.create(asset)
            except AlreadyExistsError:  # made meanwhile by a path that did not claim
                await context.ai.budgets.give_back(tenant.name, label, marker=None)
                found = await context.assets.get(tenant.name, name, fresh=True)
                if found is None:
                    raise ApiError("media.conflict", "the asset was deleted meanwhile; "
                                   "retry") from None
                return await _existing(context, found, tenant, generation, budget,
                                       presenter, response)
            except BaseException:
                await context.ai.budgets.give_back(tenant.name, label, marker=None)
                raise
    except TimeoutError as error:
        raise ApiError("unavailable", str(error), headers={"Retry-After": "2"}) from None
    return models.Envelope(data=presenter.asset(created))


async def _existing(context: Context, asset: MediaAsset, tenant: Tenant,
                    generation: GenerationSpec, budget: Budget, presenter: Presenter,
                    response: Response) -> models.Envelope[models.MediaAsset]:
    """A repeat: the asset as it is, 200, nothing taken."""
    if asset.deleting:
        raise ApiError("media.deleting", f"asset {asset.asset_id} is being deleted; retry "
                       "shortly")
    existing = asset.spec.generation
    if existing is None or existing.request_sha256 != generation.request_sha256:
        raise ApiError("media.conflict", f"asset {asset.asset_id} is not this generation")
    usage = await context.ai.budgets.peek(tenant.name, generation.type.value, budget, now())
    response.headers.update(usage.headers(now()))
    response.status_code = 200
    return models.Envelope(data=presenter.asset(asset))
