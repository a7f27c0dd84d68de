"""The FastAPI application: routers, error handling, middleware, and start-up wiring."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cachetools import TTLCache
from fastapi import FastAPI

from mediaplane.api import errorhandlers, kube
from mediaplane.api.auth import TokenVerifier
from mediaplane.api.context import RENDER_CACHE_SECONDS, ApiContext
from mediaplane.api.informer import AssetInformer
from mediaplane.api.metrics import MetricsMiddleware
from mediaplane.api.ratelimit import RateLimiter
from mediaplane.api.routers import captions, health, media, streaming, uploads
from mediaplane.api.settings import ApiSettings
from mediaplane.api.signing import StreamSigner
from mediaplane.core import kubeclient
from mediaplane.core.settings import S3Settings
from mediaplane.core.storage import Storage

DESCRIPTION = """
mediaplane's REST API: direct uploads to S3, assets, captions and signed HLS/DASH streams.

Every error is `{"error": {"code", "message", "requestId"}}`; each route lists its codes.
Authenticate with `Authorization: Bearer <JWT>` (claims: `sub` and the tenant). Stream
links carry their own token and need no header.
"""


async def build_context(settings: ApiSettings) -> ApiContext:
    api = await kubeclient.connect()
    informer = AssetInformer(api)
    informer.start()
    storage = Storage(S3Settings())
    storage.client  # noqa: B018 (build the boto3 client now, not on the first request)
    return ApiContext(
        settings=settings, kube_api=api, assets=kube.AssetStore(api, informer),
        tenants=kube.TenantDirectory(api, settings.max_upload_bytes,
                                     settings.tenant_cache_seconds),
        storage=storage, verifier=TokenVerifier(settings),
        signer=StreamSigner(settings.stream_signing_key.get_secret_value(),
                            settings.stream_url_ttl_seconds),
        limiter=RateLimiter(settings.rate_limit_storage),
        render_cache=TTLCache(maxsize=4096, ttl=RENDER_CACHE_SECONDS),
    )


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = await build_context(settings)
        app.state.context = context
        try:
            yield
        finally:
            if context.assets.informer is not None:
                await context.assets.informer.stop()
            await context.kube_api.close()

    app = FastAPI(title="mediaplane", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan)
    for router in (uploads.router, media.router, captions.router, streaming.router,
                   health.router):
        app.include_router(router)
    errorhandlers.install(app)
    app.add_middleware(errorhandlers.RequestGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    return app
