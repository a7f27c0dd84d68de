"""AI assets: the generation TranscodeJob that makes the source object, then the hand-over.

An AI asset starts with a `spec.generation` and no sha256 or size. One TranscodeJob of task
`generate` (`mda-…-generate`) runs a worker that calls the image service or Piper and posts
the object through a policy for exactly the asset's source key. When it succeeds, the
digest, size and ETag it reports are written into the asset's spec, as an uploader's
declaration would be; that spec change wakes the ordinary reconcile, which checks the
object, probes it (re-hashing it against that digest) and plans the variants.

Only generation Jobs get the image service's key: a `secretKeyRef` to a copy of the
Secret named in the catalogue, which the operator keeps in the tenant's namespace.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from mediaplane.core import names
from mediaplane.core.ai import AiCatalog
from mediaplane.core.resources import (
    AssetRef,
    ConditionWriter,
    GenerationStatus,
    MediaAsset,
    MediaAssetStatus,
    ObjectMeta,
    ObjectRef,
    TranscodeJob,
    TranscodeJobSpec,
    TranscodeJobStatus,
    now_rfc3339,
    set_condition,
)
from mediaplane.core.states import (
    AssetCondition,
    AssetPhase,
    ConditionStatus,
    EventType,
    JobCondition,
    TranscodePhase,
    VariantState,
)
from mediaplane.core.tasks import (
    EXIT_PROVIDER_REFUSED,
    PROVIDER_KEY_ENV,
    VOICES_DIR_ENV,
    GeneratedObject,
    GenerationKind,
    GenerationTask,
    ImageJob,
    ImageProvider,
    PresignedPost,
    SpeechJob,
    TaskType,
    WorkerTask,
)
from mediaplane.operator import builders
from mediaplane.operator.context import Context
from mediaplane.operator.settings import OperatorSettings

GENERATE = TaskType.GENERATE.value
VOICES_PATH = "/voices"
_LAST_ERROR = re.compile(r"last error: ([A-Z][A-Za-z]+): (.*)$", re.DOTALL)
MAX_MESSAGE = 1024


class UnavailableError(Exception):
    """The catalogue cannot make this asset any more (its voice or image service went)."""


# --- pure builders -------------------------------------------------------------------------

def transcode_job(asset: MediaAsset) -> TranscodeJob:
    """The asset's generation TranscodeJob; its input key is the object it creates."""
    spec = TranscodeJobSpec(asset_ref=AssetRef(name=asset.name), task=TaskType.GENERATE,
                            input=ObjectRef(key=asset.spec.source.key))
    return TranscodeJob(
        metadata=ObjectMeta(name=names.child_name(asset.name, GENERATE), namespace=asset.tenant,
                            labels=builders.child_labels(asset.name, GENERATE),
                            owner_references=[builders.owner_reference(asset)]),
        spec=spec)


def generation_task(asset: MediaAsset, catalog: AiCatalog,
                    target: PresignedPost) -> GenerationTask:
    generation = asset.spec.generation
    if generation is None:
        raise UnavailableError(f"{asset.name} is not an AI asset")
    image = speech = None
    if generation.type is GenerationKind.IMAGE:
        service, params = catalog.image, generation.image
        if service is None or params is None:
            raise UnavailableError("no image service is configured")
        style = catalog.style(params.style) if params.style else None
        image = ImageJob(width=params.width, height=params.height,
                         style_prompt=style.prompt if style else None,
                         provider=ImageProvider(
                             kind=service.kind, url=service.url, model=generation.model,
                             timeout_seconds=service.timeout_seconds,
                             attempts=service.attempts, sizes=tuple(service.sizes),
                             steps=service.steps, negative_prompt=service.negative_prompt))
    else:
        params_s = generation.speech
        voice = catalog.voice(params_s.voice) if params_s is not None else None
        if params_s is None or voice is None:
            raise UnavailableError(f"voice {params_s.voice if params_s else '?'!r} is not in "
                                   "the catalogue")
        speech = SpeechJob(voice=voice.id, language=params_s.language, format=params_s.format,
                           package=voice.package, model_path=voice.file)
    return GenerationTask(kind=generation.type, prompt=generation.prompt, target=target,
                          mime=asset.spec.mime, image=image, speech=speech)


