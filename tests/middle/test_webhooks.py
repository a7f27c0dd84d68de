"""Webhook events over the operator's in-memory Kube: which events an asset's life records,
and the dispatcher delivering them to a real HTTP receiver on loopback that verifies each
signature with the `standardwebhooks` library, as a user's application would.

The refusal of private destinations is shown with the socket layer watched: nothing is
connected, not even attempted, before the refusal.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from standardwebhooks import Webhook

from mediaplane.core.resources import (
    MediaAssetStatus,
    ObjectMeta,
    SecretKeyRef,
    WebhookEndpoint,
    WebhookEndpointSpec,
)
from mediaplane.core.states import AssetPhase, NotificationState, WebhookEvent
from mediaplane.core.tasks import Verdict
from mediaplane.operator import notify, ssrf
from mediaplane.operator.settings import OperatorSettings
from mediaplane.operator.webhooks import Dispatcher
from tests.middle.test_reconcile import TENANT, Pipeline

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass
class Receiver:
    """A user's webhook handler: verifies, then answers `status` (a list, popped in turn)."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (id, payload)
    refused_signatures: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        try:
            payload = Webhook(SECRET).verify(body, dict(request.headers))
        except Exception:
            self.refused_signatures += 1
            return web.Response(status=400)
        status = self.statuses.pop(0) if self.statuses else 204
        if status < 300:
            self.received.append((request.headers["webhook-id"], payload))
        return web.Response(status=status)

    def types(self) -> list[str]:
        return [p["type"] for _, p in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/hooks"
    yield found
    await runner.cleanup()


def _endpoint(url: str, name: str = "app", events: list[WebhookEvent] | None = None
              ) -> WebhookEndpoint:
    return WebhookEndpoint(metadata=ObjectMeta(name=name, namespace=TENANT),
                           spec=WebhookEndpointSpec(url=url, events=events or [],
                                                    secret_ref=SecretKeyRef(name="hooks")))


def _dispatcher(pipeline: Pipeline, allowed: str = "127.0.0.0/8", attempts: int = 3,
                resolver: AbstractResolver | None = None) -> Dispatcher:
    pipeline.ctx.settings = OperatorSettings(
        webhook_allowed_networks=allowed, webhook_attempts=attempts,
        webhook_backoff_seconds=0.01, webhook_max_backoff_seconds=0.05)
    pipeline.kube.secrets[(TENANT, "hooks")] = {"secret": SECRET}
    dispatcher = Dispatcher(pipeline.ctx, resolver)
    dispatcher.start()
    return dispatcher


async def test_an_assets_life_records_its_events_once_each() -> None:
    pipeline = Pipeline()
    pipeline.add_video()
    asset = await pipeline.run()
    events = [(n.type, n.state) for n in asset.status.notifications]
    assert events == [(WebhookEvent.ASSET_CREATED, NotificationState.PENDING),
                      (WebhookEvent.ASSET_PLAYABLE, NotificationState.PENDING),
                      (WebhookEvent.ASSET_READY, NotificationState.PENDING)]
    # Ids are per (asset, event): the same on every attempt, different between events.
    assert len({n.id for n in asset.status.notifications}) == 3
    assert asset.status.notifications[0].id == notify.message_id(
        asset.metadata.uid or "", WebhookEvent.ASSET_CREATED)
    await pipeline.resume()  # a restarted operator records nothing twice
    assert len(pipeline.asset().status.notifications) == 3

    quarantined = Pipeline(verdict=Verdict.QUARANTINED)
    quarantined.add_video()
    recorded = [n.type for n in (await quarantined.run()).status.notifications]
    assert recorded == [WebhookEvent.ASSET_CREATED, WebhookEvent.ASSET_QUARANTINED]


def test_failed_and_caption_events_are_due_from_the_status() -> None:
    pipeline = Pipeline()
    asset = pipeline.add_video()
    failed = MediaAssetStatus(phase=AssetPhase.FAILED, playable=False)
    assert [e for e, _ in notify.due(asset, failed)] == [WebhookEvent.ASSET_CREATED,
                                                         WebhookEvent.ASSET_FAILED]
    from mediaplane.core.resources import GeneratedCaption

    captioned = MediaAssetStatus(phase=AssetPhase.READY, playable=True, captions=[
        GeneratedCaption(language="en-US", key="k", approved=False, model="whisper-base")])
    assert (WebhookEvent.CAPTION_READY, "en-US") in notify.due(asset, captioned)


async def test_delivered_in_order_signed_retried_with_the_same_id_and_marked_done(
        receiver: Receiver) -> None:
    pipeline = Pipeline()
    pipeline.add_video()
    await pipeline.run()
    pipeline.kube.add_webhook_endpoint(_endpoint(receiver.url))
    # Only the playable event and the complete one for this second endpoint.
    other = _endpoint(receiver.url + "?second", "second", [WebhookEvent.ASSET_READY])
    pipeline.kube.add_webhook_endpoint(other)
    receiver.statuses = [503, 500]  # the first two POSTs fail
    dispatcher = _dispatcher(pipeline)
    try:
        assert await dispatcher.deliver_asset(TENANT, pipeline.name) == 3
    finally:
        await dispatcher.close()
    assert receiver.refused_signatures == 0
    assert receiver.types() == ["asset.created", "asset.playable", "asset.ready",
                                "asset.ready"]
    asset = pipeline.asset()
    assert [i for i, _ in receiver.received][:3] == [n.id for n in asset.status.notifications]
    assert all(n.state is NotificationState.DONE for n in asset.status.notifications)
    payload = receiver.received[1][1]
    assert payload["data"]["id"] == asset.asset_id
    assert payload["data"]["status"] == "ready"
    assert payload["data"]["playable"] is True
    # Nothing pending: a second round sends nothing.
    dispatcher = _dispatcher(pipeline)
    try:
        assert await dispatcher.deliver_asset(TENANT, pipeline.name) == 0
    finally:
        await dispatcher.close()
    assert len(receiver.received) == 4


async def test_an_endpoint_that_never_answers_gets_a_dead_letter(receiver: Receiver) -> None:
    pipeline = Pipeline()
    pipeline.add_video()
    await pipeline.run()
    pipeline.kube.add_webhook_endpoint(_endpoint(receiver.url, events=[
        WebhookEvent.ASSET_CREATED]))
    receiver.statuses = [500, 500, 500]
    dispatcher = _dispatcher(pipeline, attempts=3)
    try:
        await dispatcher.deliver_asset(TENANT, pipeline.name)
    finally:
        await dispatcher.close()
    endpoint = await pipeline.kube.get_webhook_endpoint(TENANT, "app")
    assert endpoint is not None
    assert endpoint.status.dead_lettered == 1
    letter = endpoint.status.dead_letters[0]
    assert (letter.type, letter.attempts, letter.reason) == (
        WebhookEvent.ASSET_CREATED, 3, "HttpStatus")
    assert "HTTP 500" in letter.message
    assert "WebhookDeadLettered" in pipeline.kube.reasons("app")
    # Dead-lettered is done with: the asset no longer holds it pending.
    assert not pipeline.asset().status.pending_notifications


class _PrivateName(AbstractResolver):
    """DNS that answers a private address for every name (as an attacker's zone would)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        return [{"hostname": host, "host": "10.1.2.3", "port": port, "family": family,
                 "proto": 0, "flags": 0}]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("url", ["http://10.1.2.3/hooks", "http://169.254.169.254/latest",
                                 "http://hooks.internal.example/hooks",
                                 "http://[::1]:9/hooks"])
async def test_private_destinations_are_refused_before_any_connection(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    connects: list[Any] = []
    loop = asyncio.get_running_loop()
    original = loop.create_connection

    async def watched(*args: Any, **kwargs: Any) -> Any:
        connects.append(args)
        return await original(*args, **kwargs)

    monkeypatch.setattr(loop, "create_connection", watched)
    monkeypatch.setattr(socket.socket, "connect", lambda *a: connects.append(a))
    pipeline = Pipeline()
    pipeline.add_video()
    await pipeline.run()
    pipeline.kube.add_webhook_endpoint(_endpoint(url))
    resolver = _PrivateName()
    dispatcher = _dispatcher(pipeline, allowed="", attempts=5, resolver=resolver)
    try:
        await dispatcher.deliver_asset(TENANT, pipeline.name)
    finally:
        await dispatcher.close()
    assert connects == []
    endpoint = await pipeline.kube.get_webhook_endpoint(TENANT, "app")
    assert endpoint is not None
    letters = endpoint.status.dead_letters
    assert [(x.reason, x.attempts) for x in letters] == [("DestinationRefused", 1)] * 3
    assert "not allowed for webhooks" in letters[0].message
    assert resolver.asked == (["hooks.internal.example"] * 3 if "internal" in url else [])


def test_allowed_networks_and_public_addresses() -> None:
    import ipaddress

    loopback = ssrf.parse_networks("127.0.0.0/8")
    assert ssrf.refusal(ipaddress.ip_address("127.0.0.1"), loopback) is None
    assert ssrf.refusal(ipaddress.ip_address("127.0.0.1"), []) is not None
    assert ssrf.refusal(ipaddress.ip_address("192.168.1.1"), loopback) is not None
    assert ssrf.refusal(ipaddress.ip_address("::ffff:10.0.0.1"), []) is not None
    assert ssrf.refusal(ipaddress.ip_address("93.184.216.34"), []) is None
    with pytest.raises(ssrf.DestinationRefusedError):
        ssrf.check_url("ftp://example.com/x", [])
