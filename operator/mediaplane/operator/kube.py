"""Every call the operator makes to the Kubernetes API, behind one interface.

`OperatorKube` is what the reconciles need; `Kube` implements it on the API server (plain
JSON requests, `rest.KubeRest`), and the fast tests implement it in memory. Create-if-missing is the
idempotence primitive: children have deterministic names, so AlreadyExists means an earlier
life of the operator (or a concurrent event) made it. A missing object is None; any other
error propagates, for the handler to retry with back-off.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import UTC, datetime
from typing import Any, Protocol

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
from mediaplane.operator.rest import MERGE_PATCH, KubeApiError, KubeRest, path
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

    async def create_transcode_job(self, tj: TranscodeJob) -> TranscodeJob | None:
        """Creates it unless it exists; what the API server stored (its uid set) when this
        call created it, None when it existed."""
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


ASSETS = (names.GROUP, names.VERSION, names.ASSET_PLURAL)
TRANSCODE_JOBS = (names.GROUP, names.VERSION, names.JOB_PLURAL)
WEBHOOKS = (names.GROUP, names.VERSION, names.WEBHOOK_PLURAL)
JOBS = ("batch", "v1", "jobs")
PODS = ("", "v1", "pods")
SECRETS = ("", "v1", "secrets")


class Kube:
    """`OperatorKube` on the API server."""

    def __init__(self, rest: KubeRest) -> None:
        self.rest = rest
        self._background: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        await self.rest.close()

    async def _get(self, kind: tuple[str, str, str], namespace: str,
                   name: str) -> dict[str, Any] | None:
        try:
            return await self.rest.request("GET", path(*kind, namespace, name))
        except KubeApiError as error:
            if error.missing:
                return None
            raise

    async def _list(self, kind: tuple[str, str, str], namespace: str | None,
                    **params: str) -> list[dict[str, Any]]:
        listing = await self.rest.request("GET", path(*kind, namespace), params=params)
        items: list[dict[str, Any]] = listing.get("items") or []
        return items

    async def _create(self, kind: tuple[str, str, str], namespace: str,
                      body: Any) -> bool:
        """True if created; False if it exists already, or if its namespace is being
        deleted (a tenant going away with its assets: nothing is left to make)."""
        return await self._create_object(kind, namespace, body) is not None

    async def _create_object(self, kind: tuple[str, str, str], namespace: str,
                             body: Any) -> dict[str, Any] | None:
        """`_create`, answering the object as stored (None where `_create` is False)."""
        try:
            return await self.rest.request("POST", path(*kind, namespace), body=body)
        except KubeApiError as error:
            if error.exists:
                return None
            if error.namespace_terminating:
                log.info("not creating %s %s: namespace %s is being deleted", kind[2],
                         body["metadata"].get("name"), namespace)
                return None
            raise

    async def get_asset(self, namespace: str, name: str) -> MediaAsset | None:
        body = await self._get(ASSETS, namespace, name)
        return None if body is None else MediaAsset.model_validate(body)

    async def transcode_jobs(self, namespace: str, asset: str) -> dict[str, TranscodeJob]:
        items = await self._list(TRANSCODE_JOBS, namespace,
                                 labelSelector=f"{names.LABEL_ASSET}={asset}")
        jobs = [TranscodeJob.model_validate(item) for item in items]
        return {tj.name: tj for tj in jobs}

    async def get_transcode_job(self, namespace: str, name: str) -> TranscodeJob | None:
        body = await self._get(TRANSCODE_JOBS, namespace, name)
        return None if body is None else TranscodeJob.model_validate(body)

    async def create_transcode_job(self, tj: TranscodeJob) -> TranscodeJob | None:
        stored = await self._create_object(TRANSCODE_JOBS, tj.namespace, tj.to_body())
        return None if stored is None else TranscodeJob.model_validate(stored)

    async def delete_transcode_job(self, namespace: str, name: str) -> None:
        try:
            await self.rest.request("DELETE", path(*TRANSCODE_JOBS, namespace, name),
                                    body={"propagationPolicy": "Background"})
        except KubeApiError as error:
            if not error.missing:
                raise

    async def _patch_status(self, kind: tuple[str, str, str], namespace: str, name: str,
                            status: dict[str, Any]) -> None:
        """Merge-patches the status subresource; lists (conditions) are replaced whole."""
        await self.rest.request("PATCH", path(*kind, namespace, name, "status"),
                                body={"status": status}, content_type=MERGE_PATCH)

    async def patch_asset_status(self, namespace: str, name: str,
                                 status: MediaAssetStatus) -> None:
        await self._patch_status(ASSETS, namespace, name, status.to_body())

    async def patch_transcode_job_status(self, namespace: str, name: str,
                                         status: TranscodeJobStatus) -> None:
        try:
            await self._patch_status(TRANSCODE_JOBS, namespace, name, status.to_body())
        except KubeApiError as error:
            if not error.missing:
                raise

    async def replace_transcode_job_status(self, namespace: str, name: str,
                                           status: TranscodeJobStatus) -> None:
        cleared: dict[str, Any] = {field.alias or key: None
                                   for key, field in TranscodeJobStatus.model_fields.items()}
        await self._patch_status(TRANSCODE_JOBS, namespace, name,
                                 {**cleared, **status.to_body()})

    async def get_job(self, namespace: str, name: str) -> Job | None:
        body = await self._get(JOBS, namespace, name)
        return None if body is None else Job.model_validate(body)

    async def create_job(self, job: Manifest) -> bool:
        return await self._create(JOBS, job["metadata"]["namespace"], job)

    async def delete_jobs(self, namespace: str, asset: str) -> None:
        await self.rest.request("DELETE", path(*JOBS, namespace),
                                params={"labelSelector": f"{names.LABEL_ASSET}={asset}"},
                                body={"propagationPolicy": "Background"})

    async def live_pods(self, namespace: str, asset: str) -> list[str]:
        pods = [Pod.model_validate(item) for item in await self._list(
            PODS, namespace, labelSelector=f"{names.LABEL_ASSET}={asset}")]
        return [p.metadata.name for p in pods
                if not PodPhase(p.status.phase or "Unknown").terminal]

    async def job_pods(self, namespace: str, job: str) -> list[Pod]:
        pods = [Pod.model_validate(item) for item in await self._list(
            PODS, namespace, labelSelector=f"{names.BATCH_JOB_NAME_LABEL}={job}")]
        return sorted(pods, key=lambda p: p.metadata.creation_timestamp or "")

    async def ensure_service_account(self, namespace: str, name: str) -> bool:
        """Creates the workers' ServiceAccount (no token, no bindings) unless it exists."""
        body = {"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY,
                                        "app.kubernetes.io/component": "worker"}},
                "automountServiceAccountToken": False}
        return await self._create(("", "v1", "serviceaccounts"), namespace, body)

    async def namespace_annotations(self, namespace: str) -> dict[str, str]:
        try:
            found = await self.rest.request("GET", path("", "v1", "namespaces", None,
                                                        namespace))
        except KubeApiError as error:
            if error.missing:
                return {}
            raise
        return dict((found.get("metadata") or {}).get("annotations") or {})

    async def record_generated(self, namespace: str, name: str,
                               generated: GeneratedObject) -> None:
        patch = {"spec": {"sha256": generated.sha256, "sizeBytes": generated.size_bytes,
                          "source": {"etag": generated.etag}}}
        await self.rest.request("PATCH", path(*ASSETS, namespace, name), body=patch,
                                content_type=MERGE_PATCH)

    async def mirror_secret(self, source_namespace: str, name: str,
                            target_namespace: str) -> bool:
        source = await self._get(SECRETS, source_namespace, name)
        if source is None:
            return False
        data = dict(source.get("data") or {})
        body = {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": target_namespace,
                             "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY,
                                        "app.kubernetes.io/component": "ai-provider"}},
                "type": "Opaque", "data": data}
        current = await self._get(SECRETS, target_namespace, name)
        if current is None:
            await self._create(SECRETS, target_namespace, body)
            return True
        if dict(current.get("data") or {}) != data:
            await self.rest.request("PUT", path(*SECRETS, target_namespace, name), body=body)
        return True

    async def tenants(self) -> list[str]:
        items = await self._list(("", "v1", "namespaces"), None,
                                 labelSelector=f"{names.TENANT_LABEL}=true")
        return [item["metadata"]["name"] for item in items]

    async def asset_names(self, namespace: str) -> set[str]:
        found: set[str] = set()
        token = ""
        while True:
            params = {"limit": "500", **({"continue": token} if token else {})}
            page = await self.rest.request("GET", path(*ASSETS, namespace), params=params)
            found.update(item["metadata"]["name"] for item in page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return found

    async def webhook_endpoints(self, namespace: str) -> list[WebhookEndpoint]:
        return [WebhookEndpoint.model_validate(item)
                for item in await self._list(WEBHOOKS, namespace)]

    async def get_webhook_endpoint(self, namespace: str,
                                   name: str) -> WebhookEndpoint | None:
        body = await self._get(WEBHOOKS, namespace, name)
        return None if body is None else WebhookEndpoint.model_validate(body)

    async def patch_webhook_endpoint_status(self, namespace: str, name: str,
                                            status: WebhookEndpointStatus) -> None:
        await self._patch_status(WEBHOOKS, namespace, name, status.to_body())

    async def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        try:
            secret = await self._get(SECRETS, namespace, name)
        except KubeApiError as error:
            # 403: a name the installation does not let the operator read (the chart's
            # webhooks.signingSecretNames): for the endpoint, as good as missing.
            if error.status == 403:
                return None
            raise
        encoded = ((secret or {}).get("data") or {}).get(key)
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
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                 "involvedObject": {"apiVersion": body["apiVersion"], "kind": body["kind"],
                                    "name": meta["name"], "namespace": meta["namespace"],
                                    "uid": meta.get("uid")},
                 "type": type_.value, "reason": reason, "message": message, "count": 1,
                 "firstTimestamp": now, "lastTimestamp": now,
                 "source": {"component": "mediaplane-operator"}}
        try:
            await self.rest.request("POST", path("", "v1", "events", meta["namespace"]),
                                    body=event)
        except KubeApiError as error:
            # 403 for a namespace being deleted, 404 for one gone: the object goes with it.
            level = logging.DEBUG if error.status in (403, 404) else logging.WARNING
            log.log(level, "could not post event %s about %s: %s %s", reason, meta["name"],
                    error.status, error.reason)
