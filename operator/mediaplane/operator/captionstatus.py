"""Generated captions in the MediaAsset status, as pure functions of what was asked for and
what the caption TranscodeJobs say.

What is wanted: every `spec.captionRequests` entry, plus the auto-captions language once
the asset is playable (the asset's own `spec.autoCaptions`, else the tenant's namespace
annotation, else the install's default; decided once, in `status.autoCaptions`). Each
wanted (language, model) is one caption TranscodeJob; `status.captionJobs` mirrors their
state, finished ones become `status.captions` and `status.transcripts`, and the three
conditions `CaptionsGenerating`, `CaptionsReady` and `CaptionsFailed` sum them up.

Review: a track made with `reviewRequired` stays `approved: false` (out of the HLS and DASH
manifests) until `spec.captionReview[<language>]` says `approved`; `rejected` keeps it out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mediaplane.core import keys
from mediaplane.core.resources import (
    CaptionJobStatus,
    ConditionWriter,
    GeneratedCaption,
    MediaAsset,
    MediaAssetStatus,
    TranscodeJob,
    TranscriptTrack,
)
from mediaplane.core.speech import LanguageError, normalise_tag, whisper_language
from mediaplane.core.states import (
    AssetCondition,
    CaptionReview,
    ConditionStatus,
    EventType,
    VariantState,
)
from mediaplane.core.tasks import MediaKind
from mediaplane.operator.assetstatus import Event
from mediaplane.operator.captionjobs import caption_job_name

OFF = "off"
TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE
MAX_MESSAGE = 1024


@dataclass(frozen=True)
class Wanted:
    """One track to make: a normalised BCP 47 tag, its Whisper code and the model."""

    language: str
    whisper_language: str | None  # None: a language the model does not know
    model: str
    review_required: bool
    auto: bool = False
    problem: str | None = None


@dataclass(frozen=True)
class AutoSetting:
    """Auto-captions as configured for one asset: a language, or None for off."""

    language: str | None
    review_required: bool


def can_caption(asset: MediaAsset) -> tuple[bool, str]:
    """(ready to caption, why not): playable, a video or audio, with an audio stream."""
    if asset.spec.kind is MediaKind.IMAGE:
        return False, "an image has no speech"
    probe = asset.status.probe
    if probe is not None and not probe.has_audio:
        return False, "the asset has no audio stream"
    if not asset.playable or probe is None:
        return False, "waiting for the asset to be playable"
    return True, ""


def auto_setting(asset: MediaAsset, annotations: Mapping[str, str], install_language: str,
                 install_review: bool, language_annotation: str,
                 review_annotation: str) -> AutoSetting:
    """The asset's own setting over the tenant's annotation over the install's default."""
    default_language = None if install_language.lower() in (OFF, "", "false") \
        else install_language
    own = asset.spec.auto_captions
    tenant_value = annotations.get(language_annotation)
    tenant_review = annotations.get(review_annotation)
    review = install_review if tenant_review is None else tenant_review.lower() == "true"
    language = default_language
    if tenant_value is not None:
        value = tenant_value.strip()
        language = None if value.lower() in (OFF, "false", "") else \
            (default_language or "en") if value.lower() == "true" else value
    if own is not None:
        if own.review_required is not None:
            review = own.review_required
        if own.enabled is False:
            language = None
        elif own.language:
            language = own.language
        elif own.enabled:
            language = language or default_language or "en"
    return AutoSetting(language, review)


def _wanted(language: str, model: str, review: bool, auto: bool) -> Wanted:
    code: str | None
    problem: str | None
    try:
        tag = normalise_tag(language)
        code = whisper_language(tag)
        problem = None
    except LanguageError as error:
        tag, code, problem = language, None, str(error)
    return Wanted(tag, code, model, review, auto, problem)


def wanted_tracks(asset: MediaAsset, default_model: str,
                  decided: AutoSetting | None = None) -> list[Wanted]:
    """Requests first (one per language), then the auto-captions language if no request
    names it: `decided` when this reconcile decides it, else what `status` recorded."""
    tracks: dict[str, Wanted] = {}
    for tag, request in asset.spec.caption_requests.items():
        wanted = _wanted(tag, request.model or default_model,
                         bool(request.review_required), auto=False)
        tracks.setdefault(wanted.language, wanted)
    auto: str | None
    if decided is not None:
        auto, review = decided.language, decided.review_required
    else:
        recorded = asset.status.auto_captions
        auto = recorded if recorded and recorded != OFF else None
        review = any(j.auto and j.review_required for j in asset.status.caption_jobs)
    if auto:
        wanted = _wanted(auto, default_model, review, auto=True)
        tracks.setdefault(wanted.language, wanted)
    return list(tracks.values())


def _approved(asset: MediaAsset, language: str, review_required: bool) -> bool:
    verdict = asset.spec.caption_review.get(language)
    if verdict is CaptionReview.REJECTED:
        return False
    return verdict is CaptionReview.APPROVED or not review_required


