"""Per-tenant AI budgets: units per period, taken and given back atomically.

A budget is a rule in the rate limits' syntax ("50/day", "20 per 2 hours"): that many
generations per fixed window of the period, windows aligned on the epoch, so every replica
computes the same window and its renewal time. The count lives where the rate limits live:
Redis for several API replicas (a Lua script checks and takes a unit in one step), memory for
one. Two more primitives make generation race-free and fair:

- `claim(name)`: a short lock across replicas, held while one request checks whether the
  asset exists, takes a unit and creates it, so identical concurrent requests take one unit;
- `give_back(…, marker)`: a refund done at most once per marker (the failed asset's uid),
  whichever replica sees the failure first.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from limits import parse

CLAIM_SECONDS = 15.0
CLAIM_POLL = 0.02


@dataclass(frozen=True)
class Budget:
    units: int
    period_seconds: int

    @classmethod
    def parse(cls, rule: str) -> Budget:
        item = parse(rule)
        return cls(units=item.amount, period_seconds=item.get_expiry())

    def window(self, now: float) -> int:
        return int(now // self.period_seconds)

    def renews_at(self, window: int) -> int:
        return (window + 1) * self.period_seconds


@dataclass(frozen=True)
class Usage:
    taken: bool
    limit: int
    used: int
    renews_at: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def headers(self, now: float) -> dict[str, str]:
        return {"X-AI-Budget-Limit": str(self.limit),
                "X-AI-Budget-Remaining": str(self.remaining),
                "X-AI-Budget-Reset": str(max(0, math.ceil(self.renews_at - now)))}


class BudgetStore(Protocol):
    async def take(self, key: str, limit: int, ttl_seconds: int) -> tuple[bool, int]:
        """Takes one unit unless `limit` are taken; (taken, units now taken)."""
        ...

    async def used(self, key: str) -> int: ...

    async def give_back(self, key: str, marker: str | None, ttl_seconds: int) -> bool:
        """Returns one unit; with a marker, only the first call for that marker does."""
        ...

    def claim(self, name: str) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def close(self) -> None: ...


class MemoryBudgets:
    """One API replica: counters and locks in this process."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}
        self._markers: dict[str, float] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = \
            weakref.WeakValueDictionary()

    def _get(self, key: str) -> int:
        count, expires = self._counts.get(key, (0, 0.0))
        return count if expires > time.time() else 0

    async def take(self, key: str, limit: int, ttl_seconds: int) -> tuple[bool, int]:
        used = self._get(key)
        if used >= limit:
            return False, used
        self._counts[key] = (used + 1, time.time() + ttl_seconds)
        return True, used + 1

    async def used(self, key: str) -> int:
        return self._get(key)

    async def give_back(self, key: str, marker: str | None, ttl_seconds: int) -> bool:
        now = time.time()
        if marker is not None:
            if self._markers.get(marker, 0.0) > now:
                return False
            self._markers[marker] = now + ttl_seconds
        count, expires = self._counts.get(key, (0, 0.0))
        if count > 0 and expires > now:
            self._counts[key] = (count - 1, expires)
        return True

    @contextlib.asynccontextmanager
    async def claim(self, name: str) -> AsyncIterator[None]:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        async with lock:
            yield

    async def close(self) -> None:
        return None


_TAKE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return {0, used} end
used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return {1, used}
"""
_GIVE_BACK = """
if ARGV[2] == '1' then
  if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return 0 end
end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used > 0 then redis.call('DECR', KEYS[1]) end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisBudgets:
    """Several API replicas: the same operations as Lua scripts on one Redis."""

    def __init__(self, url: str) -> None:
        import coredis

        self.redis: Any = coredis.Redis.from_url(url, decode_responses=True)

    async def take(self, key: str, limit: int, ttl_seconds: int) -> tuple[bool, int]:
        taken, used = await self.redis.eval(_TAKE, keys=[key], args=[limit, ttl_seconds])
        return bool(taken), int(used)

    async def used(self, key: str) -> int:
        return int(await self.redis.get(key) or 0)

    async def give_back(self, key: str, marker: str | None, ttl_seconds: int) -> bool:
        done = await self.redis.eval(_GIVE_BACK, keys=[key, marker or key + ":none"],
                                     args=[ttl_seconds, "1" if marker else "0"])
        return bool(done)

    @contextlib.asynccontextmanager
    async def claim(self, name: str) -> AsyncIterator[None]:
        token = secrets.token_hex(8)
        key = f"mediaplane:ai-claim:{name}"
        deadline = time.monotonic() + CLAIM_SECONDS
        while not await self.redis.set(key, token, condition="NX",
                                       px=int(CLAIM_SECONDS * 1000)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} stayed claimed for {CLAIM_SECONDS} s")
            await asyncio.sleep(CLAIM_POLL)
        try:
            yield
        finally:
            await self.redis.eval(_RELEASE, keys=[key], args=[token])

    async def close(self) -> None:
        return None


def store_from_uri(uri: str) -> BudgetStore:
    """The same storage URI as the rate limits: memory:// or redis://…"""
    plain = uri.removeprefix("async+")
    if plain.startswith("memory://"):
        return MemoryBudgets()
    if plain.startswith(("redis://", "rediss://")):
        return RedisBudgets(plain)
    raise ValueError(f"no AI budget storage for {uri!r} (memory:// or redis://)")


class Budgets:
    """Budgets of the tenants, by kind (image, speech)."""

    def __init__(self, store: BudgetStore) -> None:
        self.store = store

    @staticmethod
    def key(tenant: str, kind: str, budget: Budget, window: int) -> str:
        # The hash tag keeps a tenant's keys in one Redis Cluster slot (one Lua script).
        return f"mediaplane:ai-budget:{{{tenant}}}:{kind}:{budget.period_seconds}:{window}"

    async def peek(self, tenant: str, kind: str, budget: Budget, now: float) -> Usage:
        window = budget.window(now)
        used = await self.store.used(self.key(tenant, kind, budget, window))
        return Usage(taken=False, limit=budget.units, used=used,
                     renews_at=budget.renews_at(window))

    async def take(self, tenant: str, kind: str, budget: Budget,
                   now: float) -> tuple[Usage, str]:
        """One unit; returns the usage and the window label to record on the asset."""
        window = budget.window(now)
        taken, used = await self.store.take(self.key(tenant, kind, budget, window),
                                            budget.units, budget.period_seconds + 60)
        usage = Usage(taken=taken, limit=budget.units, used=used,
                      renews_at=budget.renews_at(window))
        return usage, f"{kind}:{budget.period_seconds}:{window}"

    async def give_back(self, tenant: str, label: str, marker: str | None) -> bool:
        """Returns the unit taken in the window `label` (no-op once that window ended)."""
        kind, period, window = label.split(":")
        budget = Budget(units=0, period_seconds=int(period))
        key = self.key(tenant, kind, budget, int(window))
        ttl = max(60, budget.renews_at(int(window)) - int(time.time()) + 60)
        full_marker = f"mediaplane:ai-refund:{{{tenant}}}:{marker}" if marker else None
        return await self.store.give_back(key, full_marker, ttl)
