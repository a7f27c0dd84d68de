"""The chart without a cluster: lint, the CRD copies, what each value set renders, the schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from mediaplane.core.ai import BUILTIN_VOICE, AiCatalog
from mediaplane.core.ladder import Ladder
from mediaplane.operator.settings import OperatorSettings
from tests.chart.helm import (
    CHART,
    ROOT,
    VALUE_SETS,
    Rendered,
    container,
    env_of,
    helm,
    template,
    value_args,
)

OPERATOR, API = "mediaplane-operator", "mediaplane-api"


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_helm_lint_strict(value_set: str) -> None:
    done = helm("lint", "--strict", str(CHART), *value_args(VALUE_SETS[value_set]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


def test_chart_crds_are_the_repo_crds() -> None:
    """crds/ at the top of the repo is the one source; `make chart-crds` copies it."""
    repo = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    chart_crds = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    chart_files = {p.name: p.read_bytes() for p in (CHART / "files").glob("*.yaml")}
    hint = "out of date: run `make chart-crds` and commit charts/mediaplane"
    for name, text in repo.items():
        is_crd = b"\nkind: CustomResourceDefinition" in text
        copy = (chart_crds if is_crd else chart_files).get(name)
        assert copy == text, f"charts/mediaplane/{'crds' if is_crd else 'files'}/{name} {hint}"
    # The chart's only CRD of its own is kopf's peering resource.
    assert set(chart_crds) - set(repo) == {"clusterkopfpeerings.kopf.dev.yaml"}
    assert set(chart_files) - set(repo) == set()


def test_defaults_render_the_whole_install() -> None:
    out = Rendered.of(template())
    assert out.kinds() == sorted([
        "ClusterKopfPeering", "ClusterRole", "ClusterRole", "ClusterRoleBinding",
        "ClusterRoleBinding", "ConfigMap", "Deployment", "Deployment", "NetworkPolicy",
        "NetworkPolicy",
        "Pod", "Secret", "Service", "ServiceAccount", "ServiceAccount", "ServiceAccount",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    ])
    operator = out.one("Deployment", OPERATOR)
    assert operator["spec"]["replicas"] == 2
    assert container(operator)["command"] == [
        "python", "-m", "mediaplane.operator", "--peering", "mediaplane",
        "--liveness", "http://0.0.0.0:8081/healthz"]
    assert out.one("ClusterKopfPeering", "mediaplane")["apiVersion"] == "kopf.dev/v1"
    env = env_of(operator)
    assert env["MEDIAPLANE_WORKER_IMAGE"] == "mediaplane/worker:0.1.0"
    assert json.loads(env["MEDIAPLANE_WORKER_COMMAND"]) == ["mediaplane-worker"]
    assert env["MEDIAPLANE_WORKER_SERVICE_ACCOUNT"] == "mediaplane-worker"
    assert env["MEDIAPLANE_S3_BUCKET"] == "mediaplane"
    # No key pair configured: boto3's chain (cloud identity), never an empty secret ref.
    assert "AWS_ACCESS_KEY_ID" not in env
    assert "MEDIAPLANE_LADDER_FILE" not in env

    api = out.one("Deployment", API)
    assert container(api)["command"] == [
        "python", "-m", "mediaplane.api", "--host", "0.0.0.0", "--port", "8080"]  # noqa: S104
    api_env = env_of(api)
    generated = out.one("Secret", "mediaplane-api-keys")
    for var, key in (("MEDIAPLANE_API_JWT_SECRET", "jwt-secret"),
                     ("MEDIAPLANE_API_STREAM_SIGNING_KEY", "stream-signing-key")):
        assert api_env[var] == {"secretKeyRef": {"name": "mediaplane-api-keys", "key": key}}
        assert len(generated["data"][key]) >= 48  # base64 of 48 random characters
    assert api_env["MEDIAPLANE_API_PUBLIC_URL"] == "http://mediaplane-api.mediaplane.svc:80"
    assert api_env["MEDIAPLANE_API_RATE_LIMIT_STORAGE"] == "memory://"
    assert "MEDIAPLANE_API_MAX_UPLOAD_BYTES" not in api_env
    probes = {k: container(api)[k]["httpGet"]["path"]
              for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes == {"startupProbe": "/healthz", "livenessProbe": "/healthz",
                      "readinessProbe": "/readyz"}

    worker_sa = out.one("ServiceAccount", "mediaplane-worker")
    assert worker_sa["automountServiceAccountToken"] is False
    bound = {s["name"] for b in out.all("ClusterRoleBinding") for s in b["subjects"]}
    assert bound == {OPERATOR, API}  # nothing is bound to the workers

    test_pod = out.one("Pod", "mediaplane-test-api-health")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert test_pod["spec"]["containers"][0]["command"][-1] == (
        "http://mediaplane-api:80/healthz")


def _pod_specs(out: Rendered) -> list[dict[str, Any]]:
    specs = [d["spec"]["template"]["spec"] for d in out.all("Deployment")]
    return specs + [d["spec"] for d in out.all("Pod")]


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_pod_is_restricted(value_set: str) -> None:
    """The restricted Pod Security Standard, a read-only root and a writable /tmp."""
    out = Rendered.of(template(VALUE_SETS[value_set]))
    for spec in _pod_specs(out):
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 65532
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in spec["containers"]:
            assert c["securityContext"] == {
                "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    for deployment in out.all("Deployment"):
        mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]


def test_admission_policy_is_the_repo_policy() -> None:
    out = Rendered.of(template())
    repo = [d for d in yaml.safe_load_all((ROOT / "crds" / "tenant-prefix-policy.yaml")
                                          .read_text()) if d]
    for source in repo:
        rendered = out.one(source["kind"], source["metadata"]["name"])
        assert rendered["spec"] == source["spec"]
        assert rendered["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    off = Rendered.of(template(sets={"admissionPolicy.enabled": "false"}))
    assert not off.all("ValidatingAdmissionPolicy")


def test_ingress_monitoring_and_cloud_identity() -> None:
    out = Rendered.of(template(VALUE_SETS["ingress-monitoring-irsa"]))
    ingress = out.one("Ingress", API)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "media.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {
        "name": API, "port": {"name": "http"}}
    monitor = out.one("ServiceMonitor", API)
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
    for name in (OPERATOR, API):
        annotations = out.one("ServiceAccount", name)["metadata"]["annotations"]
        assert annotations["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
        assert "AWS_ACCESS_KEY_ID" not in env_of(out.one("Deployment", name))
    api_env = env_of(out.one("Deployment", API))
    assert api_env["MEDIAPLANE_API_PUBLIC_URL"] == "https://media.example.com"
    assert api_env["MEDIAPLANE_API_JWT_ALGORITHMS"] == "RS256"
    assert "MEDIAPLANE_API_JWT_SECRET" not in api_env
    assert api_env["MEDIAPLANE_S3_PATH_STYLE"] == "false"
    # Only the signing key is generated: RS256 needs no shared secret.
    assert set(out.one("Secret", "mediaplane-api-keys")["data"]) == {"stream-signing-key"}


def test_existing_secrets_replicas_and_disruption_budgets() -> None:
    out = Rendered.of(template(VALUE_SETS["existing-secrets-ha"]))
    assert not out.all("Secret")  # nothing generated: every key comes from the admin
    api_env = env_of(out.one("Deployment", API))
    assert api_env["MEDIAPLANE_API_JWT_SECRET"] == {
        "secretKeyRef": {"name": "mediaplane-jwt", "key": "secret"}}
    assert api_env["MEDIAPLANE_API_STREAM_SIGNING_KEY"] == {
        "secretKeyRef": {"name": "mediaplane-stream-signing", "key": "key"}}
    assert api_env["MEDIAPLANE_API_MAX_UPLOAD_BYTES"] == "10737418240"
    for name in (OPERATOR, API):
        deployment = out.one("Deployment", name)
        assert deployment["spec"]["replicas"] == 2
        env = env_of(deployment)
        assert env["AWS_ACCESS_KEY_ID"] == {
            "secretKeyRef": {"name": "mediaplane-s3", "key": "AWS_ACCESS_KEY_ID"}}
        assert env["MEDIAPLANE_S3_PUBLIC_ENDPOINT"] == "https://s3.example.com"
        pdb = out.one("PodDisruptionBudget", name)
        assert pdb["spec"]["maxUnavailable"] == 1
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert pdb["spec"]["selector"]["matchLabels"] == selector


def test_no_network_policy_and_a_custom_ladder() -> None:
    values = VALUE_SETS["no-netpol-custom-ladder"]
    out = Rendered.of(template(values))
    assert not out.all("NetworkPolicy")
    configmap = out.one("ConfigMap", "mediaplane-ladder")
    ladder = Ladder.model_validate(yaml.safe_load(configmap["data"]["ladder.yaml"]))
    assert [r.name for r in ladder.video] == ["720p", "480p", "240p"]
    assert ladder.segment_seconds == 6
    operator = out.one("Deployment", OPERATOR)
    env = env_of(operator)
    assert env["MEDIAPLANE_LADDER_FILE"] == "/etc/mediaplane/ladder/ladder.yaml"
    assert env["MEDIAPLANE_PLAYABLE_FIRST"] == "false"
    assert env["MEDIAPLANE_SHARED_DECODE"] == "false"
    assert env["MEDIAPLANE_WORKER_LAUNCH"] == "false"
    assert env["MEDIAPLANE_WORKER_CPU_REQUEST"] == "1"
    assert env["MEDIAPLANE_WORKER_BACKGROUND_CPU_REQUEST"] == "100m"
    mounts = {m["name"]: m["mountPath"] for m in container(operator)["volumeMounts"]}
    assert mounts["ladder"] == "/etc/mediaplane/ladder"
    # A ladder change rolls the operator (it reads the file at start).
    default = Rendered.of(template()).one("Deployment", OPERATOR)
    annotation = "checksum/ladder"
    assert (operator["spec"]["template"]["metadata"]["annotations"][annotation]
            != default["spec"]["template"]["metadata"]["annotations"][annotation])


def test_cors_settings_reach_the_api_and_the_operator() -> None:
    """The JSON API's allow-list, and the bucket rules the operator sets at start-up: uploads
    default to the API's origins, playback to any origin."""
    default = Rendered.of(template())
    assert env_of(default.one("Deployment", API))["MEDIAPLANE_API_CORS_ALLOWED_ORIGINS"] == ""
    operator = env_of(default.one("Deployment", OPERATOR))
    assert (operator["MEDIAPLANE_BUCKET_CORS"], operator["MEDIAPLANE_BUCKET_CORS_PLAYBACK_ORIGINS"],
            operator["MEDIAPLANE_BUCKET_CORS_UPLOAD_ORIGINS"]) == ("true", "*", "")
    apps = "{https://app.example.com,http://localhost:3000}"
    out = Rendered.of(template(sets={"api.cors.allowedOrigins": apps}))
    origins = "https://app.example.com,http://localhost:3000"
    assert env_of(out.one("Deployment", API))["MEDIAPLANE_API_CORS_ALLOWED_ORIGINS"] == origins
    assert env_of(out.one("Deployment", OPERATOR))["MEDIAPLANE_BUCKET_CORS_UPLOAD_ORIGINS"] == \
        origins
    own = Rendered.of(template(sets={"api.cors.allowedOrigins": apps, "s3.cors.manage": "false",
                                     "s3.cors.uploadOrigins": "{https://upload.example.com}"}))
    env = env_of(own.one("Deployment", OPERATOR))
    assert (env["MEDIAPLANE_BUCKET_CORS"], env["MEDIAPLANE_BUCKET_CORS_UPLOAD_ORIGINS"]) == (
        "false", "https://upload.example.com")


