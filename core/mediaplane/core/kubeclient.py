"""One way to reach the Kubernetes API from a service: in-cluster, else $KUBECONFIG.

Every request but a watch gets a deadline, and a connection that is refused, reset or
times out becomes `core.errors.UnavailableError`: kubernetes_asyncio passes aiohttp an
empty `ClientTimeout` when a call names none, which waits forever on a stalled API server,
and its connection errors are aiohttp's own, which no caller would recognise as "retry
later". Watches are left without a deadline: they are long by design, and their callers
relist when one breaks.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from kubernetes_asyncio import client, config

from mediaplane.core.errors import UnavailableError


class BoundedApiClient(client.ApiClient):
    """An ApiClient whose requests end within `timeout` seconds, one way or another."""

    def __init__(self, timeout: float | None) -> None:
        super().__init__()
        self.timeout = timeout

    async def request(self, method: str, url: str, query_params: Any = None,
                      headers: Any = None, post_params: Any = None, body: Any = None,
                      _preload_content: bool = True, _request_timeout: Any = None) -> Any:
        watching = any(key == "watch" for key, _ in (query_params or []))
        if _request_timeout is None and self.timeout is not None and not watching:
            _request_timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            return await super().request(method, url, query_params=query_params,
                                         headers=headers, post_params=post_params, body=body,
                                         _preload_content=_preload_content,
                                         _request_timeout=_request_timeout)
        except (aiohttp.ClientError, TimeoutError) as error:
            # ClientConnectorError (refused), ServerDisconnectedError, a read timeout...
            what = str(error) or type(error).__name__
            raise UnavailableError(f"Kubernetes API server: {what}") from error


async def connect(request_seconds: float | None = None) -> client.ApiClient:
    """A client of this cluster; `request_seconds` bounds each request (None: no deadline)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        await config.load_kube_config()
    return BoundedApiClient(request_seconds)
