"""In-memory implementations of mediaplane's own store interfaces, for the middle test tier.

These stand in for our interfaces (`operator.kube.OperatorKube`, `core.objects.ObjectStore`,
`api.kube.AssetRepository`/`TenantRepository`), not for Kubernetes or S3: the cluster tests
still run everything against the real API server and SeaweedFS. What they model is what the
code relies on: name uniqueness on create, JSON merge patches of status, resourceVersion
preconditions, label-scoped lists, and failures injected on demand.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mediaplane.api.kube import AssetFilter, Page, Tenant, page_of
from mediaplane.core import names
from mediaplane.core.errors import (
    AlreadyExistsError,
    ConflictError,
    UnavailableError,
)
from mediaplane.core.objects import FormUpload, ObjectInfo
from mediaplane.core.resources import (
    MediaAsset,
    MediaAssetStatus,
    TranscodeJob,
    TranscodeJobStatus,
    WebhookEndpoint,
    WebhookEndpointStatus,
)
from mediaplane.core.states import EventType, PodPhase
from mediaplane.core.tasks import GeneratedObject, PresignedPost
from mediaplane.operator.builders import Manifest
from mediaplane.operator.kube import EventTarget
from mediaplane.operator.workloads import Job, Pod


class InjectedError(Exception):
    """What a test makes a call raise: an API server answering 500, a dropped connection."""


class SimulatedCrash(BaseException):
    """The operator process dies right after a write landed (BaseException: no handler's
    `except Exception` may swallow it, as none could catch a SIGKILL)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies `application/merge-patch+json`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class Failures:
    """Calls that fail on purpose: `plan["get_transcode_job"] = 2` fails the next two."""

    plan: Counter[str] = field(default_factory=Counter)

    def check(self, call: str) -> None:
        if self.plan[call] > 0:
            self.plan[call] -= 1
            raise InjectedError(f"injected failure of {call}")


