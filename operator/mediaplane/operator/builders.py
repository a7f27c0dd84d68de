"""Pure, typed builders of the objects the operator creates.

Deterministic names (the API server's name uniqueness makes creation idempotent) and owner
references (the garbage collector removes children, not our code). The worker pod gets no
API token, no credentials, a read-only root filesystem and an empty scratch volume: its only
access to storage is the presigned URLs inside its task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaplane.core import keys, names
from mediaplane.core.tasks import (
    RESULT_PATH_ENV,
    SCRATCH_ENV,
    TASK_ENV,
    Expected,
    MediaKind,
    TaskType,
    VariantSpec,
    WorkerTask,
)
from mediaplane.operator.settings import OperatorSettings

PROBE = "probe"
SCRATCH_PATH = "/scratch"
TERMINATION_LOG = "/dev/termination-log"
BATCH_JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_labels(asset_name: str, task: str) -> dict[str, str]:
    return {names.LABEL_MANAGED_BY: names.MANAGED_BY, names.LABEL_ASSET: asset_name,
            names.LABEL_TASK: task}


def asset_tenant_and_id(asset: Mapping[str, Any]) -> tuple[str, str]:
    meta = asset["metadata"]
    return meta["namespace"], names.asset_id_from_name(meta["name"])


def transcode_job(asset: Mapping[str, Any], variant: VariantSpec | None) -> dict[str, Any]:
    """The TranscodeJob for the probe (variant None) or for one variant of `asset`."""
    tenant, asset_id = asset_tenant_and_id(asset)
    asset_name = asset["metadata"]["name"]
    task = PROBE if variant is None else variant.type.value
    spec: dict[str, Any] = {
        "assetRef": {"name": asset_name},
        "task": task,
        "input": {"key": asset["spec"]["source"]["key"]},
    }
    if variant is not None:
        spec["outputPrefix"] = keys.variant_prefix(tenant, asset_id, variant.name)
        spec["variant"] = variant.model_dump(mode="json", exclude_none=True)
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.JOB_KIND,
        "metadata": {
            "name": names.child_name(asset_name, PROBE if variant is None else variant.name),
            "namespace": tenant,
            "labels": child_labels(asset_name, task),
            "ownerReferences": [owner_reference(asset)],
        },
        "spec": spec,
    }


def expected_from_asset(asset: Mapping[str, Any]) -> Expected:
    spec = asset["spec"]
    return Expected(sha256=spec["sha256"], size_bytes=spec["sizeBytes"], mime=spec["mime"],
                    kind=MediaKind(spec["kind"]))


def presign_seconds(settings: OperatorSettings) -> int:
    """URLs must outlive every attempt the Job may make, plus slack for a slow start."""
    return job_deadline_seconds(settings) + 600


def job_deadline_seconds(settings: OperatorSettings) -> int:
    return settings.job_deadline_seconds * (settings.job_backoff_limit + 1)


def worker_job(tj: Mapping[str, Any], task: WorkerTask,
               settings: OperatorSettings) -> dict[str, Any]:
    """The batch/v1 Job that runs `task`, owned by the TranscodeJob `tj`."""
    meta = tj["metadata"]
    labels = {**meta.get("labels", {}), names.LABEL_TRANSCODE_JOB: meta["name"]}
    container = {
        "name": "worker",
        "image": settings.worker_image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(settings.worker_command),
        "env": [
            {"name": TASK_ENV, "value": task.model_dump_json(exclude_none=True)},
            {"name": SCRATCH_ENV, "value": SCRATCH_PATH},
            {"name": RESULT_PATH_ENV, "value": TERMINATION_LOG},
        ],
        "resources": {
            "requests": {"cpu": settings.worker_cpu_request,
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
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(tj)],
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


def worker_task(tj: Mapping[str, Any], asset: Mapping[str, Any], input_url: str,
                output: Any | None) -> WorkerTask:
    """The task of `tj`; `output` is the presigned POST for its prefix (None for the probe)."""
    spec = tj["spec"]
    if spec["task"] == PROBE:
        return WorkerTask(type=TaskType.PROBE, input_url=input_url,
                          expected=expected_from_asset(asset))
    return WorkerTask(type=TaskType(spec["task"]), input_url=input_url, output=output,
                      variant=VariantSpec.model_validate(spec["variant"]))
