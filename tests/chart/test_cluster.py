"""The chart against the dev cluster's real API server: server-side dry-run of every
rendered manifest, then a real `helm install` with its RBAC checked by the API server.

The dev cluster's node agent runs every pod's command as a local process (it ignores
images), so a helm-installed operator that got a pod would really run and compete with
the session's operator. The install test therefore scales the operator and the API to 0
replicas: the objects, the RBAC and the generated keys are what is tested, not the
images. (The dev cluster also runs no Deployment or ReplicaSet controller, so no pod
would appear anyway, and `helm --wait` would wait for ReplicaSets forever: not used.)
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediaplane.devcluster.cluster import DevCluster
from tests.chart.helm import CHART, VALUE_SETS, Rendered, helm, helm_binary, run, template

HERE = Path(__file__).parent
pytestmark = pytest.mark.cluster


def client_env(cluster: DevCluster) -> dict[str, str]:
    """This process's environment (HOME: kubectl's and helm's caches) plus the cluster's."""
    return {**os.environ, **cluster.env()}


class Kubectl:
    def __init__(self, cluster: DevCluster) -> None:
        self.env = client_env(cluster)

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        done = run(["kubectl", *args], env=self.env, stdin=stdin)
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}:\n{done.stderr}"
        return done.stdout

    def can_i(self, account: str, verb: str, resource: str, namespace: str | None = None,
              *, name: str | None = None) -> bool:
        """A SubjectAccessReview; `resource` may name a subresource ("pods/log"), `name`
        one object."""
        resource, _, subresource = resource.partition("/")
        what = f"{resource}/{name}" if name else resource
        args = ["auth", "can-i", verb, what, f"--as={account}"]
        args += [f"--subresource={subresource}"] if subresource else []
        args += ["-n", namespace] if namespace else ["--all-namespaces"]
        answer = self(*args, check=False).strip()
        assert answer in ("yes", "no"), answer
        return answer == "yes"


@pytest.fixture(scope="module")
def kubectl(cluster: DevCluster) -> Kubectl:
    kc = Kubectl(cluster)
    # CRDs first, as Helm would: the chart's crds/ (mediaplane's and kopf's peering), and
    # stand-ins for prometheus-operator's CRDs (see servicemonitor-crd.yaml).
    kc("apply", "--server-side", "--force-conflicts", "--field-manager=chart-test",
       "-f", str(CHART / "crds"), "-f", str(HERE / "servicemonitor-crd.yaml"))
    kc("wait", "--for=condition=Established", "--timeout=60s",
       "crd/clusterkopfpeerings.kopf.dev", "crd/servicemonitors.monitoring.coreos.com",
       "crd/podmonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com")
    return kc


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"chart-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_rendered_manifests_pass_server_side_dry_run(
        kubectl: Kubectl, namespace: str, value_set: str) -> None:
    rendered = template(VALUE_SETS[value_set], namespace=namespace)
    out = kubectl("apply", "--dry-run=server", "-f", "-", stdin=rendered)
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == len(Rendered.of(rendered).docs), out
    assert all(line.endswith("(server dry run)") for line in lines), out


def test_helm_install_objects_and_rbac(cluster: DevCluster, kubectl: Kubectl,
                                       namespace: str) -> None:
    env = client_env(cluster)
    # The dev cluster's environment (`mediaplane dev env`) has our helm on its PATH.
    assert shutil.which("helm", path=env["PATH"]) == str(helm_binary())
    release = f"mp-{namespace.removeprefix('chart-')}"
    full = f"{release}-mediaplane"
    peering = f"chart-test-{namespace}"
    sets = [
        # Nothing runs (see the module docstring); the dev cluster's own admission policy
        # of the same name is already installed from crds/ by the cluster itself.
        "operator.replicaCount=0", "api.replicaCount=0", "admissionPolicy.enabled=false",
        f"operator.peering.name={peering}", "s3.credentials.existingSecret=s3-keys",
    ]
    args = ["upgrade", "--install", release, str(CHART), "--namespace", namespace,
            "--timeout", "2m"]
    for item in sets:
        args += ["--set", item]
    done = helm(*args, env=env)
    assert done.returncode == 0, done.stderr
    try:
        assert f"NAME: {release}" in done.stdout
        assert "STATUS: deployed" in done.stdout

        listing = json.loads(kubectl("get", "deploy,svc,sa,secret,networkpolicy",
                                     "-n", namespace, "-o", "json"))
        present = {(i["kind"], i["metadata"]["name"]) for i in listing["items"]}
        assert {("Deployment", f"{full}-operator"), ("Deployment", f"{full}-api"),
                ("Service", f"{full}-api"), ("ServiceAccount", f"{full}-operator"),
                ("ServiceAccount", f"{full}-api"), ("ServiceAccount", f"{full}-worker"),
                ("Secret", f"{full}-api-keys"), ("NetworkPolicy", f"{full}-api"),
                ("NetworkPolicy", f"{full}-operator")} <= present
        worker_sa = json.loads(kubectl("get", "sa", f"{full}-worker", "-n", namespace,
                                       "-o", "json"))
        assert worker_sa["automountServiceAccountToken"] is False
        kubectl("get", "clusterkopfpeering", peering)
        kubectl("get", "clusterrole", f"{full}-operator", f"{full}-api")

        keys = _secret(kubectl, namespace, f"{full}-api-keys")
        assert len(keys["jwt-secret"]) == 48
        assert len(keys["stream-signing-key"]) == 48
        # An upgrade keeps the generated keys (tokens and stream links stay valid).
        again = helm(*args, env=env)
        assert again.returncode == 0, again.stderr
        assert "REVISION: 2" in again.stdout
        assert _secret(kubectl, namespace, f"{full}-api-keys") == keys

        sa = f"system:serviceaccount:{namespace}:"
        operator, api, worker = sa + f"{full}-operator", sa + f"{full}-api", sa + f"{full}-worker"
        tenant = "some-tenant"
        assert kubectl.can_i(operator, "create", "jobs.batch", tenant)
        assert kubectl.can_i(operator, "patch", "mediaassets.media.mediaplane.io/status", tenant)
        assert kubectl.can_i(operator, "create", "transcodejobs.media.mediaplane.io", tenant)
        assert kubectl.can_i(operator, "watch", "pods", tenant)
        assert kubectl.can_i(operator, "create", "events", tenant)
        assert kubectl.can_i(operator, "create", "serviceaccounts", tenant)
        assert kubectl.can_i(operator, "patch", "clusterkopfpeerings.kopf.dev")
        assert kubectl.can_i(operator, "watch", "namespaces")
        assert not kubectl.can_i(operator, "get", "secrets", tenant)
        assert not kubectl.can_i(operator, "list", "secrets", tenant)
        # ...but a webhook endpoint's signing key, by its set-aside name (the chart's
        # webhooks.signingSecretNames).
        assert kubectl.can_i(operator, "get", "secrets", tenant, name="mediaplane-webhook-signing")
        assert not kubectl.can_i(operator, "get", "secrets", tenant, name="api-keys")
        assert not kubectl.can_i(operator, "create", "pods", tenant)
        assert not kubectl.can_i(operator, "get", "pods/log", tenant)
        assert not kubectl.can_i(operator, "delete", "mediaassets.media.mediaplane.io", tenant)
        assert kubectl.can_i(operator, "update",
                             "transcodejobs.media.mediaplane.io/finalizers", tenant)

        assert kubectl.can_i(api, "create", "mediaassets.media.mediaplane.io", tenant)
        assert kubectl.can_i(api, "delete", "mediaassets.media.mediaplane.io", tenant)
        assert kubectl.can_i(api, "watch", "mediaassets.media.mediaplane.io")  # its cache
        assert kubectl.can_i(api, "get", "namespaces")
        assert not kubectl.can_i(api, "create", "jobs.batch", tenant)
        assert not kubectl.can_i(api, "create", "transcodejobs.media.mediaplane.io", tenant)
        assert not kubectl.can_i(api, "patch", "mediaassets.media.mediaplane.io/status", tenant)
        assert kubectl.can_i(api, "get", "mediaassets.media.mediaplane.io/status", tenant)
        assert not kubectl.can_i(api, "list", "secrets", tenant)
        assert not kubectl.can_i(api, "create", "namespaces")

        for verb, resource in (("get", "pods"), ("list", "mediaassets.media.mediaplane.io"),
                               ("create", "jobs.batch"), ("get", "secrets"),
                               ("get", "configmaps"), ("create", "events")):
            assert not kubectl.can_i(worker, verb, resource, tenant), (verb, resource)
            assert not kubectl.can_i(worker, verb, resource, namespace), (verb, resource)
    finally:
        gone = helm("uninstall", release, "--namespace", namespace, env=env)
    assert gone.returncode == 0, gone.stderr
    left = run(["kubectl", "get", "clusterrole", f"{full}-operator"], env=env)
    assert "NotFound" in left.stderr
    left = run(["kubectl", "get", "clusterkopfpeering", peering], env=env)
    assert "NotFound" in left.stderr


def _secret(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str]:
    data = json.loads(kubectl("get", "secret", name, "-n", namespace, "-o", "json"))["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}