def worker_job(tj: TranscodeJob, task: WorkerTask, settings: OperatorSettings,
               catalog: AiCatalog) -> builders.Manifest:
    """The batch Job of a generation: the ordinary worker Job, plus the service's key (image)
    or the voices volume (a voice from a file), its own bounds, and no retry after a
    permanent refusal by the service."""
    job = builders.worker_job(tj, task, settings)
    spec: dict[str, Any] = job["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    generation = task.generation
    if generation is not None and generation.image is not None and catalog.image is not None \
            and catalog.image.secret is not None:
        secret = catalog.image.secret
        container["env"].append({"name": PROVIDER_KEY_ENV, "valueFrom": {"secretKeyRef": {
            "name": secret.name, "key": secret.key}}})
    if generation is not None and generation.speech is not None and \
            generation.speech.model_path and settings.ai_voices_volume:
        pod["volumes"].append({"name": "voices", **settings.ai_voices_volume})
        container["volumeMounts"].append({"name": "voices", "mountPath": VOICES_PATH,
                                          "readOnly": True})
        container["env"].append({"name": VOICES_DIR_ENV, "value": VOICES_PATH})
    pod["activeDeadlineSeconds"] = settings.ai_job_deadline_seconds
    spec["backoffLimit"] = settings.ai_job_backoff_limit
    spec["activeDeadlineSeconds"] = settings.ai_job_deadline_seconds * (
        settings.ai_job_backoff_limit + 1)
    spec["podFailurePolicy"] = {"rules": [{"action": "FailJob", "onExitCodes": {
        "containerName": "worker", "operator": "In", "values": [EXIT_PROVIDER_REFUSED]}}]}
    return job


def failure(tj: TranscodeJob) -> tuple[str, str]:
    """(reason, message) of a failed generation: the worker's own code and words (the
    service's reason) when its last attempt left them, else the Job's."""
    message = tj.status.message or "the generation job failed"
    match = _LAST_ERROR.search(message)
    if match:
        return match.group(1), match.group(2).strip()[:MAX_MESSAGE]
    return "GenerationFailed", message[:MAX_MESSAGE]


def compute(asset: MediaAsset, tj: TranscodeJob | None,
            now: str) -> tuple[MediaAssetStatus, list[tuple[EventType, str, str]]]:
    """The status of an asset still being generated, and the events its change deserves."""
    old = asset.status
    generation = asset.metadata.generation
    conditions = ConditionWriter(old.conditions, generation, now)
    cond = conditions.set

    state = VariantState.of(tj.status.phase if tj is not None else None)
    gen = GenerationStatus(state=state, transcode_job=tj.name if tj is not None else None)
    phase = AssetPhase.GENERATING
    events: list[tuple[EventType, str, str]] = []
    previous = old.generation.state if old.generation is not None else None
    if tj is not None and state is VariantState.FAILED:
        gen.reason, gen.message = failure(tj)
        gen.completion_time = tj.status.completion_time or now
        phase = AssetPhase.FAILED
        cond(AssetCondition.GENERATED, ConditionStatus.FALSE, gen.reason, gen.message)
        cond(AssetCondition.READY, ConditionStatus.FALSE, "GenerationFailed", gen.message)
        if previous is not VariantState.FAILED:
            events.append((EventType.WARNING, "GenerationFailed", f"{gen.reason}: {gen.message}"))
    elif tj is not None and state is VariantState.SUCCEEDED:
        generated = tj.status.result.generated if tj.status.result is not None else None
        gen.provider_seconds = generated.provider_seconds if generated else None
        gen.completion_time = tj.status.completion_time or now
        cond(AssetCondition.GENERATED, ConditionStatus.TRUE, "Generated",
             f"{generated.size_bytes if generated else '?'} bytes stored")
        cond(AssetCondition.READY, ConditionStatus.FALSE, "Generated", "checking the object")
        if previous is not VariantState.SUCCEEDED:
            events.append((EventType.NORMAL, "Generated", "the source object is stored"))
    else:
        cond(AssetCondition.GENERATED, ConditionStatus.UNKNOWN, "Generating",
             "the generation job is running" if state is VariantState.RUNNING
             else "the generation job is starting")
        cond(AssetCondition.READY, ConditionStatus.FALSE, "Generating",
             "the source object is being generated")
    status = MediaAssetStatus(observed_generation=generation, phase=phase, playable=False,
                              conditions=conditions.items, generation=gen)
    return status, events


# --- I/O ----------------------------------------------------------------------------------

async def reconcile(ctx: Context, asset: MediaAsset) -> None:
    """Brings an asset that is still being generated forward (called with its lock held)."""
    namespace, name = asset.tenant, asset.name
    tjs = await ctx.kube.transcode_jobs(namespace, name)
    tj = tjs.get(names.child_name(name, GENERATE))
    if tj is None:
        tj = transcode_job(asset)
        if await ctx.kube.create_transcode_job(tj):
            ctx.kube.post_event(asset, EventType.NORMAL, "Generating",
                                f"generating the {asset.spec.kind} with "
                                f"{asset.spec.generation.model if asset.spec.generation else '?'}")
    generated = _generated(tj)
    status, events = compute(asset, tj, now_rfc3339())
    if status != asset.status:
        await ctx.kube.patch_asset_status(namespace, name, status)
    for type_, reason, message in events:
        ctx.kube.post_event(asset, type_, reason, message)
    if generated is not None:
        # The declaration, now known: the spec change wakes the ordinary reconcile.
        await ctx.kube.record_generated(namespace, name, generated)


def _generated(tj: TranscodeJob | None) -> GeneratedObject | None:
    if tj is None or tj.status.phase is not TranscodePhase.SUCCEEDED or tj.status.result is None:
        return None
    return tj.status.result.generated


async def job(ctx: Context, tj: TranscodeJob, asset: MediaAsset) -> builders.Manifest | None:
    """The batch Job for a generation TranscodeJob; None (and the TranscodeJob failed) when
    the catalogue can no longer make the asset."""
    catalog = await asyncio.to_thread(ctx.catalog.get)
    seconds = builders.presign_seconds(ctx.settings)
    target = ctx.storage.presign_post_object(asset.spec.source.key, asset.spec.mime,
                                             ctx.settings.max_generated_bytes, seconds)
    try:
        task = generation_task(asset, catalog, target)
        secret = catalog.image.secret if catalog.image is not None else None
        if task.image is not None and secret is not None and not await ctx.kube.mirror_secret(
                ctx.settings.ai_secret_namespace, secret.name, tj.namespace):
            raise UnavailableError(f"the image service's Secret {secret.name!r} is not in "
                                   f"namespace {ctx.settings.ai_secret_namespace!r}")
    except UnavailableError as error:
        await _fail(ctx, tj, str(error))
        return None
    worker_task = WorkerTask(type=TaskType.GENERATE, generation=task)
    return worker_job(tj, worker_task, ctx.settings, catalog)


async def _fail(ctx: Context, tj: TranscodeJob, message: str) -> None:
    generation = tj.metadata.generation
    conditions = set_condition(tj.status.conditions, JobCondition.SUCCEEDED,
                               ConditionStatus.FALSE, "GenerationUnavailable", message,
                               generation, now_rfc3339())
    await ctx.kube.patch_transcode_job_status(tj.namespace, tj.name, TranscodeJobStatus(
        phase=TranscodePhase.FAILED, message=f"last error: GenerationUnavailable: {message}",
        conditions=conditions, observed_generation=generation, completion_time=now_rfc3339()))
    ctx.kube.post_event(tj, EventType.WARNING, "GenerationUnavailable", message)
