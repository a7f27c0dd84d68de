"""The mediaplane services themselves on the dev cluster: the operator and the REST API.

They run as local processes with the cluster's environment. The worker command is the
absolute path of this virtualenv's `mediaplane-worker`, because the node agent runs pods'
commands on the host with nothing of its own environment but PATH; on a real node
(`--node=containers`) the Jobs run the worker image instead.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mediaplane.devcluster.cluster import DevCluster
    from mediaplane.devcluster.processes import ManagedProcess


def worker_command() -> list[str]:
    return [str(Path(sys.executable).parent / "mediaplane-worker")]


def speech_model_volume() -> dict[str, object]:
    """The assembled Whisper model as the caption pods' volume: a hostPath, which the node
    agent maps to the host directory itself (a cluster mounts a PVC or an image instead)."""
    from mediaplane.devcluster import models

    return {"hostPath": {"path": str(models.assemble()), "type": "Directory"}}


def ai_catalog_path(cluster_env: Mapping[str, str]) -> Path:
    """The dev cluster's AI catalogue (absent: speech only); the operator and the API both
    read it, and read it again when it changes (`mediaplane.core.ai`)."""
    return Path(cluster_env["MEDIAPLANE_DEV_DIR"]) / "ai-catalog.json"


def operator_env(cluster_env: Mapping[str, str]) -> dict[str, str]:
    env = {**os.environ, **cluster_env}
    env.setdefault("MEDIAPLANE_WORKER_COMMAND", json.dumps(worker_command()))
    env.setdefault("MEDIAPLANE_JOB_BACKOFF_LIMIT", "3")
    # The operator sets the bucket's CORS rules at start-up, as the chart has it do (the
    # dev cluster set the same rules already: this proves the operator's path works).
    env.setdefault("MEDIAPLANE_BUCKET_CORS", "true")
    env.setdefault("MEDIAPLANE_SPEECH_MODEL_VOLUME", json.dumps(speech_model_volume()))
    # One node of 2 cores: two chunk pods of one thread each keep both cores busy.
    env.setdefault("MEDIAPLANE_CAPTION_PARALLELISM", "2")
    env.setdefault("MEDIAPLANE_CAPTION_CPU_THREADS", "1")
    env.setdefault("MEDIAPLANE_AI_CATALOG_FILE", str(ai_catalog_path(cluster_env)))
    env.setdefault("MEDIAPLANE_AI_JOB_BACKOFF_LIMIT", "1")
    # Voices added to the catalogue are Piper files in this folder (a hostPath for the node
    # agent, mounted at /voices in speech Jobs, as a volume would be on a cluster).
    voices = Path(cluster_env["MEDIAPLANE_DEV_DIR"]) / "voices"
    env.setdefault("MEDIAPLANE_AI_VOICES_VOLUME", json.dumps(
        {"hostPath": {"path": str(voices), "type": "DirectoryOrCreate"}}))
    # Webhook receivers of a developer (and the tests') run on this machine: loopback is
    # allowed here, which a real install allows only if its admin says so.
    env.setdefault("MEDIAPLANE_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
    env.setdefault("MEDIAPLANE_METRICS_ADDRESS", "127.0.0.1")
    return env


def container_worker_env(cluster: DevCluster) -> dict[str, str]:
    """On a real node the Jobs run the worker image (built here, pinned by digest) and its
    own command; the S3 endpoint the pods are handed is the host's end of the node link."""
    if cluster.node is None:
        return {}
    worker = cluster.node.build_images()["worker"]
    return {"MEDIAPLANE_WORKER_IMAGE": worker.pinned,
            "MEDIAPLANE_WORKER_COMMAND": json.dumps(["mediaplane-worker"])}


def start_operator(cluster: DevCluster,
                   extra_env: Mapping[str, str] | None = None) -> ManagedProcess:
    """Starts the operator standalone (one replica), tied to the cluster's life. Its
    metrics are on a free loopback port unless `extra_env` names one
    (MEDIAPLANE_METRICS_PORT); the port is in the process's log and its env."""
    from mediaplane.devcluster.ports import free_port

    env = operator_env({**cluster.env(), **container_worker_env(cluster)})
    env.update(extra_env or {})
    env.setdefault("MEDIAPLANE_METRICS_PORT", str(free_port()))
    return cluster.spawn(
        "operator",
        [sys.executable, "-m", "mediaplane.operator", "--standalone"],
        env,
        stop_timeout=10.0,
    )


def start_api(cluster: DevCluster, *, wait: bool = True,
              extra_env: Mapping[str, str] | None = None) -> ManagedProcess:
    """Starts the REST API on the cluster's API port, tied to the cluster's life."""
    from mediaplane.devcluster.processes import wait_until

    env = {**os.environ, **cluster.env(), **(extra_env or {})}
    # A dev cluster may have pages of assets and several users: keep the contract's limit.
    env.setdefault("MEDIAPLANE_API_RATE_LIMIT_STORAGE", "memory://")
    env.setdefault("MEDIAPLANE_API_AI_CATALOG_FILE", str(ai_catalog_path(cluster.env())))
    process = cluster.spawn(
        "api",
        [sys.executable, "-m", "mediaplane.api", "--host", "127.0.0.1",
         "--port", str(cluster.api_port), "--log-level", "warning"],
        env,
        stop_timeout=10.0,
    )
    if wait:
        import httpx

        def ready() -> bool:
            if not process.alive():
                raise RuntimeError(f"the API exited: {process.log_tail(30)}")
            try:
                return httpx.get(f"{cluster.api_url}/readyz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=30.0, what="the REST API")
    return process
