"""Everything a request needs, built once at start-up and shared (clients, caches, keys)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cachetools import TTLCache

from mediaplane.api.auth import TokenVerifier
from mediaplane.api.generation import AiServices
from mediaplane.api.kube import AssetRepository, TenantRepository
from mediaplane.api.presented import PresentedAssets
from mediaplane.api.ratelimit import RateLimiter
from mediaplane.api.settings import ApiSettings
from mediaplane.api.signing import StreamSigner
from mediaplane.core.objects import ObjectStore

# Rendered manifests are cached this long; presigned URLs in them live this much longer
# than a stream link, so a cached body never hands out a URL that dies before the link.
RENDER_CACHE_SECONDS = 600


@dataclass
class ApiContext:
    settings: ApiSettings
    assets: AssetRepository
    tenants: TenantRepository
    storage: ObjectStore
    verifier: TokenVerifier
    signer: StreamSigner
    limiter: RateLimiter
    ai: AiServices
    render_cache: TTLCache[tuple[str, ...], str] = field(
        default_factory=lambda: TTLCache(maxsize=4096, ttl=RENDER_CACHE_SECONDS))
    rendering: dict[tuple[str, ...], asyncio.Future[str]] = field(default_factory=dict)
    presented: PresentedAssets = field(default_factory=PresentedAssets)
    # Called once at shutdown (closing clients the context owns).
    on_close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    def with_settings(cls, settings: ApiSettings, assets: AssetRepository,
                      tenants: TenantRepository, storage: ObjectStore) -> ApiContext:
        """A context over these stores, with keys and limits from `settings`."""
        return cls(settings=settings, assets=assets, tenants=tenants, storage=storage,
                   verifier=TokenVerifier(settings),
                   signer=StreamSigner(settings.stream_signing_key.get_secret_value(),
                                       settings.stream_url_ttl_seconds),
                   limiter=RateLimiter(settings.rate_limit_storage),
                   ai=AiServices.from_settings(settings))

    async def close(self) -> None:
        await self.assets.close()
        await self.ai.close()
        await self.limiter.close()
        for close in self.on_close:
            await close()

    @property
    def presign_seconds(self) -> int:
        return self.settings.stream_url_ttl_seconds + RENDER_CACHE_SECONDS
