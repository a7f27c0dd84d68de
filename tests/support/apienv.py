"""The REST API as a real process beside the operator, and users of two tenants.

A pytest plugin (the root conftest loads it), so that every test folder that needs the API
(tests/api, tests/cli, tests/webhooks, tests/observability) shares the one API process.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client as k8s

from mediaplane.core.names import MAX_UPLOAD_ANNOTATION, TENANT_LABEL
from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.ports import free_port
from mediaplane.devcluster.services import start_api
from mediaplane.devcluster.tokens import mint_dev_token
from tests.conftest import OperatorHandle
from tests.support.api import ApiUser

UserFactory = Callable[..., ApiUser]


@pytest.fixture(scope="session")
def web_origin() -> str:
    """The origin of the browser tests' own pages (another loopback port than the API's and
    the storage's): the API allows it to call the JSON API."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def api_url(cluster: DevCluster, operator: OperatorHandle, web_origin: str) -> Iterator[str]:
    del operator
    process = start_api(cluster, extra_env={"MEDIAPLANE_API_CORS_ALLOWED_ORIGINS": web_origin})
    yield cluster.api_url
    process.stop()


@pytest.fixture(scope="session")
def jwt_secret(cluster: DevCluster) -> str:
    return cluster.env()["MEDIAPLANE_API_JWT_SECRET"]


@pytest.fixture(scope="session")
def stream_key(cluster: DevCluster) -> str:
    return cluster.env()["MEDIAPLANE_API_STREAM_SIGNING_KEY"]


@pytest.fixture
def make_tenant(kube_api: k8s.ApiClient, operator: OperatorHandle) -> Iterator[Callable[..., str]]:
    """Creates labelled tenant namespaces (as `mediaplane tenant create` does)."""
    del operator
    core = k8s.CoreV1Api(kube_api)
    made: list[str] = []

    def make(max_upload_bytes: int | None = None, labelled: bool = True) -> str:
        name = f"t-{uuid.uuid4().hex[:10]}"
        metadata: dict[str, object] = {"name": name}
        if labelled:
            metadata["labels"] = {TENANT_LABEL: "true"}
        if max_upload_bytes is not None:
            metadata["annotations"] = {MAX_UPLOAD_ANNOTATION: str(max_upload_bytes)}
        core.create_namespace({"metadata": metadata})
        made.append(name)
        return name

    yield make
    for name in made:
        core.delete_namespace(name)


@pytest.fixture
def make_user(api_url: str, jwt_secret: str) -> Iterator[UserFactory]:
    users: list[ApiUser] = []

    def make(tenant: str, user: str | None = None, ttl: int = 3600) -> ApiUser:
        name = user or f"user-{uuid.uuid4().hex[:6]}"
        api_user = ApiUser(api_url, tenant, name, mint_dev_token(jwt_secret, tenant, name, ttl))
        users.append(api_user)
        return api_user

    yield make
    for u in users:
        u.close()


@pytest.fixture
def alice(make_tenant: Callable[..., str], make_user: UserFactory) -> ApiUser:
    return make_user(make_tenant(), "alice")


@pytest.fixture
def mallory(make_tenant: Callable[..., str], make_user: UserFactory) -> ApiUser:
    return make_user(make_tenant(), "mallory")
