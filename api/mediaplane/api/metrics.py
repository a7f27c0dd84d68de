"""Request latency per route (buckets around the SLOs) and error counts per code."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediaplane.api.errors import CODES

# The contract's SLOs are 100 ms (stream URL) and 200 ms (upload URL); ours are 10 and 40.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.04, 0.05, 0.075, 0.1,
                   0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0)

REQUEST_SECONDS = Histogram(
    "mediaplane_api_request_duration_seconds", "Time to answer a request, by route template",
    ["method", "route", "status"], buckets=LATENCY_BUCKETS)
ERRORS = Counter("mediaplane_api_errors_total", "Error responses by contract code", ["code"])
# Every code's series from the start: a rate of errors is 0 rather than absent.
for _code in CODES:
    ERRORS.labels(_code)


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): the route label is the matched template, so
    asset ids never become label values."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            REQUEST_SECONDS.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started)
