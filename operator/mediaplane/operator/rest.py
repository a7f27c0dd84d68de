"""The operator's own requests to the Kubernetes API: JSON over aiohttp, kopf's credentials.

Not kubernetes_asyncio: kopf imports that package's whole generated client (every model
class of every API group) as soon as it is installed, about 60 MB of RSS in a process
that must stay under 150 MB with 10,000 assets. The operator builds its bodies as plain
JSON already and sends a dozen kinds of request; aiohttp is kopf's own HTTP client.

Credentials come from kopf's login functions (the pod's service account, else
$KUBECONFIG), so both of the operator's clients authenticate alike; a 401 logs in again
once (a rotated service-account token), a 429 waits for its Retry-After. Every request
has a deadline, and a refused, reset or stalled connection becomes
`core.errors.UnavailableError`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from typing import TYPE_CHECKING, Any

import aiohttp
import kopf

from mediaplane.core.errors import UnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
CONNECTIONS = 16
TOO_MANY_ATTEMPTS = 5
MAX_RETRY_AFTER = 5.0


class KubeApiError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, message: str,
                 causes: tuple[str, ...] = ()) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.causes = causes

    @property
    def namespace_terminating(self) -> bool:
        """A create refused because the namespace is being deleted (its objects go with it)."""
        return self.status == 403 and "NamespaceTerminating" in self.causes

    @property
    def missing(self) -> bool:
        return self.status == 404

    @property
    def exists(self) -> bool:
        return self.status == 409


def login() -> kopf.ConnectionInfo:
    """Where the API server is and how to authenticate, as kopf finds it."""
    settings = kopf.OperatorSettings()
    info = (kopf.login_with_service_account(settings=settings, logger=log)
            or kopf.login_with_kubeconfig(settings=settings, logger=log))
    if info is None:
        raise kopf.LoginError("neither a service account nor a kubeconfig was found")
    return info


def path(group: str, version: str, plural: str, namespace: str | None = None,
         name: str | None = None, subresource: str | None = None) -> str:
    """`/api/v1/...` for the core group, `/apis/<group>/<version>/...` otherwise."""
    parts = ["api", version] if not group else ["apis", group, version]
    if namespace is not None:
        parts += ["namespaces", namespace]
    parts.append(plural)
    if name is not None:
        parts.append(name)
    if subresource is not None:
        parts.append(subresource)
    return "/" + "/".join(urllib.parse.quote(part, safe="") for part in parts)


class KubeRest:
    """JSON requests to one API server, with a bounded connection pool."""

    def __init__(self, info: kopf.ConnectionInfo, timeout: float | None,
                 relogin: Callable[[], kopf.ConnectionInfo] = login) -> None:
        self._relogin = relogin
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = self._open(info)
        self._server = info.server.rstrip("/")

    @staticmethod
    def _open(info: kopf.ConnectionInfo) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CONNECTIONS, ssl=info.as_ssl_context()),
            headers={**info.as_http_headers(), "Accept": "application/json"})

    @classmethod
    async def connect(cls, request_seconds: float | None = None) -> KubeRest:
        return cls(login(), request_seconds)

    async def close(self) -> None:
        await self._session.close()

    async def request(self, method: str, url_path: str, *,
                      params: Mapping[str, str] | None = None, body: Any = None,
                      content_type: str = "application/json") -> dict[str, Any]:
        """The answer's JSON; an error status raises `KubeApiError`. A 429 (the API
        server's priority and fairness, or a resource's storage still initialising) is
        retried after the Retry-After it names, a few times, as client-go does."""
        relogged = False
        for attempt in range(1, TOO_MANY_ATTEMPTS + 1):
            status, payload, retry_after = await self._send(method, url_path, params, body,
                                                            content_type)
            if status == 401 and not relogged:
                log.info("the API server refused our credentials: logging in again")
                relogged = True
                await self._session.close()
                info = self._relogin()
                self._session, self._server = self._open(info), info.server.rstrip("/")
                continue
            if status == 429 and attempt < TOO_MANY_ATTEMPTS:
                await asyncio.sleep(min(retry_after, MAX_RETRY_AFTER))
                continue
            break
        if status >= 400:
            details = payload.get("details")
            causes = details.get("causes") if isinstance(details, dict) else None
            raise KubeApiError(status, str(payload.get("reason") or ""),
                               str(payload.get("message") or payload),
                               tuple(str(c.get("reason")) for c in causes or []
                                     if isinstance(c, dict)))
        return payload

    async def _send(self, method: str, url_path: str, params: Mapping[str, str] | None,
                    body: Any, content_type: str) -> tuple[int, dict[str, Any], float]:
        """Status, JSON body, and the Retry-After seconds (1 when absent or unreadable)."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        try:
            async with self._session.request(
                    method, self._server + url_path, params=params, data=data,
                    headers=headers, timeout=self._timeout) as response:
                text = await response.text()
                status = response.status
                retry_after = _seconds(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as error:
            what = str(error) or type(error).__name__
            raise UnavailableError(f"Kubernetes API server: {what}") from error
        try:
            payload = json.loads(text) if text else {}
        except ValueError:
            payload = {"message": text[:300]}
        return status, payload if isinstance(payload, dict) else {"items": payload}, retry_after


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 1.0
    except ValueError:
        return 1.0
