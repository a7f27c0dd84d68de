"""Every call the operator makes to the Kubernetes API, behind one interface.

`OperatorKube` is what the reconciles need; `Kube` implements it on kubernetes_asyncio (and
kopf's event poster), and the fast tests implement it in memory. Create-if-missing is the
idempotence primitive: children have deterministic names, so AlreadyExists means an earlier
life of the operator (or a concurrent event) made it. A missing object is None; any other
error propagates, for the handler to retry with back-off.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from mediaplane.core import names
from mediaplane.core.resources import (
    MediaAsset,
    MediaAssetStatus,
    TranscodeJob,
    TranscodeJobStatus,
    WebhookEndpoint,
    WebhookEndpointStatus,
)
from mediaplane.core.states import EventType, PodPhase
from mediaplane.core.tasks import GeneratedObject
from mediaplane.operator.builders import Manifest
from mediaplane.operator.workloads import Job, Pod

MAX_EVENT_MESSAGE = 1024
log = logging.getLogger(__name__)


class EventTarget(Protocol):
    """Anything an Event can be about: it has an apiVersion, a kind and metadata."""

    @property

    def api_version(self) -> str: ...

    @property

    def kind(self) -> str: ...

    def to_body(self) -> dict[str, Any]: ...


class OperatorKube(Protocol):
    async def close(self) -> None: ...

    async def get_asset(self, namespace: str, name: str) -> MediaAsset | None: ...

    async def transcode_jobs(self, namespace: str, asset: str) -> dict[str, TranscodeJob]:
        """The asset's TranscodeJobs by name."""
        ...

    async def get_transcode_job(self, namespace: str, name: str) -> TranscodeJob | None: ...

    async def create_transcode_job(self, tj: TranscodeJob) -> bool:
        """Creates it unless it exists; True when this call created it."""
        ...

    async def delete_transcode_job(self, namespace: str, name: str) -> None:
        """Deletes it (its Job and pods go with it); gone already is fine."""
        ...

    async def patch_asset_status(self, namespace: str, name: str,
                                 status: MediaAssetStatus) -> None: ...

    async def patch_transcode_job_status(self, namespace: str, name: str,
                                         status: TranscodeJobStatus) -> None:
        """Merge-patches its status; gone already is fine (a speculative rung discarded
        while its Job's or pod's outcome was being recorded: nobody needs that outcome)."""
        ...

    async def replace_transcode_job_status(self, namespace: str, name: str,
                                           status: TranscodeJobStatus) -> None:
        """Sets the whole status: fields `status` leaves out are removed (a retry starts
        over without the failed run's result and times)."""
        ...

    async def get_job(self, namespace: str, name: str) -> Job | None: ...

    async def create_job(self, job: Manifest) -> bool:
        """Creates the batch Job unless it exists; True when this call created it."""
        ...

    async def delete_jobs(self, namespace: str, asset: str) -> None:
        """Deletes every Job of the asset (their pods go with them)."""
        ...

    async def live_pods(self, namespace: str, asset: str) -> list[str]:
        """Names of the asset's worker pods that have not ended."""
        ...

    async def job_pods(self, namespace: str, job: str) -> list[Pod]:
        """The Job's pods, oldest first."""
        ...

    async def ensure_service_account(self, namespace: str, name: str) -> bool: ...

    async def namespace_annotations(self, namespace: str) -> dict[str, str]:
        """The namespace's annotations (a tenant's settings); {} when it is gone."""
        ...

    async def record_generated(self, namespace: str, name: str,
                               generated: GeneratedObject) -> None:
        """Writes what a generation stored into the AI asset's spec (sha256, sizeBytes,
        source.etag): from then on it is checked and probed like an upload."""
        ...

    async def mirror_secret(self, source_namespace: str, name: str,
                            target_namespace: str) -> bool:
        """Copies the Secret into `target_namespace` (same name), creating or updating it;
        False when the source Secret does not exist."""
        ...

    async def tenants(self) -> list[str]:
        """The namespaces labelled as tenants."""
        ...

    async def asset_names(self, namespace: str) -> set[str]:
        """Names of every MediaAsset of the namespace."""
        ...

    async def webhook_endpoints(self, namespace: str) -> list[WebhookEndpoint]:
        """The namespace's WebhookEndpoints."""
        ...

    async def get_webhook_endpoint(self, namespace: str,
                                   name: str) -> WebhookEndpoint | None: ...

    async def patch_webhook_endpoint_status(self, namespace: str, name: str,
                                            status: WebhookEndpointStatus) -> None: ...

    async def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """One value of a Secret (decoded), or None when the Secret or the key is missing."""
        ...

    def post_event(self, target: EventTarget, type_: EventType, reason: str,
                   message: str) -> None:
        """A Kubernetes Event about `target`, posted in the background."""
        ...


def _missing(error: ApiException) -> bool:
    return error.status == 404


def _exists(error: ApiException) -> bool:
    return error.status == 409


