"""Jobs on the dev cluster: the real Job controller driving the local node agent.

Uses the session's `cluster` (tests/conftest.py); no operator needed. The Job controller
waits ~10 s before replacing a failed pod, hence the generous timeouts.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch

from mediaplane.devcluster.cluster import DevCluster
from tests.support.wait import eventually

pytestmark = pytest.mark.cluster

@pytest.fixture
def namespace(kube_api: k8s.ApiClient) -> Iterator[str]:
    name = f"dc-{uuid.uuid4().hex[:8]}"
    core = k8s.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def job(name: str, command: list[str], backoff_limit: int = 0, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": "unused.local/dev",
                            "command": command,
                            **container,
                        }
                    ],
                }
            },
        },
    }


def finished(kube_api: k8s.ApiClient, namespace: str, name: str) -> Callable[[], Any]:
    def probe() -> Any:
        found = k8s.BatchV1Api(kube_api).read_namespaced_job(name, namespace)
        for condition in found.status.conditions or []:
            if condition.type in ("Complete", "Failed") and condition.status == "True":
                return found
        return None

    return probe


def pods_of(kube_api: k8s.ApiClient, namespace: str, name: str) -> list[Any]:
    listed = k8s.CoreV1Api(kube_api).list_namespaced_pod(
        namespace, label_selector=f"job-name={name}"
    )
    return sorted(listed.items, key=lambda p: p.metadata.creation_timestamp)


def terminated(pod: Any) -> Any:
    return pod.status.container_statuses[0].state.terminated


def test_job_completes_with_termination_message(
    cluster: DevCluster, kube_api: k8s.ApiClient, namespace: str
) -> None:
    script = "import os, sys; open(sys.argv[1], 'w').write('done in ' + os.environ['WHERE'])"
    manifest = job(
        "message",
        ["python", "-c", script, "/dev/termination-log"],
        env=[{"name": "WHERE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
    )
    k8s.BatchV1Api(kube_api).create_namespaced_job(namespace, manifest)

    done = eventually(finished(kube_api, namespace, "message"), "job message")
    assert done.status.succeeded == 1
    (pod,) = pods_of(kube_api, namespace, "message")
    assert pod.status.phase == "Succeeded"
    assert pod.spec.node_name == "mediaplane-local"
    state = terminated(pod)
    assert state.exit_code == 0
    assert state.reason == "Completed"
    assert state.message == f"done in {namespace}"
    assert (cluster.pods_dir / namespace / pod.metadata.name / "main.log").exists()


def test_failed_pod_is_retried_by_the_job_controller(
    kube_api: k8s.ApiClient, namespace: str, tmp_path: Path
) -> None:
    marker = tmp_path / "first-attempt-done"
    script = (
        "import pathlib, sys\n"
        "marker = pathlib.Path(sys.argv[1])\n"
        "if marker.exists():\n"
        "    sys.exit(0)\n"
        "marker.touch()\n"
        "sys.exit(3)\n"
    )
    manifest = job("retry", ["python", "-c", script, str(marker)], backoff_limit=1)
    k8s.BatchV1Api(kube_api).create_namespaced_job(namespace, manifest)

    done = eventually(finished(kube_api, namespace, "retry"), "job retry")
    assert [c.type for c in done.status.conditions if c.status == "True"][-1] == "Complete"
    assert done.status.succeeded == 1
    assert done.status.failed == 1
    first, second = pods_of(kube_api, namespace, "retry")
    assert (first.status.phase, terminated(first).exit_code, terminated(first).reason) == (
        "Failed",
        3,
        "Error",
    )
    assert second.status.phase == "Succeeded"


def test_killed_worker_reports_137_and_is_retried(
    cluster: DevCluster, kube_api: k8s.ApiClient, namespace: str, tmp_path: Path
) -> None:
    marker = tmp_path / "killed-once"
    script = (
        "import pathlib, sys, time\n"
        "marker = pathlib.Path(sys.argv[1])\n"
        "if marker.exists():\n"
        "    sys.exit(0)\n"
        "marker.touch()\n"
        "time.sleep(300)\n"
    )
    manifest = job("killed", ["python", "-c", script, str(marker)], backoff_limit=1)
    k8s.BatchV1Api(kube_api).create_namespaced_job(namespace, manifest)

    def running_pid() -> int | None:
        pods = pods_of(kube_api, namespace, "killed")
        if not pods or pods[0].status.phase != "Running" or not marker.exists():
            return None
        pid_file = cluster.pods_dir / namespace / pods[0].metadata.name / "main.pid"
        return int(pid_file.read_text()) if pid_file.exists() else None

    os.kill(eventually(running_pid, "a running worker"), signal.SIGKILL)

    done = eventually(finished(kube_api, namespace, "killed"), "job killed")
    assert done.status.succeeded == 1
    assert done.status.failed == 1
    first, _ = pods_of(kube_api, namespace, "killed")
    assert first.status.phase == "Failed"
    assert terminated(first).exit_code == 137


def test_deleting_a_running_pod_stops_its_process(
    cluster: DevCluster, kube_api: k8s.ApiClient, namespace: str
) -> None:
    core = k8s.CoreV1Api(kube_api)
    pod = {
        "metadata": {"name": "sleeper"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "unused", "command": ["sleep", "300"]}],
        },
    }
    core.create_namespaced_pod(namespace, pod)
    pid_file = cluster.pods_dir / namespace / "sleeper" / "main.pid"
    eventually(
        lambda: core.read_namespaced_pod("sleeper", namespace).status.phase == "Running",
        "Running", interval=0.5)
    pid = int(pid_file.read_text())

    core.delete_namespaced_pod("sleeper", namespace)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("sleeper", namespace)
        except k8s.ApiException as err:
            return bool(err.status == 404)
        return False

    eventually(gone, "pod deleted", timeout=60)
    assert not Path(f"/proc/{pid}").exists()


def test_indexed_job_gives_each_pod_its_completion_index(
    kube_api: k8s.ApiClient, namespace: str
) -> None:
    """What caption Jobs rely on: `completionMode: Indexed` pods learn their index from
    the Job controller (an annotation, and `JOB_COMPLETION_INDEX` through the downward
    API), which the node agent resolves like a kubelet."""
    script = (
        "import os, sys\n"
        "open(sys.argv[1], 'w').write('index ' + os.environ['JOB_COMPLETION_INDEX'])\n"
    )
    manifest = job("indexed", ["python", "-c", script, "/dev/termination-log"])
    manifest["spec"].update(completionMode="Indexed", completions=3, parallelism=2)
    k8s.BatchV1Api(kube_api).create_namespaced_job(namespace, manifest)

    done = eventually(finished(kube_api, namespace, "indexed"), "job indexed")
    assert done.status.succeeded == 3
    assert done.status.completed_indexes == "0-2"
    pods = pods_of(kube_api, namespace, "indexed")
    seen = {}
    for pod in pods:
        index = pod.metadata.annotations["batch.kubernetes.io/job-completion-index"]
        seen[index] = terminated(pod).message
    assert seen == {"0": "index 0", "1": "index 1", "2": "index 2"}


def _container_states(kube_api: k8s.ApiClient, namespace: str, name: str) -> list[str]:
    """Each status the node agent wrote for the Job's pod: phase and container states."""
    seen: list[str] = []
    stream = k8s_watch.Watch()
    for event in stream.stream(k8s.CoreV1Api(kube_api).list_namespaced_pod, namespace,
                               label_selector=f"job-name={name}", timeout_seconds=60):
        pod = event["object"]
        states = [next(k for k, v in (s.state.to_dict() or {}).items() if v)
                  for s in [*(pod.status.init_container_statuses or []),
                            *(pod.status.container_statuses or [])]]
        if states and (not seen or seen[-1] != f"{pod.status.phase} {states}"):
            seen.append(f"{pod.status.phase} {states}")
        if pod.status.phase in ("Succeeded", "Failed"):
            stream.stop()
    return seen


