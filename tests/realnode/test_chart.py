"""The Helm chart on a real node: what a cluster admin installs, running for real.

scripts/chart-up.sh (which `make kind-up` runs on kind) installs SeaweedFS as the S3 store
and the chart with the images built here, runs `helm test` and port-forwards the API;
scripts/kind-e2e.sh takes a clip through the charted API. The tests below then check what
only running pods can show, in order: the operator's two replicas in one peering, probes
that hold, a clip that plays, the restricted securityContext seen from inside each
container, the PodDisruptionBudgets, an upgrade and an uninstall that leave nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mediaplane.devcluster.realnode import network
from tests.chart.helm import ROOT, helm
from tests.realnode.conftest import RealNode
from tests.support.wait import eventually

NAMESPACE = "mediaplane"
RELEASE = "mediaplane"
# Not the demo tenant, whose assets test_node.py made with the dev operator.
TENANT = "charted"
SELECTOR = f"app.kubernetes.io/instance={RELEASE}"

# Run inside a container: what the kernel says about the process, as JSON.
INSIDE = """
import json, os
def writable(path):
    probe = os.path.join(path, ".mediaplane-probe")
    try:
        with open(probe, "w"):
            pass
    except OSError:
        return False
    os.unlink(probe)
    return True
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
    "rootWritable": writable("/"), "tmpWritable": writable("/tmp"),
    "token": os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token"),
    "capEff": status["CapEff"].strip(), "noNewPrivs": status["NoNewPrivs"].strip(),
    "seccomp": status["Seccomp"].strip(),
}))
"""


class Chart:
    """The installed release: kubectl and helm against the real node's cluster."""

    def __init__(self, node: RealNode, state: Path, api_port: int) -> None:
        self.node = node
        self.env = node.env
        self.state = state
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.api_port = api_port

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120,
                stdin: str | None = None) -> str:
        done = subprocess.run(["kubectl", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False, input=stdin)
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}:\n{done.stderr}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def helm(self, *args: str, timeout: float = 400) -> str:
        done = helm(*args, env=self.env, timeout=timeout)
        assert done.returncode == 0, f"helm {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def pods(self, component: str) -> list[dict[str, Any]]:
        return list(self.json("get", "pods", "-n", NAMESPACE, "-l",
                              f"{SELECTOR},app.kubernetes.io/component={component}")["items"])

    def script(self, name: str, extra_env: dict[str, str],
               timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / "scripts" / name)], cwd=ROOT,
                              env={**self.env, **extra_env}, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def stop_port_forward(self) -> None:
        """The `kubectl port-forward` chart-up.sh left running (its pid in a file)."""
        pid_file = self.state / "port-forward.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text())
        with contextlib.suppress(OSError):
            if b"port-forward" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)
        pid_file.unlink()


def _values_file(node: RealNode, path: Path) -> Path:
    """The images pinned by digest (what was just built runs, whatever a tag points at),
    the PodDisruptionBudgets on."""
    values: dict[str, Any] = {
        component: {"image": {"digest": node.images[component].digest}}
        for component in ("operator", "api", "worker")
    }
    values["podDisruptionBudget"] = {"enabled": True}
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture(scope="module")
def chart(real_node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chart]:
    state = Path(tmp_path_factory.mktemp("chart-up"))
    from mediaplane.devcluster.ports import free_port

    installed = Chart(real_node, state, free_port())
    assert real_node.cluster.node is not None
    # The dev cluster applied crds/tenant-prefix-policy.yaml itself; the chart installs the
    # same policy from its files/ and must own it.
    installed.kubectl("delete", "--ignore-not-found",
                      "validatingadmissionpolicybinding/mediaplane-tenant-prefix",
                      "validatingadmissionpolicy/mediaplane-tenant-prefix")
    started = time.monotonic()
    done = installed.script("chart-up.sh", {
        "KUBE_CONTEXT": "",
        "NODE_IP": network.NODE_IP,
        "IMAGE_REGISTRY": real_node.cluster.node.registry_host + "/",
        "SEAWEEDFS_IMAGE": real_node.images["seaweedfs"].pinned,
        "EXTRA_VALUES": str(_values_file(real_node, state / "values.yaml")),
        "STATE": str(state),
        "API_PORT": str(installed.api_port),
    })
    real_node.timings["chart-up"] = time.monotonic() - started
    try:
        assert done.returncode == 0, f"chart-up.sh:\n{done.stdout}\n{done.stderr}"
        yield installed
    finally:
        installed.stop_port_forward()


