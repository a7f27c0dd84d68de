"""Caption jobs: speech to text for an asset, driven level by level like everything else.

Two entry points, called from small hooks in reconcile.py:

- `reconcile` (with the asset's reconcile): decides auto-captions once the asset is
  playable, creates the caption TranscodeJob of each wanted (language, model) that has
  none, and writes the caption parts of the asset's status (captionstatus.py);
- `advance` (on the caption TranscodeJob's create, its Jobs' and pods' events, and the
  resync timer): plan → transcribe → merge. The plan Job (`<tj>-plan`) cuts the track at
  silences into the number of chunks the spec says (no plan Job for one chunk); the
  Indexed Job (`<tj>`) transcribes one chunk per pod, each pod uploading its chunk's
  transcript under the job's `speech/` prefix; once every chunk is in, the operator merges
  them into one WebVTT track, a plain-text transcript and a JSON one with absolute
  timings, and the TranscodeJob succeeds. Workers never get credentials: a presigned GET of
  the source and a presigned POST for the job's prefix.

Every step reads what exists and creates only what is missing (deterministic names), so an
operator restarted anywhere resumes without duplicates; a lock per TranscodeJob keeps the
several events of one step from merging twice at once.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Mapping

import webvtt
from pydantic import TypeAdapter, ValidationError

from mediaplane.core import keys, names
from mediaplane.core.resources import (
    MediaAsset,
    MediaAssetStatus,
    SpeechProgress,
    TranscodeJob,
    TranscodeJobStatus,
    now_rfc3339,
    set_condition,
)
from mediaplane.core.speech import ChunkTranscript, Transcript, chunk_file, merge
from mediaplane.core.states import (
    ConditionStatus,
    EventType,
    JobCondition,
    PodPhase,
    TranscodePhase,
)
from mediaplane.core.tasks import SpeechPlanOutcome, WorkerResult
from mediaplane.operator import captionjobs, captionstatus
from mediaplane.operator.assetstatus import Event
from mediaplane.operator.context import Context
from mediaplane.operator.workloads import BatchCondition, Job, Pod

log = logging.getLogger(__name__)
RESULT: TypeAdapter[WorkerResult] = TypeAdapter(WorkerResult)
ANNOTATIONS_TTL = 30.0
MAX_MESSAGE = 1024
# A chunk's transcript is a few kB a minute of speech. The workers' POST policy refuses
# anything bigger than this, and the merge reads nothing bigger either.
MAX_CHUNK_TRANSCRIPT = 8 * 1024 * 1024


# --- the asset ---------------------------------------------------------------------------------

async def namespace_annotations(ctx: Context, namespace: str) -> Mapping[str, str]:
    """The tenant's annotations, read at most every ANNOTATIONS_TTL seconds."""
    cached = ctx.annotations.get(namespace)
    now = time.monotonic()
    if cached is not None and now - cached[0] < ANNOTATIONS_TTL:
        return cached[1]
    annotations = await ctx.kube.namespace_annotations(namespace)
    ctx.annotations[namespace] = (now, annotations)
    return annotations