def test_a_pod_starts_without_a_status_write_before_it_unless_init_containers_run(
    kube_api: k8s.ApiClient, namespace: str
) -> None:
    """A pod's start is not held up by a status write: the first status it gets says its
    container runs. Init containers keep it Pending, and say so, while they run."""
    batch = k8s.BatchV1Api(kube_api)
    pause = ["python", "-c", "import time; time.sleep(0.5)"]  # long enough to be seen running
    batch.create_namespaced_job(namespace, job("plain", pause))
    assert _container_states(kube_api, namespace, "plain") == [
        "Running ['running']", "Succeeded ['terminated']"]

    with_init = job("init", pause)
    with_init["spec"]["template"]["spec"]["initContainers"] = [
        {"name": "first", "image": "unused.local/dev", "command": pause}]
    batch.create_namespaced_job(namespace, with_init)
    states = _container_states(kube_api, namespace, "init")
    assert states[0] == "Pending ['waiting', 'waiting']", states
    assert states[-1] == "Succeeded ['terminated', 'terminated']", states


def test_a_pods_cpu_request_sets_its_processes_cpu_weight(
    kube_api: k8s.ApiClient, namespace: str
) -> None:
    """Without cgroups the agent weighs a container's processes, and what they start, as a
    kubelet's cpu.shares would: by nice value, for the process and its session's group (the
    kernel weighs sessions against each other when it groups them)."""
    script = (
        "import os, subprocess, sys; "
        "child = subprocess.run(['cat', '/proc/self/stat'], capture_output=True, "
        "text=True).stdout.rsplit(')', 1)[1].split()[16]; "
        "group = open('/proc/self/autogroup').read().split()[-1] "
        "if os.path.exists('/proc/self/autogroup') else 'none'; "
        "open(sys.argv[1], 'w').write(f'{os.getpriority(os.PRIO_PROCESS, 0)} {child} {group}')"
    )
    batch = k8s.BatchV1Api(kube_api)
    for name, cpu in (("little", "50m"), ("whole", "1")):
        batch.create_namespaced_job(namespace, job(
            name, ["python", "-c", script, "/dev/termination-log"],
            resources={"requests": {"cpu": cpu}}))
    seen = {}
    for name in ("little", "whole"):
        eventually(finished(kube_api, namespace, name), f"job {name}")
        (pod,) = pods_of(kube_api, namespace, name)
        seen[name] = terminated(pod).message.split()
    autogroups = Path("/proc/self/autogroup").exists()
    assert seen["little"] == ["13", "13", "13" if autogroups else "none"]
    assert seen["whole"] == ["0", "0", "0" if autogroups else "none"]
