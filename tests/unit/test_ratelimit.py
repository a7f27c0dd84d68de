"""The in-memory rate limiter: limits hold, expired entries go, and a hit starts no task."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mediaplane.api import ratelimit
from mediaplane.api.errors import ApiError
from mediaplane.api.ratelimit import RateLimiter, SweptMemoryStorage


async def test_limit_holds_and_headers_count_down() -> None:
    limiter = RateLimiter("memory://")
    try:
        first = await limiter.hit("2/minute", "upload-url", "t", "alice")
        second = await limiter.hit("2/minute", "upload-url", "t", "alice")
        with pytest.raises(ApiError) as refused:
            await limiter.hit("2/minute", "upload-url", "t", "alice")
        other_user = await limiter.hit("2/minute", "upload-url", "t", "bob")
    finally:
        await limiter.close()
    assert (first["X-RateLimit-Remaining"], second["X-RateLimit-Remaining"]) == ("1", "0")
    assert refused.value.code == "rate.limited"
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    assert other_user["X-RateLimit-Remaining"] == "1"


async def test_hits_start_no_tasks_and_expired_entries_are_swept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "SWEEP_SECONDS", 0.2)
    limiter = RateLimiter("memory://")
    storage = limiter.storage
    assert isinstance(storage, SweptMemoryStorage)
    try:
        await limiter.hit("1000/second", "upload-url", "t", "alice")  # starts the sweeper
        loop = asyncio.get_running_loop()
        started: list[object] = []
        factory = loop.get_task_factory()

        def counting_factory(loop: asyncio.AbstractEventLoop, coro: Any,
                             **kwargs: Any) -> asyncio.Future[Any]:
            started.append(coro)
            if factory is not None:
                return factory(loop, coro, **kwargs)
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(counting_factory)
        try:
            for _ in range(200):
                await limiter.hit("1000/second", "upload-url", "t", "alice")
                await asyncio.sleep(0)
        finally:
            loop.set_task_factory(factory)
        # The library starts a sweep task from a hit whenever the last sweep has ended (and
        # a worker thread per key from each sweep): with the sweeper alive, none started.
        assert started == []
        assert sum(len(entries) for entries in storage.events.values()) == 201
        await asyncio.sleep(1.0 + 2 * 0.2)  # the window passes, then a sweep
        assert sum(len(entries) for entries in storage.events.values()) == 0
        # Still counting after the sweep.
        headers = await limiter.hit("1000/second", "upload-url", "t", "alice")
        assert headers["X-RateLimit-Remaining"] == "999"
    finally:
        await limiter.close()
    assert storage.timer is not None
    assert storage.timer.done()
