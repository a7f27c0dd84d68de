"""The FastAPI application: routers, error handling, middleware, and start-up wiring."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from mediaplane.api import errorhandlers, kube
from mediaplane.api.context import ApiContext
from mediaplane.api.cors import CorsByPath
from mediaplane.api.informer import AssetInformer
from mediaplane.api.metrics import MetricsMiddleware
from mediaplane.api.player import STATIC_DIR as PLAYER_STATIC_DIR
from mediaplane.api.player import STATIC_PATH as PLAYER_STATIC_PATH
from mediaplane.api.routers import (
    ai,
    captions,
    floor,
    health,
    media,
    player,
    speech,
    streaming,
    uploads,
)
from mediaplane.api.settings import ApiSettings
from mediaplane.core import kubeclient
from mediaplane.core.settings import S3Settings
from mediaplane.core.storage import Storage

DESCRIPTION = """
mediaplane's REST API: direct uploads to S3, assets, captions and signed HLS/DASH streams,
and AI generation of images and speech as ordinary assets.

Every error is `{"error": {"code", "message", "requestId"}}`; each route lists its codes.
Authenticate with `Authorization: Bearer <JWT>` (claims: `sub` and the tenant). Stream
links carry their own token and need no header.
"""

ContextFactory = Callable[[ApiSettings], Awaitable[ApiContext]]


async def build_context(settings: ApiSettings) -> ApiContext:
    """The production context: the Kubernetes API (with a watch-fed cache) and S3."""
    api = await kubeclient.connect(request_seconds=settings.kube_timeout_seconds)
    informer = AssetInformer(api)
    informer.start()
    storage = Storage(S3Settings().model_copy(update={
        "connect_timeout_seconds": settings.s3_connect_timeout_seconds,
        "read_timeout_seconds": settings.s3_read_timeout_seconds,
        "max_attempts": settings.s3_attempts}))
    storage.client  # noqa: B018 (build the boto3 client now, not on the first request)
    context = ApiContext.with_settings(
        settings, assets=kube.AssetStore(api, informer),
        tenants=kube.TenantDirectory(api, settings.max_upload_bytes,
                                     settings.tenant_cache_seconds),
        storage=storage)
    context.on_close.append(api.close)
    informer.listeners.append(context.ai.observe)  # refunds of failed generations
    await context.ai.moderator.warm()
    return context


def create_app(settings: ApiSettings | None = None,
               context_factory: ContextFactory = build_context) -> FastAPI:
    """The app; `context_factory` builds what requests share when it starts (tests pass
    one over in-memory stores)."""
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = await context_factory(settings)
        app.state.context = context
        # What start-up built (modules, routes, schemas, clients: most of the heap) lives
        # as long as the process; frozen, the collector stops rescanning it. Unfrozen, each
        # full collection under load walked about 280,000 objects and paused every request
        # for up to 115 ms (upload-url at 50 clients, `make bench`).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await context.close()
            # Back to the collector's care: an app started again in the same process
            # (tests do) would otherwise keep every earlier one's cycles for good.
            gc.unfreeze()

    # No redirect of a path with a trailing slash: an encoded slash in a path parameter
    # ("mda_%2F") would otherwise be answered 307 to another route, not 404.
    # FastAPI's own OpenTelemetry hooks are off: the API exports Prometheus metrics
    # (`/metrics`), and checking for a tracer provider cost a measurable share of each
    # request on the hot routes.
    app = FastAPI(title="mediaplane", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan, redirect_slashes=False,
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    # Routes are matched in this order, and a request pays for each route tried before its
    # own: a player's playlists and MPDs come right after upload-url. Their paths (a
    # `/stream/` segment) match no other route, so the order changes no answer.
    for router in (uploads.router, streaming.router, ai.router, media.router,
                   captions.router, speech.router, player.router, health.router):
        app.include_router(router)
    if settings.bench_floor:
        app.include_router(floor.router)
    # The player page's own script and style, and the vendored players.
    app.mount(PLAYER_STATIC_PATH, StaticFiles(directory=PLAYER_STATIC_DIR), name="player-static")
    errorhandlers.install(app)
    app.add_middleware(errorhandlers.RequestGuard, max_body_bytes=settings.max_body_bytes,
                       deadline_seconds=settings.request_deadline_seconds)
    # Outside the guard, so its answers (413, request ids) carry CORS headers too and a
    # browser lets the page read them; preflights are answered here, before any route.
    app.add_middleware(CorsByPath, api_origins=settings.cors_origins)
    app.add_middleware(MetricsMiddleware)
    return app
