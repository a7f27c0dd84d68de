"""Everything a request needs, built once at start-up and shared (clients, caches, keys)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from cachetools import TTLCache
from kubernetes_asyncio import client

from mediaplane.api.auth import TokenVerifier
from mediaplane.api.kube import AssetStore, TenantDirectory
from mediaplane.api.ratelimit import RateLimiter
from mediaplane.api.settings import ApiSettings
from mediaplane.api.signing import StreamSigner
from mediaplane.core.storage import Storage

# Rendered manifests are cached this long; presigned URLs in them live this much longer
# than a stream link, so a cached body never hands out a URL that dies before the link.
RENDER_CACHE_SECONDS = 600


@dataclass
class ApiContext:
    settings: ApiSettings
    kube_api: client.ApiClient
    assets: AssetStore
    tenants: TenantDirectory
    storage: Storage
    verifier: TokenVerifier
    signer: StreamSigner
    limiter: RateLimiter
    render_cache: TTLCache[tuple[str, ...], str]
    rendering: dict[tuple[str, ...], asyncio.Future[str]] = field(default_factory=dict)

    @property
    def presign_seconds(self) -> int:
        return self.settings.stream_url_ttl_seconds + RENDER_CACHE_SECONDS