def test_operator_runs_two_replicas_in_one_peering(chart: Chart) -> None:
    pods = chart.pods("operator")
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    assert all(p["status"]["phase"] == "Running" for p in pods)

    def peers() -> dict[str, Any]:
        return dict(chart.json("get", "clusterkopfpeering", "mediaplane").get("status") or {})

    eventually(lambda: len(peers()) == 2, "two peers in the peering", timeout=60,
               explain=peers)
    names = [p["metadata"]["name"] for p in pods]

    def states() -> dict[str, str]:
        """kopf starts paused and logs "Resuming operations" once no peer outranks it, then
        "Pausing operations in favour of ..." if a higher one comes: the last says."""
        out = {}
        for name in names:
            said = [line for line in chart.kubectl("logs", "-n", NAMESPACE, name).splitlines()
                    if "Pausing operations" in line or "Resuming operations" in line]
            out[name] = "working" if said and "Resuming" in said[-1] else "standing by"
        return out

    def expected() -> dict[str, str]:
        status = peers()
        top = max(status, key=lambda peer: int(status[peer]["priority"]))
        return {name: "working" if f"@{name}/" in top else "standing by" for name in names}

    # Exactly one replica works, the one of the highest priority; the other stands by.
    # Under load the peering's watch events come late, hence the patience.
    eventually(lambda: states() == expected(), "one working replica and one standing by",
               timeout=180, interval=2, explain=lambda: {"peers": peers(), "seen": states()})


def test_every_pod_is_ready_and_was_never_restarted_by_its_probes(chart: Chart) -> None:
    pods = chart.json("get", "pods", "-n", NAMESPACE, "-l", SELECTOR)["items"]
    components = sorted(p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods
                        if p["status"]["phase"] == "Running")
    assert components == ["api", "operator", "operator"], components
    for pod in pods:
        if pod["status"]["phase"] != "Running":
            continue
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"]
        assert ready == "True", pod["metadata"]["name"]
        for container in pod["status"]["containerStatuses"]:
            assert container["restartCount"] == 0, (pod["metadata"]["name"], container)
            assert container["imageID"].split("@")[-1] in {
                chart.node.images[c].digest for c in ("operator", "api")}


def test_the_api_answers_behind_its_service(chart: Chart) -> None:
    service = chart.json("get", "service", "-n", NAMESPACE, f"{RELEASE}-api")
    endpoints = chart.json("get", "endpointslices", "-n", NAMESPACE, "-l",
                           f"kubernetes.io/service-name={RELEASE}-api")["items"]
    addresses = [a for s in endpoints for e in s.get("endpoints") or []
                 for a in e["addresses"] if e["conditions"].get("ready")]
    assert len(addresses) == 1, endpoints
    assert service["spec"]["clusterIP"].startswith("10.0.0.")
    chart.helm("test", RELEASE, "-n", NAMESPACE, "--timeout", "2m")
    assert httpx.get(f"{chart.api_url}/readyz", timeout=10).status_code == 200


@pytest.fixture(scope="module")
def played(chart: Chart) -> str:
    """A clip through the charted API (kind-e2e.sh): upload URL, POST to S3, finalize,
    ready, HLS fetched. Returns the asset id."""
    done = chart.script("kind-e2e.sh", {
        "KUBE_CONTEXT": "", "API_URL": chart.api_url, "TENANT": TENANT,
        "PYTHON": str(ROOT / ".venv" / "bin" / "python"),
        "MEDIAPLANE": str(ROOT / ".venv" / "bin" / "mediaplane"),
    }, timeout=600)
    assert done.returncode == 0, f"kind-e2e.sh:\n{done.stdout}\n{done.stderr}"
    found = re.search(r"OK: (mda_[0-9a-z]+) is ready", done.stdout)
    assert found, done.stdout
    return found.group(1)


def _token(chart: Chart) -> str:
    from mediaplane.devcluster.tokens import mint_dev_token

    secret = chart.kubectl("get", "secret", "-n", NAMESPACE, f"{RELEASE}-api-keys", "-o",
                           "jsonpath={.data.jwt-secret}")
    import base64

    return mint_dev_token(base64.b64decode(secret).decode(), TENANT, "realnode-test", 600)


