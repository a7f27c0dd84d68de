"""`mediaplane dev up --node=containers`: the operator's Jobs run as containers of the
worker image on a real kubelet, and a pod of that node reaches what a cluster offers
(cluster DNS, Services through kube-proxy, the host's S3).

The operator runs as `dev up` runs it (a host process); only the pods are containers.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from mediaplane.devcluster import demo, services
from mediaplane.devcluster.processes import ManagedProcess
from mediaplane.devcluster.realnode import components
from tests.realnode.conftest import RealNode
from tests.support.wait import eventually


def _kubectl(node: RealNode, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["kubectl", *args], env=node.env, capture_output=True, text=True,
                          timeout=120, check=False, input=stdin)
    assert done.returncode == 0, f"kubectl {' '.join(args)}:\n{done.stderr}"
    return done.stdout


def _json(node: RealNode, *args: str) -> Any:
    return json.loads(_kubectl(node, *args, "-o", "json"))


@pytest.fixture(scope="module")
def dev_operator(real_node: RealNode) -> Iterator[ManagedProcess]:
    operator = services.start_operator(real_node.cluster)
    try:
        yield operator
    finally:
        operator.stop()


def test_the_examples_go_ready_with_their_jobs_run_by_the_kubelet_from_the_worker_image(
        real_node: RealNode, dev_operator: ManagedProcess) -> None:
    env = {k: v for k, v in real_node.cluster.env().items() if k != "MEDIAPLANE_API"}
    said: list[str] = []
    assert demo.run(env, said.append, timeout=900), "\n".join(said)
    assert dev_operator.alive()

    pods = _json(real_node, "get", "pods", "-n", "demo")["items"]
    worker = real_node.images["worker"]
    assert pods, "no worker pod ran"
    for pod in pods:
        assert pod["spec"]["nodeName"] == components.NODE_NAME
        assert pod["status"]["phase"] == "Succeeded", pod["metadata"]["name"]
        (status,) = pod["status"]["containerStatuses"]
        # containerd pulled the image built here and ran it: its digest, not a process.
        assert status["imageID"].endswith(worker.digest), status
        assert status["state"]["terminated"]["exitCode"] == 0
        assert pod["status"]["podIP"].startswith("10.244.0.")


PROBE = """
import json, socket, urllib.error, urllib.request
out = {"dns": socket.gethostbyname("kubernetes.default.svc.cluster.local")}
try:
    urllib.request.urlopen("https://kubernetes.default.svc/readyz", timeout=5)
except Exception as error:  # the API server's certificate is of the dev CA, unknown here
    out["service"] = str(error)
try:  # any HTTP answer from the host's S3 proves the route; anonymous gets a 403
    with urllib.request.urlopen(__import__("os").environ["S3"], timeout=5) as response:
        out["s3"] = response.status
except urllib.error.HTTPError as error:
    out["s3"] = error.code
print(json.dumps(out))
"""


def test_a_pod_reaches_cluster_dns_a_service_and_the_hosts_s3(real_node: RealNode) -> None:
    s3_health = real_node.cluster.s3_endpoint + "/"
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "network-probe", "namespace": "default"},
        "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                 "containers": [{"name": "probe", "image": real_node.images["worker"].pinned,
                                 "command": ["python3", "-c", PROBE],
                                 "env": [{"name": "S3", "value": s3_health}]}]},
    }
    _kubectl(real_node, "apply", "-f", "-", stdin=json.dumps(pod))
    eventually(lambda: _json(real_node, "get", "pod", "network-probe")["status"].get("phase")
               in ("Succeeded", "Failed"), "the probe pod to finish", timeout=300)
    seen = json.loads(_kubectl(real_node, "logs", "network-probe"))
    _kubectl(real_node, "delete", "pod", "network-probe", "--wait=false")
    assert seen["dns"] == "10.0.0.1"
    # A TLS handshake happened through the Service's virtual IP (kube-proxy's rules).
    assert "CERTIFICATE_VERIFY_FAILED" in seen["service"], seen
    assert seen["s3"] in {200, 403}, seen
