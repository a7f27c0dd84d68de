"""Per-user rate limits on the `limits` library: in memory for one replica, Redis for many."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from mediaplane.api.errors import ApiError

# How often the in-memory storage drops expired entries. Entries outside their window
# never count (each check compares timestamps); the sweep only returns their memory.
SWEEP_SECONDS = 1.0


class SweptMemoryStorage(MemoryStorage):
    """`limits`' asyncio memory storage, swept by one long-lived task.

    The library schedules a sweep from each hit, and each sweep hops to a worker thread
    for every key: at 2,000 upload-url grants a second that cost about 50 µs of the API's
    CPU per request, a tenth of the route. Here a single task sweeps every `SWEEP_SECONDS`
    and stands in the library's `timer` slot, so its per-hit scheduling finds a sweeper
    alive and starts nothing. (`limits` is pinned; `tests/unit/test_ratelimit.py` checks
    that expired entries still go and that hits start no tasks.)
    """

    def start_sweeping(self) -> None:
        if self.timer is None or self.timer.done():
            self.timer = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        sweep = self._MemoryStorage__expire_events  # type: ignore[attr-defined]
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            await sweep()
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                return  # stopped during the sweep, which swallows the cancellation

    async def stop_sweeping(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.timer


@functools.cache
def _parsed(rule: str) -> RateLimitItem:
    return parse(rule)


class RateLimiter:
    def __init__(self, storage_uri: str) -> None:
        # Settings name the storage as people write it (memory://, redis://…); the asyncio
        # implementations of `limits` are the same schemes with an async+ prefix.
        uri = storage_uri if storage_uri.startswith("async+") else "async+" + storage_uri
        storage = (SweptMemoryStorage(uri) if uri.startswith("async+memory:")
                   else storage_from_string(uri))
        if not isinstance(storage, Storage):
            raise ValueError(f"{storage_uri!r} is not an asyncio rate-limit storage")
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(self.storage)

    async def hit(self, rule: str, *identifiers: str) -> dict[str, str]:
        """Counts one request; raises `rate.limited` (with Retry-After) when over the rule.

        Returns the RateLimit headers for a successful response.
        """
        item = _parsed(rule)
        if isinstance(self.storage, SweptMemoryStorage):
            self.storage.start_sweeping()  # in the serving loop, on its first use
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

    async def close(self) -> None:
        if isinstance(self.storage, SweptMemoryStorage):
            await self.storage.stop_sweeping()
