"""The workers' ServiceAccount in a tenant namespace, made by the operator's Kube client."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from mediaplane.devcluster.cluster import DevCluster
from mediaplane.operator.kube import Kube
from mediaplane.operator.rest import KubeRest


async def test_worker_service_account_is_created_once_without_a_token(
        cluster: DevCluster, kube_api: k8s.ApiClient, tenant: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", cluster.env()["KUBECONFIG"])
    kube = Kube(await KubeRest.connect(30))
    try:
        assert await kube.ensure_service_account(tenant, "mediaplane-worker") is True
        assert await kube.ensure_service_account(tenant, "mediaplane-worker") is False
    finally:
        await kube.close()
    account = k8s.CoreV1Api(kube_api).read_namespaced_service_account("mediaplane-worker", tenant)
    assert account.automount_service_account_token is False
    assert account.metadata.labels["app.kubernetes.io/component"] == "worker"
