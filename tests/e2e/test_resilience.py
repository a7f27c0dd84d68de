"""Failures users will meet: a worker dying, an operator dying, and deletion.

The control plane does the real work here: the Job controller retries a killed worker,
the garbage collector removes children, and a restarted operator must not duplicate Jobs.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mediaplane.core import keys, names
from tests.support.assets import Assets
from tests.support.media import Media, video_clip
from tests.support.wait import eventually

if TYPE_CHECKING:
    from mediaplane.devcluster.cluster import DevCluster
    from tests.conftest import OperatorHandle


@pytest.fixture(scope="module")
def long_clip(media_dir: Path) -> Media:
    """Long enough that a rung is still encoding when the test reaches for it."""
    return video_clip(media_dir, seconds=40)


def running_worker_pid(assets: Assets, cluster: DevCluster, tenant: str, name: str,
                       task: str) -> tuple[str, int] | None:
    pods = assets.core.list_namespaced_pod(
        tenant, label_selector=f"{names.LABEL_ASSET}={name},{names.LABEL_TASK}={task}").items
    for pod in pods:
        if pod.status.phase != "Running":
            continue
        for pid_file in cluster.state_dir.rglob(f"pods/{tenant}/{pod.metadata.name}/worker.pid"):
            return pod.metadata.labels["job-name"], int(pid_file.read_text().strip())
    return None


def test_worker_killed_once_is_retried_and_asset_becomes_ready(
        tenant: str, assets: Assets, cluster: DevCluster, long_clip: Media) -> None:
    name = assets.upload(tenant, long_clip)["metadata"]["name"]
    job_name, pid = eventually(lambda: running_worker_pid(assets, cluster, tenant, name, "video"),
                               "a running video worker", timeout=120, interval=0.05)
    os.killpg(pid, signal.SIGKILL)  # the agent starts each container in its own group

    body = assets.wait_phase(tenant, name, "ready", complete=True, timeout=300)

    # The asset is complete from the pod's result; the Job controller counts a moment later
    # (the killed worker's Job can be the asset's last: the probe's pod encodes the 240p).
    def counted() -> Any:
        job = assets.batch.read_namespaced_job(job_name, tenant)
        return job if job.status.succeeded else None

    job = eventually(counted, "the Job's count", timeout=30)
    assert job.status.failed == 1, "the killed attempt is counted by the Job controller"
    assert job.status.succeeded == 1
    tj = next(t for t in assets.transcode_jobs(tenant, name) if t["metadata"]["name"] == job_name)
    assert tj["status"]["phase"] == "Succeeded"
    assert tj["status"]["attempts"] == 1
    assert {v["state"] for v in body["status"]["variants"]} == {"succeeded"}


def test_operator_killed_mid_transcode_makes_no_duplicates(
        tenant: str, assets: Assets, operator: OperatorHandle, long_clip: Media) -> None:
    name = assets.upload(tenant, long_clip)["metadata"]["name"]
    eventually(lambda: len(assets.jobs(tenant, name)) >= 3, "variant jobs", timeout=120,
               interval=0.05)
    before = {job.metadata.name: job.metadata.uid for job in assets.jobs(tenant, name)}

    operator.kill()
    time.sleep(1.0)
    operator.start()

    assets.wait_phase(tenant, name, "ready", complete=True, timeout=300)
    tjs = assets.transcode_jobs(tenant, name)
    jobs = assets.jobs(tenant, name)
    assert sorted(j.metadata.name for j in jobs) == sorted(
        t["metadata"]["name"] for t in tjs if "encodedBy" not in t["spec"]), \
        "a Job per TranscodeJob but the storyboard's, which the 360p's Job makes"
    assert len(tjs) == 6, "probe, 240p, 360p, audio, poster, storyboard: each exactly once"
    for job in jobs:
        owner = job.metadata.owner_references[0]
        assert owner.kind == "TranscodeJob"
        assert owner.name == job.metadata.name
        if job.metadata.name in before:
            assert job.metadata.uid == before[job.metadata.name], "a Job was recreated"


def test_delete_removes_transcode_jobs_jobs_and_objects(tenant: str, assets: Assets,
                                                        clip: Media) -> None:
    name = assets.upload(tenant, clip)["metadata"]["name"]
    assets.wait_phase(tenant, name, "ready", complete=True)
    prefix = keys.asset_prefix(tenant, names.asset_id_from_name(name))
    assert len(assets.keys_under(prefix)) > 10

    assets.custom.delete_namespaced_custom_object(names.GROUP, names.VERSION, tenant,
                                                  names.ASSET_PLURAL, name)
    eventually(lambda: assets.get(tenant, name) is None, "the asset to be gone", timeout=60)
    eventually(lambda: not assets.transcode_jobs(tenant, name) and not assets.jobs(tenant, name),
               "the garbage collector to remove children", timeout=60)
    eventually(lambda: not assets.core.list_namespaced_pod(
        tenant, label_selector=f"{names.LABEL_ASSET}={name}").items, "pods gone", timeout=60)
    assert assets.keys_under(prefix) == []
