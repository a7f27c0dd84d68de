"""Pure builders of a caption track's objects: its TranscodeJob, the plan Job and the
Indexed Job whose pods transcribe one chunk each.

A caption TranscodeJob (task `caption`) is named from its language and model, so a repeated
or concurrent request for the same (asset, language, model) finds the same object and
starts nothing new. Its Jobs are worker Jobs (`builders.worker_job`: no API token, no
credentials, read-only root, scratch volume) with what speech needs on top: the model
directory mounted read-only, its path in the environment, and for the transcription an
Indexed Job (`completionMode: Indexed`), retried per chunk (`backoffLimitPerIndex`), failed
at once on a verdict no retry can change (podFailurePolicy on the worker's exit codes).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from mediaplane.core import keys, names
from mediaplane.core.resources import (
    AssetRef,
    CaptionSpec,
    MediaAsset,
    ObjectMeta,
    ObjectRef,
    TranscodeJob,
    TranscodeJobSpec,
)
from mediaplane.core.speech import chunk_count
from mediaplane.core.tasks import (
    SPEECH_MODEL_ENV,
    PresignedPost,
    SpeechTask,
    TaskType,
    WorkerTask,
)
from mediaplane.operator import builders
from mediaplane.operator.builders import Manifest
from mediaplane.operator.settings import OperatorSettings

PLAN = "plan"
TRANSCRIBE = "transcribe"
MODEL_VOLUME = "speech-model"
# Exit codes of mediaplane.worker.errors that no retry changes: an invalid task or a missing
# model (2), speech in a language the track cannot be made in (6).
FINAL_EXIT_CODES = (2, 6)


def caption_task_name(language: str, model: str) -> str:
    """`cc-<language>-<hash of language and model>`: short enough for a Job's pods."""
    slug = "".join(c if c.isalnum() else "-" for c in language.lower())[:12].strip("-")
    digest = hashlib.sha256(f"{language}|{model}".encode()).hexdigest()[:6]
    return f"cc-{slug}-{digest}"


def caption_job_name(asset: MediaAsset | str, language: str, model: str) -> str:
    asset_name = asset if isinstance(asset, str) else asset.name
    return names.child_name(asset_name, caption_task_name(language, model))


def plan_job_name(tj_name: str) -> str:
    return f"{tj_name}-{PLAN}"


def caption_transcode_job(asset: MediaAsset, language: str, whisper_language: str,
                          model: str, settings: OperatorSettings) -> TranscodeJob:
    duration = (asset.status.probe.duration_seconds if asset.status.probe else None) or 0.0
    chunks = chunk_count(duration, settings.caption_parallelism,
                         settings.caption_min_chunk_seconds, settings.caption_max_chunk_seconds)
    name = caption_job_name(asset, language, model)
    spec = TranscodeJobSpec(
        asset_ref=AssetRef(name=asset.name), task=TaskType.CAPTION,
        input=ObjectRef(key=asset.spec.source.key),
        output_prefix=keys.speech_prefix(asset.tenant, asset.asset_id, name),
        caption=CaptionSpec(language=language, whisper_language=whisper_language, model=model,
                            duration_seconds=round(duration, 3), chunks=chunks,
                            parallelism=min(settings.caption_parallelism, chunks)))
    return TranscodeJob(
        metadata=ObjectMeta(name=name, namespace=asset.tenant,
                            labels=builders.child_labels(asset.name, TaskType.CAPTION.value),
                            owner_references=[builders.owner_reference(asset)]),
        spec=spec)


def _caption(tj: TranscodeJob) -> CaptionSpec:
    if tj.spec.caption is None:
        raise ValueError(f"TranscodeJob {tj.name} is not a caption job")
    return tj.spec.caption


def rounds(tj: TranscodeJob) -> int:
    caption = _caption(tj)
    return builders.index_rounds(caption.chunks, caption.parallelism)


def presign_seconds(tj: TranscodeJob, settings: OperatorSettings) -> int:
    """URLs live through every round of chunks and their retries, and the plan Job's."""
    return builders.presign_seconds(settings, rounds(tj) + 1)


def speech_task(tj: TranscodeJob, settings: OperatorSettings, step: str, input_url: str,
                output: PresignedPost | None = None,
                cuts: list[float] | None = None) -> WorkerTask:
    caption = _caption(tj)
    speech = SpeechTask(language=caption.language, whisper_language=caption.whisper_language,
                        duration_seconds=caption.duration_seconds, chunks=caption.chunks,
                        cuts=list(cuts or []), beam_size=settings.caption_beam_size,
                        cpu_threads=settings.caption_cpu_threads)
    kind = TaskType.SPEECH_PLAN if step == PLAN else TaskType.SPEECH_CHUNK
    return WorkerTask(type=kind, input_url=input_url, output=output, speech=speech)


def speech_job(tj: TranscodeJob, task: WorkerTask, settings: OperatorSettings,
               step: str, chunks: int = 1) -> Manifest:
    """The plan Job (`<tj>-plan`, one pod) or the transcription Job (`<tj>`, Indexed)."""
    job: dict[str, Any] = copy.deepcopy(builders.worker_job(tj, task, settings))
    meta, spec = job["metadata"], job["spec"]
    labels = {**meta["labels"], names.LABEL_STEP: step}
    meta["labels"] = labels
    spec["template"]["metadata"]["labels"] = labels
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    container["env"].append({"name": SPEECH_MODEL_ENV, "value": settings.speech_model_dir})
    container["env"].append({"name": "HF_HUB_OFFLINE", "value": "1"})
    container["resources"]["requests"]["cpu"] = str(settings.caption_cpu_threads)
    if step == PLAN:
        meta["name"] = plan_job_name(tj.name)
        container["resources"]["requests"]["cpu"] = "500m"  # ffmpeg's silencedetect
        return job
    container["resources"]["requests"]["memory"] = settings.caption_memory_request
    if settings.speech_model_volume is not None:
        pod["volumes"].append({"name": MODEL_VOLUME, **settings.speech_model_volume})
        container["volumeMounts"].append({"name": MODEL_VOLUME,
                                          "mountPath": settings.speech_model_dir,
                                          "readOnly": True})
    caption = _caption(tj)
    return builders.indexed(job, chunks, caption.parallelism, settings, FINAL_EXIT_CODES)