def test_a_clip_uploaded_through_the_charted_api_goes_ready_and_plays(
        chart: Chart, played: str) -> None:
    token = _token(chart)
    asset = httpx.get(f"{chart.api_url}/api/v1/media/{played}",
                      headers={"Authorization": f"Bearer {token}"}, timeout=10).json()["data"]
    assert asset["status"] == "ready"
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,width,height",
         "-of", "json", asset["streams"]["hls"]],
        capture_output=True, text=True, timeout=120, check=False)
    assert probe.returncode == 0, probe.stderr
    kinds = sorted(s["codec_type"] for s in json.loads(probe.stdout)["streams"])
    assert set(kinds) >= {"video", "audio"}, kinds
    # The work ran in worker pods from the worker image, on this node. Ready means
    # playable: the poster and storyboard Jobs may still be at work, so wait for them.
    def jobs() -> list[dict[str, Any]]:
        return list(chart.json("get", "jobs", "-n", TENANT)["items"])

    images = {c["image"] for j in jobs() for c in j["spec"]["template"]["spec"]["containers"]}
    assert images == {chart.node.images["worker"].pinned}, images
    eventually(lambda: all((j["status"].get("succeeded") or 0) >= 1 for j in jobs()),
               "every Job of the clip to succeed", timeout=300,
               explain=lambda: [(j["metadata"]["name"], j["status"]) for j in jobs()])


def _inside(chart: Chart, pod: str, container: str) -> dict[str, Any]:
    out = chart.kubectl("exec", "-n", NAMESPACE, pod, "-c", container, "--", "python", "-c",
                        INSIDE)
    return dict(json.loads(out))


RESTRICTED = {"uid": 65532, "gid": 65532, "rootWritable": False, "capEff": "0000000000000000",
              "noNewPrivs": "1", "seccomp": "2"}


@pytest.mark.parametrize("component", ["operator", "api"])
def test_services_run_restricted_seen_from_inside(chart: Chart, component: str) -> None:
    pod = chart.pods(component)[0]["metadata"]["name"]
    seen = _inside(chart, pod, component)
    assert {k: seen[k] for k in RESTRICTED} == RESTRICTED, seen
    assert seen["tmpWritable"], seen  # the emptyDir at /tmp
    assert seen["token"], seen  # they talk to the API server


def test_workers_run_restricted_and_without_a_token_seen_from_inside(
        chart: Chart, played: str) -> None:
    """The pod spec the operator gave a worker Job, run again with a command that reports
    what the container sees (a finished Job's container cannot be entered)."""
    del played
    job = chart.json("get", "jobs", "-n", TENANT)["items"][0]
    spec = job["spec"]["template"]["spec"]
    spec["restartPolicy"] = "Never"
    spec["containers"][0]["command"] = ["python", "-c", INSIDE]
    spec["containers"][0].pop("args", None)
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "worker-inside", "namespace": TENANT}, "spec": spec}
    chart.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    eventually(lambda: chart.json("get", "pod", "-n", TENANT, "worker-inside")["status"].get(
        "phase") in ("Succeeded", "Failed"), "the probe pod to finish", timeout=120)
    seen = json.loads(chart.kubectl("logs", "-n", TENANT, "worker-inside"))
    chart.kubectl("delete", "pod", "-n", TENANT, "worker-inside", "--wait=false")
    assert {k: seen[k] for k in RESTRICTED} == RESTRICTED, seen
    assert seen["token"] is False, seen
    assert seen["tmpWritable"], seen


def test_disruption_budgets_hold_the_operator_and_never_block_the_api(chart: Chart) -> None:
    budget = eventually(lambda: (pdb := chart.json(
        "get", "pdb", "-n", NAMESPACE, f"{RELEASE}-operator")).get("status", {}).get(
            "disruptionsAllowed") == 1 and pdb, "the operator budget to allow one disruption")
    assert budget["spec"]["maxUnavailable"] == 1
    first, second = (p["metadata"]["name"] for p in chart.pods("operator"))
    assert _evict(chart, first) == 201
    assert _evict(chart, second) == 429  # the budget is spent until a replacement is ready
    # A single API replica is never held by its budget (maxUnavailable, not minAvailable).
    assert _evict(chart, chart.pods("api")[0]["metadata"]["name"]) == 201
    chart.stop_port_forward()  # it was bound to the evicted API pod
    eventually(lambda: len([p for p in chart.pods("operator") if _ready(p)]) == 2
               and len([p for p in chart.pods("api") if _ready(p)]) == 1,
               "replacements to be ready", timeout=180)