class MemoryKube:
    """`OperatorKube` in memory, plus what a test needs to play the Job controller."""

    def __init__(self) -> None:
        self.assets: dict[tuple[str, str], dict[str, Any]] = {}
        self.transcode_jobs_: dict[tuple[str, str], dict[str, Any]] = {}
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.service_accounts: set[tuple[str, str]] = set()
        self.namespaces: dict[str, dict[str, str]] = {}  # namespace -> its annotations
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}  # values as plain text
        self.webhooks: dict[tuple[str, str], dict[str, Any]] = {}
        self.tenant_namespaces: set[str] = set()
        self.events: list[tuple[str, str, str, str]] = []  # (kind/name, type, reason, message)
        self.creations: Counter[str] = Counter()  # "Kind/namespace/name" -> times created
        self.deletions: list[str] = []
        self.failures = Failures()
        self.writes = 0  # writes that landed
        self.crash_after: int | None = None  # die right after this many writes
        # False: a deleted TranscodeJob's Job stays until `collect_garbage()`, as the real
        # garbage collector takes its time.
        self.instant_gc = True
        self._versions = itertools.count(1)
        self._uids = itertools.count(1)

    def _landed(self) -> None:
        self.writes += 1
        if self.crash_after is not None and self.writes >= self.crash_after:
            self.crash_after = None
            raise SimulatedCrash(f"operator killed after write {self.writes}")

    # --- what tests set up -----------------------------------------------------------------

    def _stamp(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        meta = body.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", f"2026-12-01T00:00:{next(self._uids) % 60:02d}Z")
        meta["resourceVersion"] = str(next(self._versions))
        self.creations[f"{kind}/{meta['namespace']}/{meta['name']}"] += 1
        return body

    def add_asset(self, asset: MediaAsset) -> MediaAsset:
        body = self._stamp(asset.to_body(), "MediaAsset")
        self.assets[(asset.tenant, asset.name)] = body
        return MediaAsset.model_validate(body)

    def asset(self, namespace: str, name: str) -> MediaAsset:
        return MediaAsset.model_validate(self.assets[(namespace, name)])

    def transcode_job(self, namespace: str, name: str) -> TranscodeJob:
        return TranscodeJob.model_validate(self.transcode_jobs_[(namespace, name)])

    def collect_garbage(self) -> list[Job]:
        """Removes the Jobs whose TranscodeJob is gone (by uid) and returns them."""
        alive = {body["metadata"]["uid"] for body in self.transcode_jobs_.values()}
        gone = [key for key, job in self.jobs.items()
                if not {ref["uid"] for ref in job["metadata"].get("ownerReferences", [])}
                & alive]
        return [Job.model_validate(self.jobs.pop(key)) for key in gone]

    def run_pod(self, namespace: str, job: str, phase: PodPhase, message: str = "",
                exit_code: int | None = None, annotations: dict[str, str] | None = None) -> Pod:
        """A pod of `job` that ran to `phase` (what the node agent would report)."""
        index = sum(1 for (ns, n) in self.pods if ns == namespace and n.startswith(job + "-"))
        labels = dict(self.jobs[(namespace, job)]["metadata"]["labels"])
        labels[names.BATCH_JOB_NAME_LABEL] = job
        terminated = None
        if phase.terminal:
            code = exit_code if exit_code is not None else (0 if phase is PodPhase.SUCCEEDED
                                                              else 1)
            terminated = {"exitCode": code, "message": message,
                          "startedAt": "2026-12-01T00:00:00Z",
                          "finishedAt": "2026-12-01T00:00:05Z"}
        name = f"{job}-{index}"
        pod: dict[str, Any] = {
               "apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": namespace, "labels": labels,
                            "annotations": dict(annotations or {}),
                            "creationTimestamp": f"2026-12-01T00:01:{index:02d}Z"},
               "status": {"phase": phase.value, "containerStatuses": [
                   {"name": "worker", "state": {"terminated": terminated} if terminated
                    else {"running": {}}}]}}
        self.pods[(namespace, name)] = pod
        return Pod.model_validate(pod)

    def set_job_status(self, namespace: str, job: str, status: dict[str, Any]) -> Job:
        body = self.jobs[(namespace, job)]
        body["status"] = status
        return Job.model_validate(body)

    def count(self, kind: str) -> int:
        return sum(1 for key in self.creations if key.startswith(kind + "/"))

    def duplicates(self) -> list[str]:
        return [key for key, times in self.creations.items() if times > 1]

    # --- OperatorKube ------------------------------------------------------------------------

    async def close(self) -> None:
        return None

    async def get_asset(self, namespace: str, name: str) -> MediaAsset | None:
        self.failures.check("get_asset")
        body = self.assets.get((namespace, name))
        return MediaAsset.model_validate(copy.deepcopy(body)) if body else None

    async def transcode_jobs(self, namespace: str, asset: str) -> dict[str, TranscodeJob]:
        self.failures.check("transcode_jobs")
        return {name: TranscodeJob.model_validate(copy.deepcopy(body))
                for (ns, name), body in self.transcode_jobs_.items()
                if ns == namespace and body["metadata"]["labels"].get(names.LABEL_ASSET) == asset}

    async def get_transcode_job(self, namespace: str, name: str) -> TranscodeJob | None:
        self.failures.check("get_transcode_job")
        body = self.transcode_jobs_.get((namespace, name))
        return TranscodeJob.model_validate(copy.deepcopy(body)) if body else None

    async def create_transcode_job(self, tj: TranscodeJob) -> TranscodeJob | None:
        self.failures.check("create_transcode_job")
        key = (tj.namespace, tj.name)
        if key in self.transcode_jobs_:
            return None
        self.transcode_jobs_[key] = self._stamp(tj.to_body(), "TranscodeJob")
        self._landed()
        return TranscodeJob.model_validate(copy.deepcopy(self.transcode_jobs_[key]))

    async def delete_transcode_job(self, namespace: str, name: str) -> None:
        self.transcode_jobs_.pop((namespace, name), None)
        if self.instant_gc:
            self.jobs.pop((namespace, name), None)
        self.deletions.append(f"TranscodeJob/{namespace}/{name}")
        self._landed()

    def _patch_status(self, store: dict[tuple[str, str], dict[str, Any]], namespace: str,
                      name: str, status: dict[str, Any]) -> None:
        body = store.get((namespace, name))
        if body is None:
            raise InjectedError(f"404: {namespace}/{name} not found")
        body["status"] = merge_patch(body.get("status") or {}, status)
        body["metadata"]["resourceVersion"] = str(next(self._versions))
        self._landed()

    async def patch_asset_status(self, namespace: str, name: str,
                                 status: MediaAssetStatus) -> None:
        self.failures.check("patch_asset_status")
        self._patch_status(self.assets, namespace, name, status.to_body())

    async def patch_transcode_job_status(self, namespace: str, name: str,
                                         status: TranscodeJobStatus) -> None:
        self.failures.check("patch_transcode_job_status")
        if (namespace, name) in self.transcode_jobs_:  # gone already is fine
            self._patch_status(self.transcode_jobs_, namespace, name, status.to_body())

    async def replace_transcode_job_status(self, namespace: str, name: str,
                                           status: TranscodeJobStatus) -> None:
        self.failures.check("replace_transcode_job_status")
        body = self.transcode_jobs_.get((namespace, name))
        if body is None:
            raise InjectedError(f"404: {namespace}/{name} not found")
        body["status"] = status.to_body()
        body["metadata"]["resourceVersion"] = str(next(self._versions))
        self._landed()

    async def get_job(self, namespace: str, name: str) -> Job | None:
        body = self.jobs.get((namespace, name))
        return Job.model_validate(copy.deepcopy(body)) if body else None

    async def create_job(self, job: Manifest) -> bool:
        self.failures.check("create_job")
        meta = job["metadata"]
        key = (meta["namespace"], meta["name"])
        if key in self.jobs:
            return False
        self.jobs[key] = self._stamp(copy.deepcopy(job), "Job")
        self._landed()
        return True

    async def delete_jobs(self, namespace: str, asset: str) -> None:
        for key in [k for k, job in self.jobs.items()
                    if k[0] == namespace and job["metadata"]["labels"].get(
                        names.LABEL_ASSET) == asset]:
            del self.jobs[key]

    async def live_pods(self, namespace: str, asset: str) -> list[str]:
        return [pod["metadata"]["name"] for (ns, _), pod in self.pods.items()
                if ns == namespace and pod["metadata"]["labels"].get(names.LABEL_ASSET) == asset
                and not PodPhase(pod["status"]["phase"]).terminal]

    async def job_pods(self, namespace: str, job: str) -> list[Pod]:
        pods = [Pod.model_validate(pod) for (ns, _), pod in self.pods.items()
                if ns == namespace
                and pod["metadata"]["labels"].get(names.BATCH_JOB_NAME_LABEL) == job]
        return sorted(pods, key=lambda p: p.metadata.creation_timestamp or "")

    async def ensure_service_account(self, namespace: str, name: str) -> bool:
        if (namespace, name) in self.service_accounts:
            return False
        self.service_accounts.add((namespace, name))
        self._landed()
        return True

    async def namespace_annotations(self, namespace: str) -> dict[str, str]:
        self.failures.check("namespace_annotations")
        return dict(self.namespaces.get(namespace, {}))

    async def record_generated(self, namespace: str, name: str,
                               generated: GeneratedObject) -> None:
        self.failures.check("record_generated")
        body = self.assets.get((namespace, name))
        if body is None:
            raise InjectedError(f"404: {namespace}/{name} not found")
        patch = {"spec": {"sha256": generated.sha256, "sizeBytes": generated.size_bytes,
                          "source": {"etag": generated.etag}}}
        self.assets[(namespace, name)] = merged = merge_patch(body, patch)
        merged["metadata"]["generation"] = body["metadata"].get("generation", 1) + 1
        merged["metadata"]["resourceVersion"] = str(next(self._versions))
        self._landed()

    async def mirror_secret(self, source_namespace: str, name: str,
                            target_namespace: str) -> bool:
        data = self.secrets.get((source_namespace, name))
        if data is None:
            return False
        if self.secrets.get((target_namespace, name)) != data:
            self.secrets[(target_namespace, name)] = dict(data)
            self._landed()
        return True
    def add_webhook_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        body = self._stamp(endpoint.to_body(), "WebhookEndpoint")
        self.webhooks[(endpoint.namespace, endpoint.name)] = body
        return WebhookEndpoint.model_validate(body)

    async def webhook_endpoints(self, namespace: str) -> list[WebhookEndpoint]:
        self.failures.check("webhook_endpoints")
        return [WebhookEndpoint.model_validate(copy.deepcopy(body))
                for (ns, _), body in sorted(self.webhooks.items()) if ns == namespace]

    async def get_webhook_endpoint(self, namespace: str,
                                   name: str) -> WebhookEndpoint | None:
        body = self.webhooks.get((namespace, name))
        return WebhookEndpoint.model_validate(copy.deepcopy(body)) if body else None

    async def patch_webhook_endpoint_status(self, namespace: str, name: str,
                                            status: WebhookEndpointStatus) -> None:
        self._patch_status(self.webhooks, namespace, name, status.to_body())

    async def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        return self.secrets.get((namespace, name), {}).get(key)

    async def tenants(self) -> list[str]:
        return sorted(self.tenant_namespaces)

    async def asset_names(self, namespace: str) -> set[str]:
        return {name for ns, name in self.assets if ns == namespace}

    def post_event(self, target: EventTarget, type_: EventType, reason: str,
                   message: str) -> None:
        name = target.to_body()["metadata"]["name"]
        self.events.append((f"{target.kind}/{name}", type_.value, reason, message))

    def reasons(self, name: str | None = None) -> list[str]:
        return [reason for who, _, reason, _ in self.events
                if name is None or who.endswith("/" + name)]


