"""Assets the operator returns to on its own, with no watch event to bring it there.

Two kinds: unfinished assets (a TranscodeJob event lost while the API server restarted
must not leave one short of Ready or Complete), and assets with webhook events still to
deliver. Both used to be kopf timers on MediaAssets. kopf keeps the latest body of every
object of a resource that has a timer or daemon, so that it can hand it to them: with the
timers, the operator held every asset's whole body, finished or not, for as long as it
ran (about 60 KB each as Python objects; 280 MB of RSS over 3,000 assets). Here one loop
serves every asset and remembers two flags and two times per unsettled asset only.

The asset watch feeds it (`Followups.seen`, from the event handler kopf calls for every
event, the initial listing included). An asset is visited once it has been unchanged for
`idle` seconds, then again every `idle` seconds while it stays unsettled: the same rhythm
as the timers had (interval and idle both 30 s).

Under kopf's peering a replica on standby gets no events, so it follows nothing. One that
was active and is then paused keeps visiting the assets it knew until they settle: the
reconciles are idempotent (deterministic names, create-if-missing), so this costs reads,
not conflicts, as with the upload sweeper that every replica runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)


@dataclass
class _Entry:
    unfinished: bool
    pending: bool
    changed: float
    visited: float


@dataclass(frozen=True)
class Due:
    """What one tick has to do: assets to resync, assets whose webhooks to queue again."""

    resync: list[Key]
    notify: list[Key]


class Followups:
    """Unsettled assets and when each was last changed and last visited."""

    def __init__(self, idle: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle = idle
        self._clock = clock
        self._entries: dict[Key, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def seen(self, key: Key, *, unfinished: bool, pending: bool) -> None:
        """An event for the asset: it is followed while either flag holds."""
        if not (unfinished or pending):
            self._entries.pop(key, None)
            return
        now = self._clock()
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(unfinished, pending, changed=now, visited=now)
        else:
            entry.unfinished, entry.pending, entry.changed = unfinished, pending, now

    def gone(self, key: Key) -> None:
        self._entries.pop(key, None)

    def due(self) -> Due:
        """Assets idle for `idle` seconds and not visited for as long; marked visited."""
        now = self._clock()
        resync: list[Key] = []
        notify: list[Key] = []
        for key, entry in self._entries.items():
            if now - entry.changed < self.idle or now - entry.visited < self.idle:
                continue
            entry.visited = now
            if entry.unfinished:
                resync.append(key)
            if entry.pending:
                notify.append(key)
        return Due(resync=resync, notify=notify)


async def follow_up_forever(followups: Followups,
                            resync: Callable[[str, str], Awaitable[None]],
                            notify: Callable[[str, str], None],
                            tick: float = 1.0, concurrency: int = 4) -> None:
    """Visits what is due every `tick` seconds; a failed resync is logged and the asset is
    visited again `idle` seconds later (kopf's timers retried the same way)."""
    gate = asyncio.Semaphore(concurrency)

    async def visit(namespace: str, name: str) -> None:
        async with gate:
            try:
                await resync(namespace, name)
            except asyncio.CancelledError:
                raise
            except Exception:  # the API server away for a while: the next visit
                log.exception("resync of %s/%s failed", namespace, name)

    while True:
        await asyncio.sleep(tick)
        due = followups.due()
        for namespace, name in due.notify:
            notify(namespace, name)
        if due.resync:
            await asyncio.gather(*(visit(namespace, name) for namespace, name in due.resync))
