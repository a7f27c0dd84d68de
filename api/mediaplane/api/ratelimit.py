"""Per-user rate limits on the `limits` library: in memory for one replica, Redis for many."""

from __future__ import annotations

import functools
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from mediaplane.api.errors import ApiError


@functools.cache
def _parsed(rule: str) -> RateLimitItem:
    return parse(rule)


class RateLimiter:
    def __init__(self, storage_uri: str) -> None:
        # Settings name the storage as people write it (memory://, redis://…); the asyncio
        # implementations of `limits` are the same schemes with an async+ prefix.
        uri = storage_uri if storage_uri.startswith("async+") else "async+" + storage_uri
        storage = storage_from_string(uri)
        if not isinstance(storage, Storage):
            raise ValueError(f"{storage_uri!r} is not an asyncio rate-limit storage")
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(self.storage)

    async def hit(self, rule: str, *identifiers: str) -> dict[str, str]:
        """Counts one request; raises `rate.limited` (with Retry-After) when over the rule.

        Returns the RateLimit headers for a successful response.
        """
        item = _parsed(rule)
        try:
            allowed = await self.limiter.hit(item, *identifiers)
            stats = await self.limiter.get_window_stats(item, *identifiers)
        except Exception as error:  # storage down: fail closed, visibly
            raise ApiError("unavailable", f"rate-limit storage unavailable: {error}") from None
        reset_in = max(0, math.ceil(stats.reset_time - time.time()))
        headers = {
            "X-RateLimit-Limit": str(item.amount),
            "X-RateLimit-Remaining": str(max(0, stats.remaining)),
            "X-RateLimit-Reset": str(reset_in),
        }
        if not allowed:
            raise ApiError("rate.limited",
                           f"more than {item.amount} requests per {item.GRANULARITY.name}; "
                           f"retry in {max(1, reset_in)} s",
                           headers={**headers, "Retry-After": str(max(1, reset_in))})
        return headers

    async def check(self) -> bool:
        return bool(await self.storage.check())

    async def reset(self) -> None:
        await self.storage.reset()
