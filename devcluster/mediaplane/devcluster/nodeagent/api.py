"""The handful of API calls a kubelet makes, on plain JSON dicts.

kubernetes_asyncio provides authentication and TLS from the kubeconfig; the calls go
through its raw `call_api` so objects stay the API server's JSON (no model round trip,
which for `pods/binding` even fails to deserialize the Status the server answers with).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

from kubernetes_asyncio.client import ApiClient

JSON = dict[str, Any]
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


def _q(value: str) -> str:
    return quote(value, safe="")


class Kube:
    def __init__(self, client: ApiClient, timeout: float = 30.0) -> None:
        self.client = client
        self.timeout = timeout

    async def _response(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        request_timeout: Any = None,
    ) -> Any:
        return await self.client.call_api(
            path,
            method,
            query_params=[(k, v) for k, v in (query or {}).items() if v is not None],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=request_timeout or self.timeout,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JSON:
        resp = await self._response(method, path, query=query, body=body, content_type=content_type)
        try:
            text = (await resp.read()).decode(errors="replace")
        finally:
            resp.release()
        if not 200 <= resp.status <= 299:
            raise ApiError(resp.status, text)
        parsed = json.loads(text) if text else {}
        return parsed if isinstance(parsed, dict) else {}

    # --- pods ---------------------------------------------------------------------------

    async def list_pods(self) -> tuple[list[JSON], str]:
        data = await self.request("GET", "/api/v1/pods")
        return list(data.get("items") or []), str(data["metadata"]["resourceVersion"])

    async def watch_pods(self, resource_version: str, timeout_seconds: int) -> AsyncIterator[JSON]:
        """Raw watch events; a 410 arrives as an ERROR event for the caller to act on."""
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": "true",
        }
        resp = await self._response(
            "GET", "/api/v1/pods", query=query, request_timeout=(10, timeout_seconds + 30)
        )
        try:
            if resp.status != 200:
                raise ApiError(resp.status, (await resp.read()).decode(errors="replace"))
            buffer = b""
            # Chunks, not readline(): aiohttp caps a line at 64 KiB, a pod can be larger.
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            resp.release()

    async def bind(self, namespace: str, name: str, node: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        await self.request(
            "POST", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}/binding", body=body
        )

    async def patch_pod_status(self, namespace: str, name: str, patch: JSON) -> JSON:
        return await self.request(
            "PATCH",
            f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}/status",
            body=patch,
            content_type=STRATEGIC,
        )

    async def delete_pod_now(self, namespace: str, name: str, uid: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": uid},
        }
        await self.request(
            "DELETE", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}", body=body
        )

    # --- what pods refer to ---------------------------------------------------------------

    async def read(self, kind: str, namespace: str, name: str) -> JSON | None:
        """A ConfigMap or Secret, or None when it does not exist."""
        plural = {"ConfigMap": "configmaps", "Secret": "secrets"}[kind]
        try:
            return await self.request(
                "GET", f"/api/v1/namespaces/{_q(namespace)}/{plural}/{_q(name)}"
            )
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    async def request_token(
        self,
        namespace: str,
        service_account: str,
        pod: JSON,
        audience: str | None,
        expiration_seconds: int | None,
    ) -> str:
        spec: JSON = {
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            },
            "expirationSeconds": expiration_seconds or 3607,
        }
        if audience:
            spec["audiences"] = [audience]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        path = f"/api/v1/namespaces/{_q(namespace)}/serviceaccounts/{_q(service_account)}/token"
        answer = await self.request("POST", path, body=body)
        return str(answer["status"]["token"])

    # --- the node -----------------------------------------------------------------------

    async def get_node(self, name: str) -> JSON | None:
        try:
            return await self.request("GET", f"/api/v1/nodes/{_q(name)}")
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    async def create_node(self, body: JSON) -> JSON:
        return await self.request("POST", "/api/v1/nodes", body=body)

    async def patch_node(self, name: str, patch: JSON) -> JSON:
        return await self.request(
            "PATCH", f"/api/v1/nodes/{_q(name)}", body=patch, content_type=MERGE
        )

    async def patch_node_status(self, name: str, patch: JSON) -> JSON:
        return await self.request(
            "PATCH", f"/api/v1/nodes/{_q(name)}/status", body=patch, content_type=STRATEGIC
        )
