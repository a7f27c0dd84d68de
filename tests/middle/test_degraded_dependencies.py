"""A backing service down or stalled gets a bounded 503 `unavailable`, never a 500 or a
hang: the routes over in-memory stores that refuse or never answer, and the real clients
(kubernetes_asyncio, boto3) against loopback sockets that refuse or stall."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kubernetes_asyncio import client as k8s
from pydantic import SecretStr

from mediaplane.api.app import create_app
from mediaplane.api.context import ApiContext
from mediaplane.api.settings import ApiSettings
from mediaplane.core import names
from mediaplane.core.errors import UnavailableError
from mediaplane.core.kubeclient import BoundedApiClient
from mediaplane.core.settings import S3Settings
from mediaplane.core.storage import Storage
from mediaplane.devcluster.tokens import mint_dev_token
from tests.support.memkube import MemoryAssets, MemoryObjects, MemoryTenants

SECRET = "s" * 40
DEADLINE = 0.5


class Stores:
    def __init__(self) -> None:
        self.assets = MemoryAssets()
        self.objects = MemoryObjects()
        self.tenants = MemoryTenants({"acme": 10_000})


@pytest.fixture
def stores() -> Stores:
    return Stores()


@pytest.fixture
def client(stores: Stores) -> Iterator[TestClient]:
    settings = ApiSettings(jwt_secret=SecretStr(SECRET), stream_signing_key=SecretStr("k" * 40),
                           request_deadline_seconds=DEADLINE)

    async def context(settings: ApiSettings) -> ApiContext:
        return ApiContext.with_settings(settings, assets=stores.assets, tenants=stores.tenants,
                                        storage=stores.objects)

    with TestClient(create_app(settings, context)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {mint_dev_token(SECRET, 'acme', 'al', 600)}"
        yield test_client


def unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"]["requestId"] == response.headers["X-Request-ID"]


def test_a_stalled_api_server_is_cut_off_at_the_deadline(client: TestClient,
                                                         stores: Stores) -> None:
    stores.assets.stalled = True
    started = time.monotonic()
    response = client.get(f"/api/v1/media/{names.new_asset_id()}")
    elapsed = time.monotonic() - started
    unavailable(response)
    assert DEADLINE <= elapsed < DEADLINE + 1.5, elapsed


def test_storage_down_is_503_on_finalize_and_named_by_readyz(client: TestClient,
                                                              stores: Stores) -> None:
    stores.objects.down = True
    unavailable(client.post(f"/api/v1/media/{names.new_asset_id()}/finalize",
                            json={"etag": "0" * 32}))
    ready = client.get("/readyz")
    unavailable(ready)
    assert [d["dependency"] for d in ready.json()["error"]["details"]] == ["storage"]

    stores.tenants.down = True
    named = {d["dependency"] for d in client.get("/readyz").json()["error"]["details"]}
    assert named == {"storage", "kubernetes"}
    stores.objects.down = stores.tenants.down = False
    assert client.get("/readyz").json() == {"status": "ready"}


# --- the real clients against loopback sockets ---------------------------------------------

def refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class StalledServer:
    """Accepts connections on loopback and never answers: a stopped (SIGSTOP) server's
    kernel still completes handshakes, which is what this plays."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def stalled() -> Iterator[StalledServer]:
    server = StalledServer()
    yield server
    server.close()


def kube_client(port: int, seconds: float) -> BoundedApiClient:
    configuration = k8s.Configuration(host=f"http://127.0.0.1:{port}")
    api = BoundedApiClient(seconds)
    api.configuration = configuration
    api.rest_client = k8s.rest.RESTClientObject(configuration)
    return api


async def test_kubernetes_client_refused_and_stalled_become_unavailable(
        stalled: StalledServer) -> None:
    for port in (refused_port(), stalled.port):
        api = kube_client(port, 0.5)
        started = time.monotonic()
        with pytest.raises(UnavailableError, match="Kubernetes API server"):
            await k8s.CoreV1Api(api).read_namespace("default")
        assert time.monotonic() - started < 2.0
        await api.close()


def storage(port: int) -> Storage:
    settings = S3Settings(endpoint=f"http://127.0.0.1:{port}", connect_timeout_seconds=0.5,
                          read_timeout_seconds=0.5, max_attempts=1)
    return Storage(settings, ("key", "secret"))


async def test_storage_refused_and_stalled_become_unavailable(stalled: StalledServer) -> None:
    for port in (refused_port(), stalled.port):
        store = storage(port)
        started = time.monotonic()
        with pytest.raises(UnavailableError, match="object storage"):
            await asyncio.to_thread(store.head, "tenants/a/assets/x/source")
        with pytest.raises(UnavailableError):
            await asyncio.to_thread(store.ping)
        assert time.monotonic() - started < 4.0
