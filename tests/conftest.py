"""Session-wide real environment: one control plane, one S3 server, one operator.

Started once per test session (about 20 s warm); each test gets its own namespace, which
is a tenant. Nothing here is a mock: the tests that use these fixtures talk to a real
kube-apiserver, the real Job controller and garbage collector, SeaweedFS and ffmpeg.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.client import Config
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.ports import free_port
from mediaplane.devcluster.processes import ManagedProcess
from mediaplane.devcluster.services import start_operator
from tests.support import media
from tests.support.assets import Assets

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# The REST API's fixtures (api_url, make_tenant, make_user...), shared by every folder.
pytest_plugins = ("tests.support.apienv",)


class OperatorHandle:
    """The operator as a real process, so a test can kill it (SIGKILL) and start it again."""

    def __init__(self, cluster: DevCluster) -> None:
        self.cluster = cluster
        self.process: ManagedProcess | None = None
        # The same metrics port across restarts, so a test can scrape it before and after.
        self.metrics_port = free_port()
        # Webhook retries quick enough for a test to see several (the defaults are minutes).
        self.extra_env: dict[str, str] = {"MEDIAPLANE_WEBHOOK_BACKOFF_SECONDS": "0.5",
                                          "MEDIAPLANE_WEBHOOK_MAX_BACKOFF_SECONDS": "2",
                                          "MEDIAPLANE_WEBHOOK_ATTEMPTS": "20"}

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> None:
        self.process = start_operator(self.cluster, {
            "MEDIAPLANE_METRICS_PORT": str(self.metrics_port), **self.extra_env})

    def kill(self) -> None:
        assert self.process is not None
        self.process.popen.kill()
        self.process.popen.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def log_tail(self) -> str:
        return self.process.log_tail(80) if self.process else ""


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    state = Path(tmp_path_factory.mktemp("devcluster"))
    dev = DevCluster(state, api_port=free_port())
    try:
        dev.start()
        yield dev
    finally:
        dev.stop()


@pytest.fixture(scope="session")
def operator(cluster: DevCluster) -> Iterator[OperatorHandle]:
    handle = OperatorHandle(cluster)
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def kube_api(cluster: DevCluster) -> k8s.ApiClient:
    return k8s_config.new_client_from_config(config_file=cluster.env()["KUBECONFIG"])


@pytest.fixture(scope="session")
def s3(cluster: DevCluster) -> S3Client:
    env = cluster.env()
    return boto3.client(
        "s3", endpoint_url=env["MEDIAPLANE_S3_ENDPOINT"], region_name=env["MEDIAPLANE_S3_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


@pytest.fixture(scope="session")
def bucket(cluster: DevCluster) -> str:
    return cluster.env()["MEDIAPLANE_S3_BUCKET"]


@pytest.fixture
def tenant(kube_api: k8s.ApiClient, operator: OperatorHandle) -> Iterator[str]:
    """A fresh namespace; deleted afterwards (the operator's finalizer cleans storage)."""
    del operator
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = k8s.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="session")
def clip(media_dir: Path) -> media.Media:
    return media.video_clip(media_dir)


@pytest.fixture(scope="session")
def image(media_dir: Path) -> media.Media:
    return media.png_image(media_dir)


@pytest.fixture(scope="session")
def audio(media_dir: Path) -> media.Media:
    return media.mp3_audio(media_dir)


CLUSTER_FIXTURES = {"cluster", "operator", "tenant", "kube_api", "s3", "api_url"}
STORAGE_FIXTURES = {"s3_server", "s3_bucket"}


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """Tests that start a server are marked by the fixtures they use, so `make unit` can
    leave them out: `cluster` (the control plane, S3, the operator) and `storage` (S3)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & CLUSTER_FIXTURES:
            item.add_marker(pytest.mark.cluster)
        if used & STORAGE_FIXTURES:
            item.add_marker(pytest.mark.storage)



@pytest.fixture(scope="session")
def assets(kube_api: k8s.ApiClient, s3: S3Client, bucket: str) -> Assets:
    return Assets(kube_api, s3, bucket)
