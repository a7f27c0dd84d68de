"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mediaplane.api.deps import Context
from mediaplane.api.errors import ApiError

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


# Each dependency gets this long to answer a readiness check (the route's own deadline is
# the request deadline; the checks run side by side).
CHECK_SECONDS = 2.0


@router.get("/readyz", summary="Kubernetes, object storage and the rate-limit storage answer",
            responses={503: {"description": "`unavailable`; `details` names each missing "
                             "dependency (`kubernetes`, `storage`, `rate-limit-storage`, "
                             "`asset-cache`) with what went wrong"}})
async def readyz(context: Context) -> dict[str, str]:
    async def limiter() -> None:
        if not await context.limiter.check():
            raise RuntimeError("does not answer")

    async def cache() -> None:
        if not context.assets.synced:
            raise RuntimeError("the MediaAsset cache is not synced yet")

    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "kubernetes": context.tenants.ping,
        "storage": lambda: asyncio.to_thread(context.storage.ping),
        "rate-limit-storage": limiter,
        "asset-cache": cache,
    }
    outcomes = await asyncio.gather(
        *(asyncio.wait_for(check(), CHECK_SECONDS) for check in checks.values()),
        return_exceptions=True)
    missing = [{"dependency": name, "message": str(outcome) or type(outcome).__name__}
               for name, outcome in zip(checks, outcomes, strict=True)
               if isinstance(outcome, BaseException)]
    if missing:
        summary = ", ".join(f"{m['dependency']} ({m['message']})" for m in missing)
        raise ApiError("unavailable", f"not ready: {summary}", details=missing)
    return {"status": "ready"}


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