class Kube:
    """`OperatorKube` on the API server."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self._custom = client.CustomObjectsApi(api)
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)
        self._background: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        await self.api.close()

    async def get_asset(self, namespace: str, name: str) -> MediaAsset | None:
        try:
            body = await self._custom.get_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.ASSET_PLURAL, name)
        except ApiException as error:
            if _missing(error):
                return None
            raise
        return MediaAsset.model_validate(body)

    async def transcode_jobs(self, namespace: str, asset: str) -> dict[str, TranscodeJob]:
        listing = await self._custom.list_namespaced_custom_object(
            names.GROUP, names.VERSION, namespace, names.JOB_PLURAL,
            label_selector=f"{names.LABEL_ASSET}={asset}")
        jobs = [TranscodeJob.model_validate(item) for item in listing["items"]]
        return {tj.name: tj for tj in jobs}

    async def get_transcode_job(self, namespace: str, name: str) -> TranscodeJob | None:
        try:
            body = await self._custom.get_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.JOB_PLURAL, name)
        except ApiException as error:
            if _missing(error):
                return None
            raise
        return TranscodeJob.model_validate(body)

    async def create_transcode_job(self, tj: TranscodeJob) -> bool:
        try:
            await self._custom.create_namespaced_custom_object(
                names.GROUP, names.VERSION, tj.namespace, names.JOB_PLURAL, tj.to_body())
        except ApiException as error:
            if _exists(error):
                return False
            raise
        return True

    async def delete_transcode_job(self, namespace: str, name: str) -> None:
        try:
            await self._custom.delete_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.JOB_PLURAL, name,
                propagation_policy="Background")
        except ApiException as error:
            if not _missing(error):
                raise

    async def _patch_status(self, plural: str, namespace: str, name: str,
                            status: dict[str, Any]) -> None:
        """Merge-patches the status subresource; lists (conditions) are replaced whole."""
        # The generated stubs omit _content_type; without it a dict body is not a merge patch.
        await cast("Any", self._custom).patch_namespaced_custom_object_status(
            names.GROUP, names.VERSION, namespace, plural, name, {"status": status},
            _content_type="application/merge-patch+json")

    async def patch_asset_status(self, namespace: str, name: str,
                                 status: MediaAssetStatus) -> None:
        await self._patch_status(names.ASSET_PLURAL, namespace, name, status.to_body())

    async def patch_transcode_job_status(self, namespace: str, name: str,
                                         status: TranscodeJobStatus) -> None:
        try:
            await self._patch_status(names.JOB_PLURAL, namespace, name, status.to_body())
        except ApiException as error:
            if not _missing(error):
                raise

    async def replace_transcode_job_status(self, namespace: str, name: str,
                                           status: TranscodeJobStatus) -> None:
        cleared: dict[str, Any] = {field.alias or key: None
                                   for key, field in TranscodeJobStatus.model_fields.items()}
        await self._patch_status(names.JOB_PLURAL, namespace, name,
                                 {**cleared, **status.to_body()})

    async def get_job(self, namespace: str, name: str) -> Job | None:
        try:
            job = await self._batch.read_namespaced_job(name, namespace)
        except ApiException as error:
            if _missing(error):
                return None
            raise
        return Job.model_validate(self.api.sanitize_for_serialization(job))

    async def create_job(self, job: Manifest) -> bool:
        try:
            await self._batch.create_namespaced_job(job["metadata"]["namespace"],
                                                    cast("Any", job))
        except ApiException as error:
            if _exists(error):
                return False
            raise
        return True

    async def delete_jobs(self, namespace: str, asset: str) -> None:
        await self._batch.delete_collection_namespaced_job(
            namespace, label_selector=f"{names.LABEL_ASSET}={asset}",
            propagation_policy="Background")

    async def live_pods(self, namespace: str, asset: str) -> list[str]:
        pods = await self._core.list_namespaced_pod(
            namespace, label_selector=f"{names.LABEL_ASSET}={asset}")
        return [p.metadata.name for p in pods.items
                if not PodPhase(p.status.phase or "Unknown").terminal]

    async def job_pods(self, namespace: str, job: str) -> list[Pod]:
        listing = await self._core.list_namespaced_pod(
            namespace, label_selector=f"{names.BATCH_JOB_NAME_LABEL}={job}")
        pods = [Pod.model_validate(self.api.sanitize_for_serialization(p))
                for p in listing.items]
        return sorted(pods, key=lambda p: p.metadata.creation_timestamp or "")

    async def ensure_service_account(self, namespace: str, name: str) -> bool:
        """Creates the workers' ServiceAccount (no token, no bindings) unless it exists."""
        body = {"metadata": {"name": name, "namespace": namespace,
                             "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY,
                                        "app.kubernetes.io/component": "worker"}},
                "automountServiceAccountToken": False}
        try:
            await self._core.create_namespaced_service_account(namespace, cast("Any", body))
        except ApiException as error:
            if _exists(error):
                return False
            raise
        return True

    async def namespace_annotations(self, namespace: str) -> dict[str, str]:
        try:
            found = await self._core.read_namespace(namespace)
        except ApiException as error:
            if _missing(error):
                return {}
            raise
        return dict(found.metadata.annotations or {})

    async def record_generated(self, namespace: str, name: str,
                               generated: GeneratedObject) -> None:
        patch = {"spec": {"sha256": generated.sha256, "sizeBytes": generated.size_bytes,
                          "source": {"etag": generated.etag}}}
        await cast("Any", self._custom).patch_namespaced_custom_object(
            names.GROUP, names.VERSION, namespace, names.ASSET_PLURAL, name, patch,
            _content_type="application/merge-patch+json")

    async def mirror_secret(self, source_namespace: str, name: str,
                            target_namespace: str) -> bool:
        try:
            source = await self._core.read_namespaced_secret(name, source_namespace)
        except ApiException as error:
            if _missing(error):
                return False
            raise
        data = dict(source.data or {})
        body = {"metadata": {"name": name, "namespace": target_namespace,
                             "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY,
                                        "app.kubernetes.io/component": "ai-provider"}},
                "type": "Opaque", "data": data}
        try:
            current = await self._core.read_namespaced_secret(name, target_namespace)
        except ApiException as error:
            if not _missing(error):
                raise
            current = None
        if current is None:
            try:
                await self._core.create_namespaced_secret(target_namespace, cast("Any", body))
            except ApiException as error:
                if not _exists(error):
                    raise
            return True
        if dict(current.data or {}) != data:
            await self._core.replace_namespaced_secret(name, target_namespace,
                                                       cast("Any", body))
        return True

    async def tenants(self) -> list[str]:
        listing = await self._core.list_namespace(label_selector=f"{names.TENANT_LABEL}=true")
        return [ns.metadata.name for ns in listing.items]

    async def asset_names(self, namespace: str) -> set[str]:
        found: set[str] = set()
        token = ""
        while True:
            page = await self._custom.list_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.ASSET_PLURAL, limit=500,
                _continue=token)
            found.update(item["metadata"]["name"] for item in page["items"])
            token = page["metadata"].get("continue") or ""
            if not token:
                return found

    async def webhook_endpoints(self, namespace: str) -> list[WebhookEndpoint]:
        listing = await self._custom.list_namespaced_custom_object(
            names.GROUP, names.VERSION, namespace, names.WEBHOOK_PLURAL)
        return [WebhookEndpoint.model_validate(item) for item in listing["items"]]

    async def get_webhook_endpoint(self, namespace: str,
                                   name: str) -> WebhookEndpoint | None:
        try:
            body = await self._custom.get_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.WEBHOOK_PLURAL, name)
        except ApiException as error:
            if _missing(error):
                return None
            raise
        return WebhookEndpoint.model_validate(body)

    async def patch_webhook_endpoint_status(self, namespace: str, name: str,
                                            status: WebhookEndpointStatus) -> None:
        await self._patch_status(names.WEBHOOK_PLURAL, namespace, name, status.to_body())

    async def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        try:
            secret = await self._core.read_namespaced_secret(name, namespace)
        except ApiException as error:
            # 403: a name the installation does not let the operator read (the chart's
            # webhooks.signingSecretNames): for the endpoint, as good as missing.
            if _missing(error) or error.status == 403:
                return None
            raise
        encoded = (secret.data or {}).get(key)
        return base64.b64decode(encoded).decode() if encoded else None

    def post_event(self, target: EventTarget, type_: EventType, reason: str,
                   message: str) -> None:
        # Created by us rather than kopf's event queue: its poster logs a traceback for an
        # Event that cannot be created (a namespace being deleted), which is routine here.
        task = asyncio.get_running_loop().create_task(self._create_event(
            target.to_body(), type_, reason, message[:MAX_EVENT_MESSAGE]))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _create_event(self, body: dict[str, Any], type_: EventType, reason: str,
                            message: str) -> None:
        meta = body["metadata"]
        now = datetime.now(UTC).isoformat()
        event = {"metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                 "involvedObject": {"apiVersion": body["apiVersion"], "kind": body["kind"],
                                    "name": meta["name"], "namespace": meta["namespace"],
                                    "uid": meta.get("uid")},
                 "type": type_.value, "reason": reason, "message": message, "count": 1,
                 "firstTimestamp": now, "lastTimestamp": now,
                 "source": {"component": "mediaplane-operator"}}
        try:
            await self._core.create_namespaced_event(meta["namespace"], cast("Any", event))
        except ApiException as error:
            # 403 for a namespace being deleted, 404 for one gone: the object goes with it.
            level = logging.DEBUG if error.status in (403, 404) else logging.WARNING
            log.log(level, "could not post event %s about %s: %s %s", reason, meta["name"],
                    error.status, error.reason)