async def reconcile(ctx: Context, asset: MediaAsset, tjs: Mapping[str, TranscodeJob],
                    status: MediaAssetStatus, now: str) -> list[Event]:
    """The caption half of an asset's reconcile: `status` is the new status so far."""
    current = asset.model_copy(update={"status": status})
    ready, why = captionstatus.can_caption(current)
    decided = None
    if status.auto_captions is None and ready and asset.spec.kind.value in ("video", "audio"):
        annotations = await namespace_annotations(ctx, asset.tenant)
        decided = captionstatus.auto_setting(
            asset, annotations, ctx.settings.auto_captions, ctx.settings.auto_captions_review,
            names.AUTO_CAPTIONS_ANNOTATION, names.AUTO_CAPTIONS_REVIEW_ANNOTATION)
        status.auto_captions = decided.language or captionstatus.OFF
        current = asset.model_copy(update={"status": status})
    wanted = captionstatus.wanted_tracks(current, ctx.settings.speech_model, decided)
    if not wanted and not asset.status.caption_jobs:
        return []
    events: list[Event] = []
    found = dict(tjs)
    if ready:
        for want in wanted:
            name = captionjobs.caption_job_name(asset, want.language, want.model)
            if want.whisper_language is None or name in found:
                continue
            tj = captionjobs.caption_transcode_job(current, want.language, want.whisper_language,
                                                   want.model, ctx.settings)
            if await ctx.kube.create_transcode_job(tj):
                chunks = tj.spec.caption.chunks if tj.spec.caption else 1
                events.append(Event(EventType.NORMAL, "CaptionsGenerating",
                                    f"{want.language}: {chunks} chunk(s) with {want.model}"
                                    + (" (auto-captions)" if want.auto else "")))
            found[name] = tj
    events += captionstatus.apply(asset, wanted, found, status, now,
                                  None if ready else why)
    return events


# --- the caption TranscodeJob ------------------------------------------------------------------

async def advance(ctx: Context, tj: TranscodeJob) -> None:
    """One step forward for a caption TranscodeJob, whatever woke us up."""
    async with ctx.lock(tj.namespace, tj.name):
        fresh = await ctx.kube.get_transcode_job(tj.namespace, tj.name)
        if fresh is None or fresh.status.terminal or fresh.spec.caption is None:
            return
        asset = await ctx.kube.get_asset(fresh.namespace, fresh.spec.asset_ref.name)
        if asset is None or asset.deleting:
            return
        speech = fresh.status.speech
        cuts = speech.cuts if speech is not None and speech.planned else await _plan(ctx, fresh)
        if cuts is not None:
            await _transcribe(ctx, fresh, cuts)


def _status(tj: TranscodeJob, phase: TranscodePhase, condition: ConditionStatus, reason: str,
            message: str, **fields: object) -> TranscodeJobStatus:
    generation = tj.metadata.generation
    conditions = set_condition(tj.status.conditions, JobCondition.SUCCEEDED, condition, reason,
                               message[:MAX_MESSAGE], generation, now_rfc3339())
    return TranscodeJobStatus(phase=phase, message=message[:MAX_MESSAGE], conditions=conditions,
                              observed_generation=generation, **fields)  # type: ignore[arg-type]


async def _fail(ctx: Context, tj: TranscodeJob, reason: str, message: str) -> None:
    await ctx.kube.patch_transcode_job_status(tj.namespace, tj.name, _status(
        tj, TranscodePhase.FAILED, ConditionStatus.FALSE, reason, message,
        completion_time=now_rfc3339()))
    ctx.kube.post_event(tj, EventType.WARNING, "JobFailed", message)


async def _create_job(ctx: Context, tj: TranscodeJob, step: str,
                      cuts: list[float] | None = None) -> bool:
    assert tj.spec.output_prefix is not None
    assert tj.spec.caption is not None
    seconds = captionjobs.presign_seconds(tj, ctx.settings)
    input_url = ctx.storage.presign_get(tj.spec.input.key, seconds)
    output = None
    if step == captionjobs.TRANSCRIBE:
        output = ctx.storage.presign_post_prefix(tj.spec.output_prefix, seconds,
                                                 MAX_CHUNK_TRANSCRIPT)
    task = captionjobs.speech_task(tj, ctx.settings, step, input_url, output, cuts)
    if ctx.settings.worker_service_account:
        await ctx.kube.ensure_service_account(tj.namespace, ctx.settings.worker_service_account)
    chunks = len(cuts or []) + 1
    return await ctx.kube.create_job(captionjobs.speech_job(tj, task, ctx.settings, step, chunks))


def _succeeded_message(pods: list[Pod]) -> str | None:
    for pod in pods:
        terminated = pod.terminated
        if pod.succeeded and terminated is not None and terminated.message:
            return terminated.message
    return None


