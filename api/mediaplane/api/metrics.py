"""Request latency per route (buckets around the SLOs), error counts per code, and what
explains a slow list: how many presented assets came from kept JSON, and how often the
informer listed every asset again."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediaplane.api.errors import CODES
from mediaplane.api.presented import Tally

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
ASSET_LISTS = Counter("mediaplane_api_asset_lists_total",
                      "Complete lists of every MediaAsset by the API's informer: one at its "
                      "start, then one after each watch that ended in an error")


class _PresentedCollector(Collector):
    """`presented.Tally`, read when scraped."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "mediaplane_api_presented_assets",
            "Assets written into list and get answers: from JSON kept for the same caller, "
            "asset version and minute (kept), or made anew (made)", labels=["result"])
        family.add_metric(["kept"], Tally.kept)
        family.add_metric(["made"], Tally.made)
        yield family


REGISTRY.register(_PresentedCollector())


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
