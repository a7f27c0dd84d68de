"""Delivering webhook events to the tenants' WebhookEndpoints, at least once.

Events are recorded (pending) in the asset's status by the reconcile that saw the transition
(`notify.py`); the reconcile then queues the asset here. A worker reads the asset again,
POSTs each pending event to every endpoint of the namespace that wants it, in order, each in
the Standard Webhooks format (the `standardwebhooks` library signs `id.timestamp.body` with
the endpoint's whsec_ key), retrying failures with exponential back-off; an endpoint that
never takes an event gets it in its dead letters (status and a Warning event). The event is
then marked done in the asset's status. An operator that dies in between finds the pending
events again when it starts (a resume handler queues every asset that has some), and sends
them again: duplicates are possible, always with the same webhook-id.

Events of one asset go out in order; assets are delivered by `webhook_workers` workers.
Destinations are checked by `ssrf.py` before any connection is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from standardwebhooks import Webhook

from mediaplane.core import logs, names
from mediaplane.core.resources import (
    DeadLetter,
    MediaAsset,
    Notification,
    WebhookEndpoint,
    now_rfc3339,
)
from mediaplane.core.states import EventType
from mediaplane.operator import metrics, notify, ssrf
from mediaplane.operator.context import Context

log = logging.getLogger(__name__)
MAX_DEAD_LETTERS = 20
USER_AGENT = "mediaplane-webhooks/0.1.0"


@dataclass(frozen=True)
class Attempt:
    """One POST's outcome; `final` failures are not worth retrying (refused destination)."""

    ok: bool
    reason: str = ""
    message: str = ""
    final: bool = False


def backoff(settings_base: float, settings_max: float, attempt: int) -> float:
    """Seconds to wait after the `attempt`-th failure (1-based): base, 2 base, 4 base…"""
    return float(min(settings_max, settings_base * 2 ** (attempt - 1)))