@pytest.mark.parametrize(("setting", "message"), [
    ("operator.replicaCount=-1", "at '/operator/replicaCount': minimum: got -1, want 0"),
    ("api.replicaCount=two", "at '/api/replicaCount': got string, want integer"),
    ("s3.bucket=", "at '/s3/bucket': minLength: got 0, want 3"),
    ("api.rateLimit.storage=mongodb://x",
     "at '/api/rateLimit/storage': 'mongodb://x' does not match pattern"),
    ("api.jwt.algorithms={none}",
     "at '/api/jwt/algorithms/0': value must be one of 'HS256', 'RS256', 'ES256'"),
    ("operator.replicas=3", "at '/operator': additional properties 'replicas' not allowed"),
    ("api.cors.allowedOrigins={https://app.example.com/path}",
     "at '/api/cors/allowedOrigins/0': 'https://app.example.com/path' does not match pattern"),
])
def test_schema_rejects_bad_values_clearly(setting: str, message: str) -> None:
    done = helm("template", "mediaplane", str(CHART), "--set", setting)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert message in done.stderr, done.stderr


def test_cross_field_rules_fail_with_a_message() -> None:
    done = helm("template", "mediaplane", str(CHART), "--set", "api.jwt.algorithms={ES256}")
    assert done.returncode != 0
    assert "api.jwt.jwksUrl is required when api.jwt.algorithms has RS256 or ES256" in done.stderr


