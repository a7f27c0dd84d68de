"""Pure, typed builders of the objects the operator creates.

Deterministic names (the API server's name uniqueness makes creation idempotent) and owner
references (the garbage collector removes children, not our code). The worker pod gets no
API token, no credentials, a read-only root filesystem and an empty scratch volume: its only
access to storage is the presigned URLs inside its task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mediaplane.core import commands, keys, names
from mediaplane.core.resources import (
    AssetRef,
    MediaAsset,
    ObjectMeta,
    ObjectRef,
    OwnerReference,
    TranscodeJob,
    TranscodeJobSpec,
)
from mediaplane.core.tasks import (
    LAUNCH_ENV,
    RESULT_PATH_ENV,
    SCRATCH_ENV,
    TASK_ENV,
    Expected,
    PresignedPost,
    SharedOutput,
    TaskType,
    VariantSpec,
    WorkerTask,
)
from mediaplane.operator.settings import OperatorSettings

# A batch/v1 Job as JSON: a built-in kind, so the API server's own schema checks it.
Manifest = dict[str, Any]

PROBE = TaskType.PROBE.value
SCRATCH_PATH = "/scratch"
TERMINATION_LOG = "/dev/termination-log"
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit
# Exit codes of mediaplane.worker.errors that no retry changes: an invalid task (2).
FINAL_EXIT_CODES: tuple[int, ...] = (2,)


def owner_reference(owner: MediaAsset | TranscodeJob, *,
                    controller: bool = True) -> OwnerReference:
    if owner.metadata.uid is None:
        raise ValueError(f"{owner.kind} {owner.metadata.name} has no uid (not read back yet)")
    return OwnerReference(api_version=owner.api_version, kind=owner.kind,
                          name=owner.metadata.name, uid=owner.metadata.uid,
                          controller=controller, block_owner_deletion=True)


def child_labels(asset_name: str, task: str) -> dict[str, str]:
    return {names.LABEL_MANAGED_BY: names.MANAGED_BY, names.LABEL_ASSET: asset_name,
            names.LABEL_TASK: task}


def transcode_job(asset: MediaAsset, variant: VariantSpec | None, *,
                  speculative: bool = False, also_encodes: list[VariantSpec] | None = None,
                  encoded_by: str | None = None, background: bool = False) -> TranscodeJob:
    """The TranscodeJob for the probe (variant None) or for one variant of `asset`;
    `speculative` marks a variant started before the probe accepted the source;
    `also_encodes` and `encoded_by` mark rungs sharing one decode (`shareddecode`);
    `background` a variant whose Job yields the CPU to a first wave (`worker_job`)."""
    task = TaskType.PROBE if variant is None else TaskType.producing(variant.type)
    spec = TranscodeJobSpec(asset_ref=AssetRef(name=asset.name), task=task,
                            input=ObjectRef(key=asset.spec.source.key),
                            also_encodes=also_encodes or None, encoded_by=encoded_by)
    if variant is not None:
        spec.output_prefix = keys.variant_prefix(asset.tenant, asset.asset_id, variant.name)
        spec.variant = variant
    labels = child_labels(asset.name, task.value)
    if speculative:
        labels[names.LABEL_SPECULATIVE] = "true"
    if background:
        labels[names.LABEL_PRIORITY] = names.PRIORITY_BACKGROUND
    return TranscodeJob(
        metadata=ObjectMeta(
            name=names.child_name(asset.name, PROBE if variant is None else variant.name),
            namespace=asset.tenant, labels=labels, owner_references=[owner_reference(asset)]),
        spec=spec)


def expected_from_asset(asset: MediaAsset) -> Expected:
    spec = asset.spec
    if spec.sha256 is None or spec.size_bytes is None:  # an AI asset not generated yet
        raise ValueError(f"{asset.name} has no declared sha256 and size to probe against")
    return Expected(sha256=spec.sha256, size_bytes=spec.size_bytes, mime=spec.mime,
                    kind=spec.kind)


def presign_seconds(settings: OperatorSettings, rounds: int = 1) -> int:
    """URLs must outlive every attempt the Job may make (in every round of an Indexed Job
    with more indexes than pods at once), plus slack for a slow start."""
    return min(job_deadline_seconds(settings) * rounds + 600, MAX_PRESIGN_SECONDS)


def index_rounds(completions: int, parallelism: int) -> int:
    """How many waves of pods an Indexed Job runs, one after the other."""
    return -(-completions // max(1, parallelism))


# The Job controller waits this long before a pod's first retry, doubling each time, at
# most RETRY_DELAY_CAP; a pod's start (scheduling, the image) is allowed POD_START_SECONDS.
RETRY_DELAY_SECONDS, RETRY_DELAY_CAP, POD_START_SECONDS = 10, 360, 30


def job_deadline_seconds(settings: OperatorSettings) -> int:
    """The whole Job's deadline: every attempt's own, the controller's back-off before
    each retry and each pod's start. Without the last two a worker that hangs until its
    deadline was never retried: the Job's deadline ran out first (the fault suite, on a
    busy machine)."""
    attempts = settings.job_backoff_limit + 1
    delays = sum(min(RETRY_DELAY_SECONDS << n, RETRY_DELAY_CAP)
                 for n in range(settings.job_backoff_limit))
    return (settings.job_deadline_seconds + POD_START_SECONDS) * attempts + delays


def cpu_request(tj: TranscodeJob, settings: OperatorSettings) -> str:
    """A background Job asks for little CPU: the weight a node gives it under contention
    follows its request, so another asset's first wave beside it keeps the cores
    (`OperatorSettings.playable_first`)."""
    if tj.metadata.labels.get(names.LABEL_PRIORITY) == names.PRIORITY_BACKGROUND:
        return settings.worker_background_cpu_request
    return settings.worker_cpu_request


def launch_env(task: WorkerTask, settings: OperatorSettings) -> list[dict[str, str]]:
    """The pod's first ffmpeg command, which the worker starts before loading itself
    (`worker.launch`); none for a task whose first step is not one known command."""
    first = commands.first_command(task) if settings.worker_launch else None
    return [{"name": LAUNCH_ENV, "value": first.to_json()}] if first else []


def worker_job(tj: TranscodeJob, task: WorkerTask, settings: OperatorSettings,
               co_owners: Sequence[TranscodeJob] = ()) -> Manifest:
    """The batch/v1 Job that runs `task`, owned by the TranscodeJob `tj` (its controller)
    and by `co_owners`, the TranscodeJobs of the rungs it encodes beside tj's own."""
    labels = {**tj.metadata.labels, names.LABEL_TRANSCODE_JOB: tj.name,
              names.LABEL_TRANSCODE_JOB_UID: owner_reference(tj).uid}
    container = {
        "name": "worker",
        "image": settings.worker_image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(settings.worker_command),
        "env": [
            {"name": TASK_ENV, "value": task.model_dump_json(exclude_none=True)},
            {"name": SCRATCH_ENV, "value": SCRATCH_PATH},
            {"name": RESULT_PATH_ENV, "value": TERMINATION_LOG},
            *launch_env(task, settings),
        ],
        "resources": {
            "requests": {"cpu": cpu_request(tj, settings),
                         "memory": settings.worker_memory_request},
            "limits": {"memory": settings.worker_memory_limit},
        },
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH_PATH},
                         {"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 (container path)
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "activeDeadlineSeconds": settings.job_deadline_seconds,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                            "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [
            {"name": "scratch", "emptyDir": {"sizeLimit": settings.worker_scratch_limit}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        ],
    }
    if settings.worker_service_account:
        pod_spec["serviceAccountName"] = settings.worker_service_account
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": tj.job_name,
            "namespace": tj.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(tj).to_body(), *(
                owner_reference(owner, controller=False).to_body() for owner in co_owners)],
        },
        "spec": {
            "backoffLimit": settings.job_backoff_limit,
            "activeDeadlineSeconds": job_deadline_seconds(settings),
            "ttlSecondsAfterFinished": settings.job_ttl_seconds,
            "completions": 1,
            "parallelism": 1,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def indexed(job: Manifest, completions: int, parallelism: int, settings: OperatorSettings,
            final_exit_codes: tuple[int, ...] = FINAL_EXIT_CODES) -> Manifest:
    """`job` as an Indexed Job: one pod per completion index (the index is in its
    JOB_COMPLETION_INDEX), at most `parallelism` at once, each index retried on its own
    (`backoffLimitPerIndex`), the whole Job failed as soon as one index is out of retries
    or exits with a code no retry changes; the deadline covers every round of pods."""
    spec = {key: value for key, value in job["spec"].items() if key != "backoffLimit"}
    spec.update({
        "completionMode": "Indexed",
        "completions": completions,
        "parallelism": min(parallelism, completions),
        "backoffLimitPerIndex": settings.job_backoff_limit,
        "maxFailedIndexes": 0,
        "activeDeadlineSeconds": job_deadline_seconds(settings)
        * index_rounds(completions, parallelism),
        "podFailurePolicy": {"rules": [{
            "action": "FailJob",
            "onExitCodes": {"containerName": "worker", "operator": "In",
                            "values": list(final_exit_codes)}}]},
    })
    return {**job, "spec": spec}


def variant_job(tj: TranscodeJob, task: WorkerTask, settings: OperatorSettings,
                co_owners: Sequence[TranscodeJob] = ()) -> Manifest:
    """The Job of a variant: one pod, or an Indexed Job of one pod per chunk for a rung
    split into chunks (segment-parallel encoding of a long video); a shared decode's Job
    is also owned by the TranscodeJobs of its other rungs (`co_owners`)."""
    job = worker_job(tj, task, settings, co_owners)
    variant = tj.spec.variant
    if variant is None or variant.chunks is None:
        return job
    return indexed(job, variant.chunks, variant.chunk_parallelism or variant.chunks, settings)


def variant_presign_seconds(tj: TranscodeJob, settings: OperatorSettings) -> int:
    variant = tj.spec.variant
    if variant is None or variant.chunks is None:
        return presign_seconds(settings)
    return presign_seconds(settings, index_rounds(
        variant.chunks, variant.chunk_parallelism or variant.chunks))


def worker_task(tj: TranscodeJob, asset: MediaAsset, input_url: str,
                output: PresignedPost | None,
                also: list[SharedOutput] | None = None, *,
                stream_segments: bool = False) -> WorkerTask:
    """The task of `tj`; `output` is the presigned POST for its prefix (None for the probe),
    `also` the rungs its ffmpeg encodes beside its own (`shareddecode`), or the audio the
    probe's pod copies once it accepts the source (`ladder.probe_audio`).
    `stream_segments` (the setting) holds for every task but a speculative one, which must
    store nothing before the probe's verdict; the probe's pod applies it from its verdict on."""
    stream = stream_segments and tj.metadata.labels.get(names.LABEL_SPECULATIVE) != "true"
    if tj.spec.task is TaskType.PROBE:
        return WorkerTask(type=TaskType.PROBE, input_url=input_url,
                          expected=expected_from_asset(asset), also=also or None,
                          stream_segments=stream)
    return WorkerTask(type=tj.spec.task, input_url=input_url, output=output,
                      variant=tj.spec.variant, also=also or None, stream_segments=stream)
