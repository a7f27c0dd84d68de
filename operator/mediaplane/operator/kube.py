"""The few Kubernetes API calls the operator makes, on kubernetes_asyncio.

Create-if-missing is the idempotence primitive: children have deterministic names, so
AlreadyExists means an earlier life of the operator (or a concurrent event) made it.
"""

from __future__ import annotations

from typing import Any, cast

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from mediaplane.core import names
from mediaplane.operator.builders import BATCH_JOB_NAME_LABEL


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)

    async def get_asset(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = await self.custom.get_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.ASSET_PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return body

    async def transcode_jobs(self, namespace: str, asset: str) -> dict[str, dict[str, Any]]:
        listing = await self.custom.list_namespaced_custom_object(
            names.GROUP, names.VERSION, namespace, names.JOB_PLURAL,
            label_selector=f"{names.LABEL_ASSET}={asset}")
        return {item["metadata"]["name"]: item for item in listing["items"]}

    async def create_transcode_job(self, body: dict[str, Any]) -> bool:
        """Creates it unless it exists; True when this call created it."""
        try:
            await self.custom.create_namespaced_custom_object(
                names.GROUP, names.VERSION, body["metadata"]["namespace"], names.JOB_PLURAL, body)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    async def create_job(self, body: dict[str, Any]) -> bool:
        try:
            await self.batch.create_namespaced_job(body["metadata"]["namespace"],
                                                   cast("Any", body))
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    async def ensure_service_account(self, namespace: str, name: str) -> bool:
        """Creates the workers' ServiceAccount (no token, no bindings) unless it exists."""
        body = {"metadata": {"name": name, "namespace": namespace,
                             "labels": {"app.kubernetes.io/managed-by": "mediaplane",
                                        "app.kubernetes.io/component": "worker"}},
                "automountServiceAccountToken": False}
        try:
            await self.core.create_namespaced_service_account(namespace, cast("Any", body))
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    async def job_exists(self, namespace: str, name: str) -> bool:
        try:
            await self.batch.read_namespaced_job(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    async def patch_status(self, plural: str, namespace: str, name: str,
                           status: dict[str, Any]) -> None:
        """Merge-patches the status subresource; lists (conditions) are replaced whole."""
        # The generated stubs omit _content_type; without it a dict body is not a merge patch.
        await cast("Any", self.custom).patch_namespaced_custom_object_status(
            names.GROUP, names.VERSION, namespace, plural, name, {"status": status},
            _content_type="application/merge-patch+json")

    async def termination_messages(self, namespace: str, job: str) -> list[tuple[str, str]]:
        """(pod phase, termination message) of the Job's pods, oldest first."""
        pods = await self.core.list_namespaced_pod(
            namespace, label_selector=f"{BATCH_JOB_NAME_LABEL}={job}")
        result: list[tuple[str, str]] = []
        for pod in sorted(pods.items, key=lambda p: p.metadata.creation_timestamp):
            message = ""
            for status in pod.status.container_statuses or []:
                terminated = status.state.terminated if status.state else None
                if terminated is not None and terminated.message:
                    message = terminated.message
            result.append((pod.status.phase or "", message))
        return result
