"""Everything a request needs, built once at start-up and shared (clients, caches, keys)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from kubernetes_asyncio import client

from mediaplane.api.auth import TokenVerifier
from mediaplane.api.kube import AssetStore, TenantDirectory
from mediaplane.api.ratelimit import RateLimiter
from mediaplane.api.settings import ApiSettings
from mediaplane.api.signing import StreamSigner
from mediaplane.core.storage import Storage

K = TypeVar("K")
V = TypeVar("V")


@dataclass
class TtlCache(Generic[K, V]):
    """A small LRU with a time-to-live; single event loop, so no locking."""

    ttl_seconds: float
    max_entries: int = 4096
    _entries: OrderedDict[K, tuple[float, V]] = field(default_factory=OrderedDict)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.ttl_seconds:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (time.monotonic(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, key: K) -> None:
        self._entries.pop(key, None)


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
    render_cache: TtlCache[tuple[str, ...], str]
    rendering: dict[tuple[str, ...], asyncio.Future[str]] = field(default_factory=dict)

    @property
    def presign_seconds(self) -> int:
        return self.settings.stream_url_ttl_seconds + RENDER_CACHE_SECONDS
