"""One way to reach the Kubernetes API from a service: in-cluster, else $KUBECONFIG."""

from __future__ import annotations

from kubernetes_asyncio import client, config


async def connect() -> client.ApiClient:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        await config.load_kube_config()
    return client.ApiClient()
