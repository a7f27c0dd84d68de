"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mediaplane.api.deps import Context
from mediaplane.api.errors import ApiError

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Kubernetes and the rate-limit storage answer",
            responses={503: {"description": "`unavailable`"}})
async def readyz(context: Context) -> dict[str, str]:
    await context.tenants.ping()
    try:
        healthy = await context.limiter.check()
    except Exception as error:  # any failure of the limiter's storage means not ready
        raise ApiError("unavailable", f"rate-limit storage: {error}") from None
    if not healthy:
        raise ApiError("unavailable", "rate-limit storage does not answer")
    if not context.assets.synced:
        raise ApiError("unavailable", "the MediaAsset cache is not synced yet")
    return {"status": "ready"}


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