def _last_error(pods: list[Pod]) -> str:
    messages = [p.terminated.message for p in pods
                if p.status.phase is PodPhase.FAILED and p.terminated and p.terminated.message]
    return messages[-1][-600:] if messages else ""


def _failure(job: Job, pods: list[Pod]) -> str | None:
    failed = job.condition(BatchCondition.FAILED)
    if failed is None:
        return None
    last = _last_error(pods)
    return f"{failed.message or failed.reason or 'the Job failed'}" + \
        (f"; last error: {last}" if last else "")


async def _plan(ctx: Context, tj: TranscodeJob) -> list[float] | None:
    """The cut points once they are known (at once for a single chunk), else None."""
    caption = tj.spec.caption
    assert caption is not None
    if caption.chunks <= 1:
        await ctx.kube.patch_transcode_job_status(tj.namespace, tj.name, _status(
            tj, TranscodePhase.RUNNING, ConditionStatus.UNKNOWN, "Planned", "one chunk",
            speech=SpeechProgress(planned=True, chunks_done=0)))
        return []
    name = captionjobs.plan_job_name(tj.name)
    job = await ctx.kube.get_job(tj.namespace, name)
    if job is None:
        if await _create_job(ctx, tj, captionjobs.PLAN):
            await ctx.kube.patch_transcode_job_status(tj.namespace, tj.name, _status(
                tj, TranscodePhase.PENDING, ConditionStatus.UNKNOWN, "Planning",
                f"cutting the track into {caption.chunks} chunks at silences", job_name=name))
        return None
    pods = await ctx.kube.job_pods(tj.namespace, name)
    message = _succeeded_message(pods)
    if message is not None:  # one pod, completions 1: a Succeeded pod is final
        try:
            plan = RESULT.validate_json(message)
        except ValidationError as error:
            await _fail(ctx, tj, "InvalidResult", f"unreadable plan: {error.errors()[:1]}")
            return None
        if not isinstance(plan, SpeechPlanOutcome):
            await _fail(ctx, tj, "InvalidResult", f"the plan Job answered a {plan.kind}")
            return None
        cuts = sorted(c for c in plan.cuts if 0 < c < caption.duration_seconds)
        if len(cuts) >= caption.chunks:  # a worker answers for its input: hold it to the plan
            await _fail(ctx, tj, "InvalidResult", f"{len(cuts) + 1} chunks planned, "
                        f"at most {caption.chunks} asked for")
            return None
        await ctx.kube.patch_transcode_job_status(tj.namespace, tj.name, _status(
            tj, TranscodePhase.RUNNING, ConditionStatus.UNKNOWN, "Planned",
            f"{len(cuts) + 1} chunks, cut at silences ({plan.silences} found)",
            speech=SpeechProgress(planned=True, cuts=cuts, chunks_done=0)))
        return cuts
    failure = _failure(job, pods)
    if failure is not None:
        await _fail(ctx, tj, "PlanFailed", failure)
    return None


async def _transcribe(ctx: Context, tj: TranscodeJob, cuts: list[float]) -> None:
    chunks = len(cuts) + 1
    job = await ctx.kube.get_job(tj.namespace, tj.name)
    if job is None:
        if await _create_job(ctx, tj, captionjobs.TRANSCRIBE, cuts):
            await ctx.kube.patch_transcode_job_status(tj.namespace, tj.name, _status(
                tj, TranscodePhase.RUNNING, ConditionStatus.UNKNOWN, "Transcribing",
                f"transcribing {chunks} chunk(s)", job_name=tj.name))
        return
    pods = await ctx.kube.job_pods(tj.namespace, tj.name)
    done = {i for p in pods if p.succeeded and (i := p.completion_index) is not None}
    if len(done) >= chunks or job.condition(BatchCondition.COMPLETE) is not None:
        await _merge(ctx, tj, cuts, job.status.failed or 0)
        return
    failure = _failure(job, pods)
    if failure is not None:
        await _fail(ctx, tj, "TranscriptionFailed", failure)
        return
    attempts = job.status.failed or 0
    speech = tj.status.speech
    if (tj.status.attempts or 0, speech.chunks_done if speech else 0) != (attempts, len(done)):
        await ctx.kube.patch_transcode_job_status(tj.namespace, tj.name, _status(
            tj, TranscodePhase.RUNNING, ConditionStatus.UNKNOWN, "Transcribing",
            f"{len(done)}/{chunks} chunks done", attempts=attempts,
            speech=SpeechProgress(planned=True, chunks_done=len(done))))