def test_values_file_documents_every_top_level_key() -> None:
    """values.yaml and values.schema.json describe the same top-level settings."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(values) == set(schema["properties"]) - {"global"}
    assert schema["additionalProperties"] is False


def _catalog(out: Rendered) -> AiCatalog:
    configmap = out.one("ConfigMap", "mediaplane-ai-catalog")
    return AiCatalog.model_validate_json(configmap["data"]["catalog.json"])


def test_by_default_speech_needs_nothing_and_images_are_off() -> None:
    out = Rendered.of(template())
    catalog = _catalog(out)
    assert catalog.image is None
    assert [v.id for v in catalog.voices] == [BUILTIN_VOICE]
    for name in (OPERATOR, API):
        deployment = out.one("Deployment", name)
        mounts = {m["name"]: m["mountPath"] for m in container(deployment)["volumeMounts"]}
        assert mounts["ai-catalog"] == "/etc/mediaplane/ai"
    assert env_of(out.one("Deployment", API))["MEDIAPLANE_API_AI_IMAGE_BUDGET"] == "50/day"
    # Secrets: only `get` of the names set aside for the webhook endpoints' signing keys;
    # with webhooks off, none at all.
    operator_rules = out.one("ClusterRole", OPERATOR)["rules"]
    assert [(r["verbs"], r["resourceNames"]) for r in operator_rules
            if "secrets" in r["resources"]] == [(["get"], ["mediaplane-webhook-signing"])]
    off = Rendered.of(template(sets={"webhooks.enabled": "false"}))
    operator_rules = off.one("ClusterRole", OPERATOR)["rules"]
    assert not any("secrets" in r["resources"] for r in operator_rules)
    assert env_of(off.one("Deployment", OPERATOR))["MEDIAPLANE_WEBHOOKS"] == "false"


def test_an_image_service_voices_budgets_and_moderation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = Rendered.of(template(VALUE_SETS["ai-image-service"]))
    catalog = _catalog(out)
    assert catalog.image is not None
    assert catalog.image.kind.value == "openai"
    assert catalog.image.secret is not None
    assert (catalog.image.secret.name, catalog.image.secret.key) == ("image-service-key",
                                                                     "apiKey")
    assert catalog.image.sizes == ["1024x1024", "1536x1024", "1024x1536"]
    assert [v.id for v in catalog.voices] == [BUILTIN_VOICE, "en_GB-alan-low"]
    operator_env = env_of(out.one("Deployment", OPERATOR))
    assert operator_env["MEDIAPLANE_AI_SECRET_NAMESPACE"] == "mediaplane"
    for name in list(__import__("os").environ):
        if name.startswith("MEDIAPLANE_"):
            monkeypatch.delenv(name)
    for name, value in operator_env.items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
    settings = OperatorSettings()
    assert settings.ai_voices_volume == {
        "persistentVolumeClaim": {"claimName": "piper-voices", "readOnly": True}}
    api_env = env_of(out.one("Deployment", API))
    assert api_env["MEDIAPLANE_API_AI_SPEECH_BUDGET"] == "500 per day"
    assert api_env["MEDIAPLANE_API_AI_MODERATION_URL"] == "https://moderation.example.com"
    assert api_env["MEDIAPLANE_API_AI_MODERATION_API_KEY"] == {
        "secretKeyRef": {"name": "moderation-key", "key": "apiKey"}}
    rules = out.one("ClusterRole", OPERATOR)["rules"]
    # Besides the webhooks' signing keys (see the test above), the image service's key:
    # created once, then read and rotated by name only.
    every = [r for r in rules if "secrets" in r["resources"]]
    webhook_keys = [r for r in every if r.get("resourceNames") == ["mediaplane-webhook-signing"]]
    assert len(webhook_keys) == 1
    secrets = [r for r in every if r not in webhook_keys]
    assert {tuple(r["verbs"]) for r in secrets} == {("create",), ("get", "update")}
    named = next(r for r in secrets if "get" in r["verbs"])
    assert named["resourceNames"] == ["image-service-key"], "only that Secret is updated"
    api_rules = out.one("ClusterRole", API)["rules"]
    assert any(r["resources"] == ["events"] and r["verbs"] == ["create"] for r in api_rules)


def test_an_image_provider_without_a_url_is_refused() -> None:
    done = helm("template", "mediaplane", str(CHART),
                *value_args(sets={"ai.image.provider": "openai"}))
    assert done.returncode != 0
    assert "url" in done.stderr
