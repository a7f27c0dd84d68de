"""Webhooks end to end: a tenant's WebhookEndpoint, the real operator, the real API, and a
receiver on loopback that verifies every signature with the `standardwebhooks` library and
counts what it was told, across a SIGKILL of the operator while events were pending.

How the count treats duplicates: delivery is at least once, so the same event may arrive
twice (an operator killed between a POST and marking the event done sends it again). A
duplicate always carries the same webhook-id, so the receiver counts distinct ids, and the
test asserts exactly one id per expected (asset, event[, language]) and no id for anything
else. The raw number of deliveries is reported beside it.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client as k8s
from standardwebhooks import Webhook

from mediaplane.core import names
from tests.conftest import OperatorHandle
from tests.support.api import ApiUser, post_form
from tests.support.apienv import UserFactory
from tests.support.media import Media

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
Key = tuple[str, str, str]  # (asset id, event type, language or "")


@dataclass
class Receiver:
    """A user's application: verifies each POST, answers 503 while `down`."""

    down: bool = True
    deliveries: list[tuple[str, Key]] = field(default_factory=list)  # accepted: (id, key)
    refused_while_down: int = 0
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, headers: dict[str, str], body: bytes) -> int:
        try:
            payload: dict[str, Any] = Webhook(SECRET).verify(body, headers)
        except Exception:
            with self.lock:
                self.bad_signatures += 1
            return 400
        with self.lock:
            if self.down:
                self.refused_while_down += 1
                return 503
            data = payload["data"]
            self.deliveries.append((headers["webhook-id"], (
                data["id"], payload["type"], data.get("language") or "")))
        return 204

    def distinct(self) -> dict[Key, set[str]]:
        with self.lock:
            found: dict[Key, set[str]] = {}
            for message_id, key in self.deliveries:
                found.setdefault(key, set()).add(message_id)
            return found

    def wait_for(self, keys: set[Key], timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not keys <= set(self.distinct()):
            if time.monotonic() > deadline:
                raise AssertionError(f"missing {keys - set(self.distinct())}; got "
                                     f"{self.distinct()}")
            time.sleep(0.25)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = found.accept(dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found, f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()
    server.server_close()


def _endpoint(tenant: str, name: str, url: str, events: list[str] | None = None
              ) -> dict[str, Any]:
    spec: dict[str, Any] = {"url": url, "secretRef": {"name": "mediaplane-webhook-signing"}}
    if events:
        spec["events"] = events
    return {"apiVersion": f"{names.GROUP}/{names.VERSION}", "kind": "WebhookEndpoint",
            "metadata": {"name": name, "namespace": tenant}, "spec": spec}


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def _upload_as(user: ApiUser, item: Media, mime: str) -> str:
    grant = user.upload_url(item, mime=mime)
    etag = post_form(grant, item.data, item.path.name)
    user.finalize(grant["assetId"], etag)
    return str(grant["assetId"])


def test_every_event_arrives_signed_once_per_id_across_an_operator_restart(
        operator: OperatorHandle, kube_api: k8s.ApiClient, make_tenant: Callable[..., str],
        make_user: UserFactory, receiver: tuple[Receiver, str], clip: Media,
        image: Media) -> None:
    hooks, url = receiver
    tenant = make_tenant()
    core, custom = k8s.CoreV1Api(kube_api), k8s.CustomObjectsApi(kube_api)
    core.create_namespaced_secret(tenant, {"metadata": {"name": "mediaplane-webhook-signing"},
                                           "stringData": {"secret": SECRET}})
    for body in (_endpoint(tenant, "app", url),
                 # A private address: refused by the operator before any connection.
                 _endpoint(tenant, "internal", "http://10.255.255.1:8080/hooks",
                           ["asset.created"])):
        custom.create_namespaced_custom_object(names.GROUP, names.VERSION, tenant,
                                               names.WEBHOOK_PLURAL, body)
    alice = make_user(tenant, "alice")

    # The receiver is down: asset.created is recorded, attempted and refused (503)...
    clip_id = alice.upload(clip)
    _wait(lambda: hooks.refused_while_down > 0, "a first (refused) delivery attempt")
    asset = custom.get_namespaced_custom_object(names.GROUP, names.VERSION, tenant,
                                                names.ASSET_PLURAL,
                                                names.name_from_asset_id(clip_id))
    pending = [n["type"] for n in asset["status"]["notifications"]
               if n.get("state", "pending") == "pending"]
    assert "asset.created" in pending
    # ...and the operator is killed with it pending. The receiver comes back, then the
    # operator: nothing was lost.
    operator.kill()
    hooks.down = False
    operator.start()

    try:
        hooks.wait_for({(clip_id, "asset.created", ""), (clip_id, "asset.playable", ""),
                        (clip_id, "asset.ready", "")})
    except AssertionError:
        now = custom.get_namespaced_custom_object(names.GROUP, names.VERSION, tenant,
                                                  names.ASSET_PLURAL,
                                                  names.name_from_asset_id(clip_id))
        print("asset when the wait ended:", now["status"].get("phase"),
              now["status"].get("notifications"), operator.log_tail())
        raise
    alice.call("POST", f"/api/v1/media/{clip_id}/captions", expect=201,
               json={"language": "en-US", "content": "WEBVTT\n\n00:00.000 --> 00:01.000\nHi\n"})
    hooks.wait_for({(clip_id, "caption.ready", "en-US")})
    alice.call("DELETE", f"/api/v1/media/{clip_id}", expect=204)
    hooks.wait_for({(clip_id, "asset.deleted", "")})

    # Bytes that are not what they say: created, then quarantined (never playable).
    fake_id = _upload_as(alice, image, "video/mp4")
    hooks.wait_for({(fake_id, "asset.created", ""), (fake_id, "asset.quarantined", "")})

    expected = {(clip_id, "asset.created", ""), (clip_id, "asset.playable", ""),
                (clip_id, "asset.ready", ""), (clip_id, "caption.ready", "en-US"),
                (clip_id, "asset.deleted", ""), (fake_id, "asset.created", ""),
                (fake_id, "asset.quarantined", "")}
    time.sleep(3)  # anything unexpected or duplicated would arrive by now
    distinct = hooks.distinct()
    assert set(distinct) == expected
    assert all(len(ids) == 1 for ids in distinct.values()), distinct
    assert hooks.bad_signatures == 0
    raw = Counter(key for _, key in hooks.deliveries)
    print(f"webhooks: {len(expected)} distinct events, {len(hooks.deliveries)} deliveries "
          f"accepted ({sum(n - 1 for n in raw.values())} duplicates of the same id), "
          f"{hooks.refused_while_down} attempts refused while the receiver was down")

    internal = custom.get_namespaced_custom_object(names.GROUP, names.VERSION, tenant,
                                                   names.WEBHOOK_PLURAL, "internal")
    letters = internal["status"]["deadLetters"]
    assert {(x["assetId"], x["reason"], x["attempts"]) for x in letters} == {
        (clip_id, "DestinationRefused", 1), (fake_id, "DestinationRefused", 1)}
    assert "10.255.255.1" in letters[0]["message"]
