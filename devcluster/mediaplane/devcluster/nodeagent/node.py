"""The Node object: registered once, its Ready condition refreshed on a heartbeat.

The node-lifecycle controller is not running, so nothing would mark the node NotReady;
the heartbeat keeps `lastHeartbeatTime` honest for whoever looks (kubectl, tests).
"""

from __future__ import annotations

import asyncio
import logging
import platform
from typing import Any

from mediaplane.devcluster.nodeagent.api import ApiError, Kube
from mediaplane.devcluster.nodeagent.podspec import LOCAL_IP, NODE_ALLOCATABLE
from mediaplane.devcluster.nodeagent.status import now

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 20.0
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def node_object(name: str) -> dict[str, Any]:
    arch = _ARCH.get(platform.machine(), platform.machine())
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch,
                "mediaplane.io/dev-node": "true",
            },
        },
        "spec": {},
    }


def conditions(transition: str) -> list[dict[str, Any]]:
    beat = now()

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": beat,
            "lastTransitionTime": transition,
        }

    return [
        condition(
            "Ready", "True", "KubeletReady", "mediaplane dev node agent is posting ready status"
        ),
        condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "not measured"),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "not measured"),
        condition("PIDPressure", "False", "KubeletHasSufficientPID", "not measured"),
    ]


def node_status(name: str, transition: str) -> dict[str, Any]:
    uname = platform.uname()
    return {
        "status": {
            "capacity": dict(NODE_ALLOCATABLE),
            "allocatable": dict(NODE_ALLOCATABLE),
            "conditions": conditions(transition),
            "addresses": [
                {"type": "InternalIP", "address": LOCAL_IP},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": uname.release,
                "osImage": f"{uname.system} (mediaplane dev node agent)",
                "containerRuntimeVersion": "local-process://0",
                "kubeletVersion": "mediaplane-devcluster",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": _ARCH.get(uname.machine, uname.machine),
            },
        }
    }


class NodeRegistration:
    def __init__(self, kube: Kube, name: str) -> None:
        self.kube = kube
        self.name = name
        self.transition = now()

    async def register(self) -> None:
        """Create (or take over) the Node, drop the not-ready taint admission put on it."""
        if await self.kube.get_node(self.name) is None:
            try:
                await self.kube.create_node(node_object(self.name))
            except ApiError as err:
                if err.status != 409:
                    raise
        await self.kube.patch_node(self.name, {"spec": {"taints": None}})
        await self.kube.patch_node_status(self.name, node_status(self.name, self.transition))
        log.info("node %s registered", self.name)

    async def heartbeat_forever(self, interval: float = HEARTBEAT_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.kube.patch_node_status(
                    self.name, {"status": {"conditions": conditions(self.transition)}}
                )
            except ApiError as err:
                if err.status == 404:
                    log.warning("node %s disappeared; registering again", self.name)
                    await self._register_quietly()
                else:
                    log.warning("node heartbeat failed: %s", err)
            except Exception:
                log.exception("node heartbeat failed")

    async def _register_quietly(self) -> None:
        try:
            await self.register()
        except Exception:
            log.exception("registering node %s failed", self.name)
