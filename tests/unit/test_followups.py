"""The follow-up loop's bookkeeping: which assets it resyncs or notifies, and when."""

from __future__ import annotations

import asyncio

from mediaplane.operator.followups import Followups, follow_up_forever


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_unfinished_asset_is_resynced_once_idle_then_every_interval() -> None:
    clock = Clock()
    followups = Followups(idle=30, clock=clock)
    followups.seen(("t", "a"), unfinished=True, pending=False)
    clock.now += 29
    assert followups.due().resync == []
    clock.now += 1
    assert followups.due().resync == [("t", "a")]
    clock.now += 10
    assert followups.due().resync == []  # visited 10 s ago
    clock.now += 20
    assert followups.due().resync == [("t", "a")]


def test_an_event_postpones_the_visit_as_a_kopf_idle_timer_did() -> None:
    clock = Clock()
    followups = Followups(idle=30, clock=clock)
    followups.seen(("t", "a"), unfinished=True, pending=False)
    clock.now += 25
    followups.seen(("t", "a"), unfinished=True, pending=False)
    clock.now += 25
    assert followups.due().resync == []
    clock.now += 5
    assert followups.due().resync == [("t", "a")]


def test_settled_and_deleted_assets_are_forgotten() -> None:
    clock = Clock()
    followups = Followups(idle=30, clock=clock)
    followups.seen(("t", "done"), unfinished=False, pending=False)
    followups.seen(("t", "a"), unfinished=True, pending=False)
    followups.seen(("t", "b"), unfinished=False, pending=True)
    assert len(followups) == 2
    followups.seen(("t", "a"), unfinished=False, pending=False)
    followups.gone(("t", "b"))
    assert len(followups) == 0
    clock.now += 60
    due = followups.due()
    assert due.resync == []
    assert due.notify == []


def test_pending_webhooks_are_queued_again_without_a_resync() -> None:
    clock = Clock()
    followups = Followups(idle=30, clock=clock)
    followups.seen(("t", "a"), unfinished=False, pending=True)
    clock.now += 30
    due = followups.due()
    assert due.notify == [("t", "a")]
    assert due.resync == []


def test_a_failed_resync_does_not_stop_the_loop() -> None:
    clock = Clock()
    followups = Followups(idle=30, clock=clock)
    followups.seen(("t", "bad"), unfinished=True, pending=False)
    followups.seen(("t", "good"), unfinished=True, pending=True)
    clock.now += 30
    resynced: list[str] = []
    notified: list[str] = []

    async def resync(namespace: str, name: str) -> None:
        if name == "bad":
            raise RuntimeError("the API server is away")
        resynced.append(name)

    async def run() -> None:
        loop = asyncio.create_task(follow_up_forever(
            followups, resync, lambda namespace, name: notified.append(name), tick=0.01))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if resynced:
                break
        clock.now += 30
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(resynced) == 2:
                break
        loop.cancel()

    asyncio.run(run())
    assert resynced == ["good", "good"]
    assert notified == ["good", "good"]