def _ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod["status"].get("conditions") or [])


def _evict(chart: Chart, pod: str) -> int:
    body = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                       "metadata": {"name": pod, "namespace": NAMESPACE}})
    done = subprocess.run(
        ["kubectl", "create", "--raw", f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}/eviction",
         "-f", "-"], input=body, env=chart.env, capture_output=True, text=True, timeout=60,
        check=False)
    if done.returncode == 0:
        return 201
    if re.search(r"TooManyRequests|Too Many Requests", done.stderr):
        return 429
    found = re.search(r"\((\d{3})\)|code (\d{3})", done.stderr)
    assert found, done.stderr
    return int(found.group(1) or found.group(2))


def test_an_upgrade_rolls_out_and_leaves_nothing_behind(chart: Chart) -> None:
    before = {rs["metadata"]["name"] for rs in chart.json(
        "get", "replicasets", "-n", NAMESPACE, "-l", SELECTOR)["items"]}
    chart.helm("upgrade", RELEASE, str(ROOT / "charts" / "mediaplane"), "-n", NAMESPACE,
               "--reuse-values", "--wait", "--timeout", "5m",
               "--set", "podDisruptionBudget.enabled=false",
               "--set", "api.replicaCount=2",
               "--set", "api.podAnnotations.mediaplane\\.io/rollout=second",
               "--set", "operator.podAnnotations.mediaplane\\.io/rollout=second")
    assert chart.kubectl("get", "pdb", "-n", NAMESPACE, "-o", "name").strip() == ""
    sets = chart.json("get", "replicasets", "-n", NAMESPACE, "-l", SELECTOR)["items"]
    new = [rs for rs in sets if rs["metadata"]["name"] not in before]
    assert sorted(rs["metadata"]["labels"]["app.kubernetes.io/component"] for rs in new) == [
        "api", "operator"], [rs["metadata"]["name"] for rs in sets]
    old = [rs for rs in sets if rs["metadata"]["name"] in before]
    assert all(rs["spec"]["replicas"] == 0 for rs in old), old
    services = f"{SELECTOR},app.kubernetes.io/component in (api,operator)"

    def revisions() -> list[str | None]:
        pods = chart.json("get", "pods", "-n", NAMESPACE, "-l", services)["items"]
        return [(p["metadata"].get("annotations") or {}).get("mediaplane.io/rollout")
                for p in pods]

    eventually(lambda: revisions() == ["second"] * 4, "only pods of the new revision",
               timeout=180, explain=revisions)
    chart.helm("test", RELEASE, "-n", NAMESPACE, "--timeout", "2m")


CLUSTER_KINDS = ("clusterroles", "clusterrolebindings", "validatingadmissionpolicies",
                 "validatingadmissionpolicybindings", "clusterkopfpeerings")
NAMESPACED_KINDS = ("deployments", "replicasets", "pods", "services", "endpointslices",
                    "configmaps", "secrets", "serviceaccounts", "roles", "rolebindings",
                    "poddisruptionbudgets", "networkpolicies", "ingresses", "jobs")


def test_uninstall_leaves_nothing_behind(chart: Chart) -> None:
    chart.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "3m")
    left = chart.kubectl("get", ",".join(CLUSTER_KINDS), "-l", SELECTOR, "-o", "name")
    assert left.strip() == "", left
    # Helm deletes the Deployments; the garbage collector then their ReplicaSets and pods,
    # which end after their grace period.
    def left_namespaced() -> str:
        return chart.kubectl("get", ",".join(NAMESPACED_KINDS), "-A", "-l", SELECTOR, "-o",
                             "name").strip()

    eventually(lambda: left_namespaced() == "", "the release's objects to be gone",
               timeout=180, interval=2, explain=left_namespaced)
    assert not chart.json("get", "pods", "-n", NAMESPACE)["items"]
    # What the release namespace still holds is what was there before the chart.
    kept = sorted(chart.kubectl("get", "secrets,configmaps,serviceaccounts", "-n", NAMESPACE,
                                "-o", "name").split())
    assert kept == ["configmap/kube-root-ca.crt", "secret/mediaplane-s3",
                    "serviceaccount/default"], kept