class MemoryObjects:
    """`ObjectStore` in memory; presigned URLs are opaque strings naming the key."""

    def __init__(self, bucket: str = "mediaplane") -> None:
        self.bucket = bucket
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        self.modified: dict[str, datetime] = {}
        self.calls: Counter[str] = Counter()
        self.cors: list[dict[str, Any]] | None = None
        self.cors_refused = False  # the credentials may not set the bucket's CORS
        self.down = False  # the storage server does not answer

    def presign_get(self, key: str, expires_seconds: int) -> str:
        return f"https://objects.test/{self.bucket}/{key}?expires={expires_seconds}&sig=x"

    def presign_post_prefix(self, prefix: str, expires_seconds: int,
                            max_bytes: int) -> PresignedPost:
        return PresignedPost(url=f"https://objects.test/{self.bucket}",
                             fields={"policy": f"{prefix}|{expires_seconds}|{max_bytes}"},
                             key_prefix=prefix)

    def presign_post_exact(self, key: str, size_bytes: int, content_type: str,
                           expires_seconds: int,
                           metadata: Mapping[str, str] | None = None) -> FormUpload:
        meta = {f"x-amz-meta-{k}": v for k, v in (metadata or {}).items()}
        return FormUpload(url=f"https://objects.test/{self.bucket}",
                          fields={"key": key, "Content-Type": content_type, **meta,
                                  "policy": f"{size_bytes}|{expires_seconds}"})

    def presign_post_object(self, key: str, content_type: str, max_bytes: int,
                            expires_seconds: int) -> PresignedPost:
        return PresignedPost(url=f"https://objects.test/{self.bucket}",
                             fields={"Content-Type": content_type,
                                     "policy": f"{key}|{max_bytes}|{expires_seconds}"},
                             key_prefix=key)
    def upload(self, form: FormUpload, data: bytes) -> str:
        """What a browser's form POST does with a grant: the object, with its metadata."""
        fields = form.fields
        meta = {k[len("x-amz-meta-"):]: v for k, v in fields.items()
                if k.startswith("x-amz-meta-")}
        self.put(fields["key"], data, fields["Content-Type"], meta)
        return f"etag-{len(data)}"

    def _check_up(self) -> None:
        if self.down:
            raise UnavailableError("object storage: connection refused (injected)")

    def head(self, key: str) -> ObjectInfo | None:
        self._check_up()
        self.calls["head"] += 1
        found = self.objects.get(key)
        if found is None:
            return None
        return ObjectInfo(size=len(found[0]), etag=f"etag-{len(found[0])}",
                          content_type=found[1], last_modified=self.modified.get(key),
                          metadata=dict(self.metadata.get(key, {})))

    def get_text(self, key: str) -> str:
        self._check_up()
        self.calls["get_text"] += 1
        return self.objects[key][0].decode()

    def put_text(self, key: str, text: str, content_type: str) -> None:
        self._check_up()
        self.calls["put_text"] += 1
        self.objects[key] = (text.encode(), content_type)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream",
            metadata: dict[str, str] | None = None) -> None:
        self.objects[key] = (data, content_type)
        self.metadata[key] = dict(metadata or {})
        self.modified[key] = datetime.now(UTC)

    def delete_prefix(self, prefix: str) -> int:
        doomed = [k for k in self.objects if k.startswith(prefix)]
        for key in doomed:
            del self.objects[key]
        return len(doomed)

    def configure_cors(self, rules: list[dict[str, Any]]) -> None:
        self.calls["configure_cors"] += 1
        if self.cors_refused:
            raise InjectedError("AccessDenied: s3:PutBucketCORS")
        self.cors = copy.deepcopy(rules)
    def ping(self) -> None:
        self._check_up()

    def list_folders(self, prefix: str) -> list[str]:
        return sorted({prefix + k[len(prefix):].split("/", 1)[0] + "/" for k in self.objects
                       if k.startswith(prefix) and "/" in k[len(prefix):]})

    def under(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))