def webvtt_text(transcript: Transcript) -> str:
    """The track as WebVTT (webvtt-py writes it; cue text is escaped first)."""
    captions = [webvtt.Caption(start=_timestamp(c.start), end=_timestamp(c.end),
                               text=_escape(c.text)) for c in transcript.cues]
    buffer = io.StringIO()
    webvtt.WebVTT(captions=captions).write(buffer)
    return buffer.getvalue()


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def _merge(ctx: Context, tj: TranscodeJob, cuts: list[float], attempts: int) -> None:
    caption, prefix = tj.spec.caption, tj.spec.output_prefix
    assert caption is not None
    assert prefix is not None
    chunks = len(cuts) + 1
    names_ = [prefix + chunk_file(i) for i in range(chunks)]
    found = await asyncio.gather(*(asyncio.to_thread(ctx.storage.head, k) for k in names_))
    unfit = [k.rsplit("/", 1)[-1] for k, info in zip(names_, found, strict=True)
             if info is None or info.size > MAX_CHUNK_TRANSCRIPT]
    if unfit:
        await _fail(ctx, tj, "InvalidResult", f"chunk transcripts missing or too large: "
                    f"{', '.join(unfit[:5])}")
        return
    texts = await asyncio.gather(*(asyncio.to_thread(ctx.storage.get_text, k) for k in names_))
    try:
        parts = [ChunkTranscript.model_validate_json(text) for text in texts]
    except ValidationError as error:
        await _fail(ctx, tj, "InvalidResult", f"unreadable chunk transcript: "
                    f"{error.errors()[:1]}")
        return
    transcript = merge(parts, language=caption.language, model=caption.model,
                       duration=caption.duration_seconds)
    asset_id = names.asset_id_from_name(tj.spec.asset_ref.name)
    language = caption.language
    await asyncio.gather(
        asyncio.to_thread(ctx.storage.put_text,
                          keys.generated_caption_key(tj.namespace, asset_id, language),
                          webvtt_text(transcript), "text/vtt; charset=utf-8"),
        asyncio.to_thread(ctx.storage.put_text,
                          keys.transcript_key(tj.namespace, asset_id, language, "txt"),
                          transcript.text, "text/plain; charset=utf-8"),
        asyncio.to_thread(ctx.storage.put_text,
                          keys.transcript_key(tj.namespace, asset_id, language, "json"),
                          transcript.model_dump_json(), "application/json"))
    message = (f"{len(transcript.cues)} cues, {transcript.words} words from {chunks} chunk(s)"
               + (f", translated from {transcript.detected_language}"
                  if transcript.translated else ""))
    await ctx.kube.patch_transcode_job_status(tj.namespace, tj.name, _status(
        tj, TranscodePhase.SUCCEEDED, ConditionStatus.TRUE, "Completed", message,
        attempts=attempts, completion_time=now_rfc3339(),
        speech=SpeechProgress(planned=True, chunks_done=chunks,
                              detected_language=transcript.detected_language,
                              translated=transcript.translated, cues=len(transcript.cues),
                              words=transcript.words)))
    log.info("%s/%s: %s", tj.namespace, tj.name, message)