class Dispatcher:
    def __init__(self, ctx: Context, resolver: aiohttp.abc.AbstractResolver | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.allowed = ssrf.parse_networks(ctx.settings.webhook_allowed_networks)
        self.resolver = ssrf.GuardedResolver(self.allowed, resolver)
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.queued: set[tuple[str, str]] = set()
        self.session: aiohttp.ClientSession | None = None
        self.workers: list[asyncio.Task[None]] = []
        self._endpoint_locks: dict[tuple[str, str], asyncio.Lock] = {}
        # One delivery round per asset at a time: a second worker queued for the same asset
        # waits, then reads what the first one marked done (else both would send it).
        self._asset_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = \
            weakref.WeakValueDictionary()

    # --- life ------------------------------------------------------------------------------

    def start(self) -> None:
        connector = aiohttp.TCPConnector(resolver=self.resolver, use_dns_cache=False, limit=64)
        self.session = aiohttp.ClientSession(connector=connector,
                                             headers={"User-Agent": USER_AGENT})
        self.workers = [asyncio.create_task(self._work(), name=f"webhooks-{i}")
                        for i in range(self.settings.webhook_workers)]

    async def close(self) -> None:
        for task in self.workers:
            task.cancel()
        for task in self.workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.session is not None:
            await self.session.close()

    def enqueue(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        if key not in self.queued:
            self.queued.add(key)
            self.queue.put_nowait(key)
            metrics.WEBHOOK_QUEUE.set(self.queue.qsize())

    async def _work(self) -> None:
        while True:
            key = await self.queue.get()
            self.queued.discard(key)
            metrics.WEBHOOK_QUEUE.set(self.queue.qsize())
            with logs.bound(tenant=key[0], asset_id=names.asset_id_from_name(key[1])):
                try:
                    await self.deliver_asset(*key)
                except Exception:  # the asset stays pending: the timer queues it again
                    log.exception("webhook delivery for %s/%s failed", *key)

    # --- one asset's pending events ----------------------------------------------------------

    async def deliver_asset(self, namespace: str, name: str) -> int:
        """Delivers the asset's pending events in order; the number marked done."""
        lock = self._asset_locks.get((namespace, name))
        if lock is None:
            lock = self._asset_locks[(namespace, name)] = asyncio.Lock()
        async with lock:
            return await self._deliver_asset(namespace, name)

    async def _deliver_asset(self, namespace: str, name: str) -> int:
        asset = await self.ctx.kube.get_asset(namespace, name)
        if asset is None or not asset.status.pending_notifications:
            return 0
        endpoints = await self.ctx.kube.webhook_endpoints(namespace)
        count = 0
        for notification in asset.status.pending_notifications:
            body = notify.payload(asset, notification)
            wanting = [e for e in endpoints if e.spec.wants(notification.type)]
            await asyncio.gather(*(self.deliver(e, asset, notification, body)
                                   for e in wanting))
            await self._mark_done(namespace, name, notification.id)
            count += 1
        return count

    async def _mark_done(self, namespace: str, name: str, notification_id: str) -> None:
        async with self.ctx.lock(namespace, name):
            asset = await self.ctx.kube.get_asset(namespace, name)
            if asset is None:
                return
            status = asset.status.model_copy(update={"notifications": notify.mark_done(
                asset.status.notifications, {notification_id})})
            await self.ctx.kube.patch_asset_status(namespace, name, status)

    async def deliver(self, endpoint: WebhookEndpoint, asset: MediaAsset,
                      notification: Notification, body: dict[str, Any]) -> bool:
        """Every attempt the settings allow; True once delivered, False once dead-lettered."""
        attempts = self.settings.webhook_attempts
        attempt = Attempt(ok=False)
        for number in range(1, attempts + 1):
            attempt = await self.attempt(endpoint, notification, body)
            if attempt.ok:
                return True
            if attempt.final or number == attempts:
                break
            await asyncio.sleep(backoff(self.settings.webhook_backoff_seconds,
                                        self.settings.webhook_max_backoff_seconds, number))
        await self.dead_letter(endpoint, asset, notification, number, attempt)
        return False

    # --- one POST ----------------------------------------------------------------------------

    async def attempt(self, endpoint: WebhookEndpoint, notification: Notification,
                      body: dict[str, Any]) -> Attempt:
        outcome = await self._attempt(endpoint, notification, body)
        label = "delivered" if outcome.ok else ("refused" if outcome.final else "failed")
        metrics.WEBHOOK_ATTEMPTS.labels(label).inc()
        if not outcome.ok:
            log.info("webhook %s to %s/%s: %s %s", notification.id, endpoint.namespace,
                     endpoint.name, outcome.reason, outcome.message)
        return outcome

    async def _attempt(self, endpoint: WebhookEndpoint, notification: Notification,
                       body: dict[str, Any]) -> Attempt:
        url = endpoint.spec.url
        try:
            ssrf.check_url(url, self.allowed)
        except ssrf.DestinationRefusedError as refused:
            return Attempt(False, "DestinationRefused", str(refused), final=True)
        ref = endpoint.spec.secret_ref
        secret = await self.ctx.kube.secret_value(endpoint.namespace, ref.name, ref.key)
        if not secret:
            return Attempt(False, "SecretUnavailable",
                           f"no key {ref.key!r} in Secret {endpoint.namespace}/{ref.name} (or "
                           "a Secret name the installation does not let the operator read)")
        try:
            signer = Webhook(secret)
        except Exception as error:  # not base64, empty: the tenant must fix it
            return Attempt(False, "InvalidSecret", f"the signing key is unusable: {error}",
                           final=True)
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        sent_at = datetime.now(UTC)
        headers = {"webhook-id": notification.id,
                   "webhook-timestamp": str(int(sent_at.timestamp())),
                   "webhook-signature": signer.sign(notification.id, sent_at, data),
                   "content-type": "application/json"}
        assert self.session is not None, "Dispatcher.start() first"
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_seconds)
        try:
            async with self.session.post(url, data=data.encode(), headers=headers,
                                         timeout=timeout, allow_redirects=False) as response:
                await response.read()
                status = response.status
        except ssrf.DestinationRefusedError as refused:
            return Attempt(False, "DestinationRefused", str(refused), final=True)
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            return Attempt(False, "ConnectionFailed", f"{type(error).__name__}: {error}")
        if 200 <= status < 300:
            return Attempt(True)
        return Attempt(False, "HttpStatus", f"the endpoint answered HTTP {status}")

    async def dead_letter(self, endpoint: WebhookEndpoint, asset: MediaAsset,
                          notification: Notification, attempts: int, last: Attempt) -> None:
        metrics.WEBHOOK_DEAD_LETTERS.inc()
        letter = DeadLetter(id=notification.id, type=notification.type,
                            asset_id=asset.asset_id, attempts=attempts, reason=last.reason,
                            message=last.message[:512], at=now_rfc3339())
        key = (endpoint.namespace, endpoint.name)
        lock = self._endpoint_locks.setdefault(key, asyncio.Lock())
        async with lock:
            current = await self.ctx.kube.get_webhook_endpoint(*key)
            if current is None:
                return
            status = current.status.model_copy(update={
                "dead_lettered": (current.status.dead_lettered or 0) + 1,
                "dead_letters": [*current.status.dead_letters, letter][-MAX_DEAD_LETTERS:]})
            await self.ctx.kube.patch_webhook_endpoint_status(*key, status)
        self.ctx.kube.post_event(current, EventType.WARNING, "WebhookDeadLettered",
                                 f"{notification.type.value} of {asset.asset_id} "
                                 f"({notification.id}) after {attempts} attempts: "
                                 f"{last.reason}: {last.message}")

    # --- deletion: one round per call of the delete handler -----------------------------------

    async def announce_deleted(self, asset: MediaAsset, round_number: int) -> bool:
        """One attempt at every endpoint that wants `asset.deleted`; False when some failed
        and a later round may retry (the delete handler's own back-off), True when done
        (delivered, or dead-lettered on the last round or for good)."""
        notification = notify.deleted(asset, now_rfc3339())
        body = notify.payload(asset, notification)
        endpoints = [e for e in await self.ctx.kube.webhook_endpoints(asset.tenant)
                     if e.spec.wants(notification.type)]
        outcomes = await asyncio.gather(*(self.attempt(e, notification, body)
                                          for e in endpoints))
        failed = [(e, o) for e, o in zip(endpoints, outcomes, strict=True) if not o.ok]
        last_round = round_number + 1 >= self.settings.webhook_attempts
        retry = [(e, o) for e, o in failed if not o.final]
        if retry and not last_round:
            return False
        for endpoint, outcome in failed:
            await self.dead_letter(endpoint, asset, notification, round_number + 1, outcome)
        return True

    def delay(self, round_number: int) -> float:
        return backoff(self.settings.webhook_backoff_seconds,
                       self.settings.webhook_max_backoff_seconds, round_number + 1)


def has_pending(asset: MediaAsset) -> bool:
    return bool(asset.status.pending_notifications) and not asset.deleting