def apply(asset: MediaAsset, wanted: Sequence[Wanted], tjs: Mapping[str, TranscodeJob],
          status: MediaAssetStatus, now: str, not_ready: str | None = None) -> list[Event]:
    """Fills the caption parts of `status` (jobs, tracks, transcripts, conditions) and
    answers the events their changes deserve; `not_ready` says why no caption job can start
    yet (`can_caption`), None when they can."""
    old = asset.status
    ready, reason = not_ready is None, not_ready or ""
    jobs: list[CaptionJobStatus] = []
    tracks = {t.language: t for t in old.captions}
    transcripts = {t.language: t for t in old.transcripts}
    for want in wanted:
        tj = tjs.get(caption_job_name(asset, want.language, want.model))
        job = CaptionJobStatus(language=want.language, model=want.model,
                               state=VariantState.of(tj.status.phase if tj else None),
                               transcode_job=tj.name if tj else None, auto=want.auto or None,
                               review_required=want.review_required)
        if want.problem is not None:
            job.state, job.message = VariantState.FAILED, want.problem
        elif tj is None:
            job.message = reason if not ready else "the caption job is being created"
            if not ready and reason != "waiting for the asset to be playable":
                job.state = VariantState.FAILED
        else:
            caption = tj.spec.caption
            speech = tj.status.speech
            job.chunks = caption.chunks if caption else None
            job.chunks_done = speech.chunks_done if speech else None
            if job.state is VariantState.FAILED:
                job.message = (tj.status.message or "the caption job failed")[:MAX_MESSAGE]
            if job.state is VariantState.SUCCEEDED:
                tracks[want.language] = GeneratedCaption(
                    language=want.language,
                    key=keys.generated_caption_key(asset.tenant, asset.asset_id, want.language),
                    transcode_job=tj.name, model=want.model,
                    detected_language=speech.detected_language if speech else None,
                    translated=speech.translated if speech else None)
                transcripts[want.language] = TranscriptTrack(
                    language=want.language, model=want.model,
                    key=keys.transcript_key(asset.tenant, asset.asset_id, want.language, "txt"),
                    segments_key=keys.transcript_key(asset.tenant, asset.asset_id,
                                                     want.language, "json"))
        jobs.append(job)
    reviews = {j.language: bool(j.review_required) for j in [*old.caption_jobs, *jobs]}
    for language, track in tracks.items():
        track.approved = _approved(asset, language, reviews.get(language, False))
    status.caption_jobs = jobs
    status.captions = list(tracks.values())
    status.transcripts = list(transcripts.values())
    if jobs or any(c.type.startswith("Captions") for c in old.conditions):
        _conditions(status, jobs, asset.metadata.generation, now)
    return _events(old, status)


def _conditions(status: MediaAssetStatus, jobs: Sequence[CaptionJobStatus],
                generation: int | None, now: str) -> None:
    conditions = ConditionWriter(status.conditions, generation, now, MAX_MESSAGE)
    cond = conditions.set

    def languages(predicate: Callable[[CaptionJobStatus], bool]) -> str:
        return ", ".join(j.language for j in jobs if predicate(j))

    busy = languages(lambda j: not j.state.terminal)
    failed = [j for j in jobs if j.state is VariantState.FAILED]
    done = languages(lambda j: j.state is VariantState.SUCCEEDED)
    if busy:
        cond(AssetCondition.CAPTIONS_GENERATING, TRUE, "Generating", f"generating: {busy}")
    else:
        cond(AssetCondition.CAPTIONS_GENERATING, FALSE, "Idle", "no caption job is running")
    if failed:
        cond(AssetCondition.CAPTIONS_FAILED, TRUE, "CaptionsFailed",
             "; ".join(f"{j.language}: {j.message or 'failed'}" for j in failed))
    else:
        cond(AssetCondition.CAPTIONS_FAILED, FALSE, "NoFailures", "no caption job failed")
    if jobs and all(j.state is VariantState.SUCCEEDED for j in jobs):
        cond(AssetCondition.CAPTIONS_READY, TRUE, "CaptionsReady", f"ready: {done}")
    elif failed:
        cond(AssetCondition.CAPTIONS_READY, FALSE, "CaptionsFailed",
             f"failed: {', '.join(j.language for j in failed)}")
    elif jobs:
        cond(AssetCondition.CAPTIONS_READY, FALSE, "Generating",
             f"ready: {done or 'none yet'}; generating: {busy}")
    else:
        cond(AssetCondition.CAPTIONS_READY, FALSE, "NotRequested", "no captions requested")
    status.conditions = conditions.items


def _events(old: MediaAssetStatus, new: MediaAssetStatus) -> list[Event]:
    events: list[Event] = []
    before = {(j.language, j.model): j.state for j in old.caption_jobs}
    for job in new.caption_jobs:
        previous = before.get((job.language, job.model))
        if previous is job.state:
            continue
        if job.state is VariantState.SUCCEEDED:
            events.append(Event(EventType.NORMAL, "CaptionsReady",
                                f"{job.language} captions and transcript are ready "
                                f"({job.model})"))
        elif job.state is VariantState.FAILED:
            events.append(Event(EventType.WARNING, "CaptionsFailed",
                                f"{job.language}: {job.message or 'failed'}"))
    approved_before = {t.language: t.approved for t in old.captions}
    for track in new.captions:
        was = approved_before.get(track.language)
        if was is not None and was != track.approved:
            events.append(Event(EventType.NORMAL,
                                "CaptionApproved" if track.approved else "CaptionWithdrawn",
                                f"{track.language}: "
                                + ("in the manifests now" if track.approved
                                   else "out of the manifests")))
    return events