class MemoryAssets:
    """`AssetRepository` in memory, with the API server's create/patch/list semantics."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self._versions = itertools.count(1)
        self.failures = Failures()
        self.down = False  # the API server does not answer
        self.stalled = False  # the API server accepts requests and never answers them
        self.reads = 0

    def _check(self, call: str) -> None:
        if self.down:
            raise UnavailableError("Kubernetes API: connection refused (injected)")
        self.failures.check(call)

    @property

    def synced(self) -> bool:
        return True

    async def close(self) -> None:
        return None

    def _copy(self, body: dict[str, Any]) -> MediaAsset:
        return MediaAsset.model_validate(copy.deepcopy(body))

    async def _stall(self) -> None:
        if self.stalled:
            await asyncio.sleep(3600)

    async def get(self, namespace: str, name: str, *, fresh: bool = False
                  ) -> MediaAsset | None:
        await self._stall()
        self._check("get")
        self.reads += 1
        body = self.items.get((namespace, name))
        return self._copy(body) if body else None

    def cached(self, namespace: str, name: str) -> MediaAsset | None:
        body = self.items.get((namespace, name))
        return self._copy(body) if body else None

    async def create(self, asset: MediaAsset) -> MediaAsset:
        await self._stall()
        self._check("create")
        key = (asset.tenant, asset.name)
        if key in self.items:
            raise AlreadyExistsError(asset.name)
        body = asset.to_body()
        body["metadata"].update(resourceVersion=str(next(self._versions)), uid=asset.name,
                                creationTimestamp="2026-12-01T00:00:00Z")
        self.items[key] = body
        return self._copy(body)

    async def patch(self, namespace: str, name: str, patch: dict[str, Any],
                    resource_version: str | None = None) -> MediaAsset | None:
        self._check("patch")
        body = self.items.get((namespace, name))
        if body is None:
            return None
        if resource_version is not None and resource_version != \
                body["metadata"]["resourceVersion"]:
            raise ConflictError("the asset changed meanwhile; retry")
        patched = merge_patch(body, patch)
        patched["metadata"]["resourceVersion"] = str(next(self._versions))
        self.items[(namespace, name)] = patched
        return self._copy(patched)

    def set_status(self, namespace: str, name: str, status: MediaAssetStatus) -> None:
        """What the operator would have written."""
        self.items[(namespace, name)]["status"] = status.to_body()
        self.items[(namespace, name)]["metadata"]["resourceVersion"] = str(next(self._versions))

    async def delete(self, namespace: str, name: str) -> bool:
        self._check("delete")
        return self.items.pop((namespace, name), None) is not None

    async def list(self, namespace: str, *, limit: int, after: str | None,
                   wanted: AssetFilter) -> Page:
        self._check("list")
        ordered = [self._copy(body) for (ns, name), body in sorted(self.items.items())
                   if ns == namespace and (after is None or name > after)]
        return page_of(ordered, wanted, limit)


class MemoryTenants:
    """`TenantRepository` in memory: the namespaces that are tenants, and their limits."""

    def __init__(self, tenants: dict[str, int] | None = None) -> None:
        self.tenants = dict(tenants or {})
        self.annotations: dict[str, dict[str, str]] = {}
        self.events: list[tuple[str, str, str]] = []  # (namespace, reason, message)
        self.down = False

    async def get(self, name: str) -> Tenant | None:
        limit = self.tenants.get(name)
        if limit is None:
            return None
        annotations = self.annotations.get(name, {})
        terms = annotations.get(names.AI_BLOCKED_TERMS_ANNOTATION, "")
        return Tenant(name=name, max_upload_bytes=limit,
                      ai_image_budget=annotations.get(names.AI_IMAGE_BUDGET_ANNOTATION),
                      ai_speech_budget=annotations.get(names.AI_SPEECH_BUDGET_ANNOTATION),
                      ai_blocked_terms=tuple(t for t in terms.split(",") if t))

    async def post_event(self, namespace: str, reason: str, message: str) -> None:
        self.events.append((namespace, reason, message))

    async def ping(self) -> None:
        if self.down:
            raise UnavailableError("Kubernetes API: connection refused (injected)")
