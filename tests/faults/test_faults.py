"""Faults injected while a batch of assets of mixed kinds is in flight, on the real dev
cluster: the operator SIGKILLed at random moments, the API server, etcd, S3 and the node
agent taken away mid-batch. For each: every asset ends Ready and Complete, no TranscodeJob
or Job is created twice (UIDs counted from watches started before the batch), deleting
the assets leaves no object in storage, and the operator is not crash-looping."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from kubernetes import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from mediaplane.core import keys, names
from mediaplane.core.names import TENANT_LABEL
from mediaplane.devcluster.cluster import DevCluster
from mediaplane.devcluster.tokens import mint_dev_token
from tests.conftest import OperatorHandle
from tests.support.api import ApiUser
from tests.support.assets import Assets, condition
from tests.support.creations import CreationWatch
from tests.support.media import Media, _ffmpeg
from tests.support.summary import LEDGER
from tests.support.wait import eventually

BATCH = int(os.environ.get("MEDIAPLANE_FAULT_BATCH", "20"))
SETTLE_SECONDS = float(os.environ.get("MEDIAPLANE_FAULT_SETTLE_SECONDS", "600"))
UserFactory = Callable[..., ApiUser]


def mixed_batch(directory: Path, size: int, salt: int) -> list[Media]:
    """`size` small distinct media: two videos for every image and audio file (videos
    make the most work items), short and small so a batch fits a 2-core machine."""
    items: list[Media] = []
    for index in range(size):
        tone = 220 + 7 * index + 1000 * salt
        if index % 4 in (0, 1):
            path = directory / f"v-{salt}-{index}.mp4"
            _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=15:duration=2",
                    "-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=48000:duration=2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a",
                    "aac", "-shortest", "-movflags", "+faststart", str(path))
            items.append(Media(path, "video/mp4", "video"))
        elif index % 4 == 2:
            path = directory / f"i-{salt}-{index}.png"
            _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={200 + index}x{120 + salt}:rate=1",
                    "-frames:v", "1", str(path))
            items.append(Media(path, "image/png", "image"))
        else:
            path = directory / f"a-{salt}-{index}.mp3"
            _ffmpeg("-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=44100:duration=2",
                    "-c:a", "libmp3lame", "-b:a", "64k", str(path))
            items.append(Media(path, "audio/mpeg", "audio"))
    return items


class Batch:
    """A batch in flight in its own tenant, watched from before its first asset."""

    def __init__(self, assets: Assets, kube_api: k8s.ApiClient, tenant: str,
                 media: list[Media]) -> None:
        self.assets, self.tenant, self.media = assets, tenant, media
        self.watch = CreationWatch(kube_api, tenant)
        self.names: list[str] = []

    def start(self) -> None:
        self.watch.__enter__()
        for item in self.media:
            self.names.append(self.assets.upload(self.tenant, item)["metadata"]["name"])

    def done(self) -> int:
        finished = 0
        for name in self.names:
            body = self.assets.get(self.tenant, name)
            if body and (body.get("status") or {}).get("phase") == "ready" and \
                    condition(body, "Complete") == "True":
                finished += 1
        return finished

    def settle(self, timeout: float = SETTLE_SECONDS) -> None:
        eventually(lambda: self.done() == len(self.names), "every asset Ready and Complete",
                   timeout=timeout, interval=2.0,
                   explain=lambda: f"{self.done()}/{len(self.names)} done")

    def check(self, operator: OperatorHandle) -> None:
        """Nothing lost, nothing duplicated, nothing left behind, no crash loop."""
        lost = len(self.names) - self.done()
        duplicates = self.watch.duplicates()
        self.watch.__exit__()
        LEDGER.batch(len(self.names), lost, len(duplicates))
        assert lost == 0
        assert duplicates == {}, f"created twice: {duplicates}"
        assert self.watch.count("Job") >= len(self.names) * 2
        # Every pod ran to an end (the node agent's restart orphaned none).
        unresolved = [(p.metadata.name, p.status.phase) for p in
                      self.assets.core.list_namespaced_pod(self.tenant).items
                      if p.status.phase not in ("Succeeded", "Failed")]
        assert unresolved == [], f"pods never resolved: {unresolved}"
        assert operator.process is not None, "the operator is not running"
        assert operator.process.alive(), f"the operator is not running: {operator.log_tail()}"
        for name in self.names:
            self.assets.custom.delete_namespaced_custom_object(
                names.GROUP, names.VERSION, self.tenant, names.ASSET_PLURAL, name)
        eventually(lambda: all(self.assets.get(self.tenant, n) is None for n in self.names),
                   "every asset deleted", timeout=180, interval=1.0)
        left = [k for n in self.names for k in self.assets.keys_under(
            keys.asset_prefix(self.tenant, names.asset_id_from_name(n)))]
        assert left == [], f"objects left for deleted assets: {left[:5]}"


@pytest.fixture
def batch(assets: Assets, kube_api: k8s.ApiClient, tenant: str,
          tmp_path: Path, request: pytest.FixtureRequest) -> Batch:
    salt = abs(hash(request.node.name)) % 97
    return Batch(assets, kube_api, tenant, mixed_batch(tmp_path, BATCH, salt))


def midway(batch: Batch, fraction: float = 0.25, timeout: float = 300) -> None:
    """Waits until some of the batch is done and the rest still in flight."""
    eventually(lambda: batch.done() >= max(1, int(len(batch.names) * fraction)),
               f"{fraction:.0%} of the batch done", timeout=timeout, interval=0.5)


@pytest.mark.faults_ci  # also in make test (CI): see README, the reliability suites
def test_operator_sigkilled_at_20_random_moments(batch: Batch, operator: OperatorHandle
                                                 ) -> None:
    seed = int(os.environ.get("MEDIAPLANE_FAULT_SEED", str(random.randrange(1 << 30))))  # noqa: S311
    print(f"fault seed: {seed} (MEDIAPLANE_FAULT_SEED={seed} repeats it)")
    rng = random.Random(seed)  # noqa: S311 (a reproducible schedule, not a secret)
    batch.start()
    for _ in range(20):
        time.sleep(rng.uniform(0.2, 3.0))
        operator.kill()
        LEDGER.fault(f"operator SIGKILL at a random moment (seed {seed})")
        time.sleep(rng.uniform(0.0, 1.0))
        operator.start()
    batch.settle()
    batch.check(operator)


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd", "nodeagent"])
def test_a_component_restarted_mid_batch(batch: Batch, operator: OperatorHandle,
                                         cluster: DevCluster, component: str) -> None:
    batch.start()
    midway(batch)
    cluster.restart(component)
    LEDGER.fault(f"{component} restarted mid-batch")
    batch.settle()
    batch.check(operator)


def test_s3_unreachable_for_30_seconds(batch: Batch, operator: OperatorHandle,
                                       cluster: DevCluster, make_tenant: Callable[..., str],
                                       make_user: UserFactory, api_url: str) -> None:
    user = make_user(make_tenant(), "alice")
    batch.start()
    midway(batch)
    cluster.pause("seaweedfs")
    LEDGER.fault("S3 unreachable (stalled) for 30 s mid-batch")
    paused = time.monotonic()
    try:
        answers = api_answers_while_away(user)
        missing = missing_dependencies(user)
        time.sleep(max(0.0, 30.0 - (time.monotonic() - paused)))
    finally:
        cluster.resume("seaweedfs")
    for route, (status, code, seconds) in answers.items():
        # The GET and list are served from the API's cache (the GET's id is unknown: 404).
        assert status in (200, 404, 503), f"{route}: {status} {code}"
        assert status != 503 or code == "unavailable", f"{route}: {code}"
        assert seconds <= 5.5, f"{route} took {seconds:.1f} s"
    assert answers["finalize"][0] == 503, answers
    assert missing == ["storage"], missing
    eventually(lambda: httpx.get(f"{api_url}/readyz", timeout=10).status_code == 200,
               "the API ready again once S3 is back", timeout=60)
    batch.settle()
    batch.check(operator)


def api_answers_while_away(user: ApiUser) -> dict[str, tuple[int, str, float]]:
    """Each route's status, error code and time while a dependency is away."""
    asset_id = names.new_asset_id()
    calls = {
        "finalize": ("POST", f"/api/v1/media/{asset_id}/finalize", {"etag": "0" * 32}),
        "get": ("GET", f"/api/v1/media/{asset_id}", None),
        "list": ("GET", "/api/v1/media", None),
        "upload-url": ("POST", "/api/v1/media/upload-url",
                       {"sha256": "ab" * 32, "sizeBytes": 10, "mime": "video/mp4",
                        "filename": "x.mp4"}),
        "readyz": ("GET", "/readyz", None),
    }
    answers = {}
    for route, (method, path, body) in calls.items():
        started = time.monotonic()
        response = user.client.request(method, path, json=body, timeout=30)
        code = response.json().get("error", {}).get("code", "") if response.content else ""
        answers[route] = (response.status_code, code, time.monotonic() - started)
    return answers


def missing_dependencies(user: ApiUser) -> list[str]:
    """The dependencies /readyz names as missing (it answers 503 `unavailable` then)."""
    response = user.client.get("/readyz", timeout=30)
    if response.status_code == 200:
        return []
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "unavailable", error
    return sorted(d["dependency"] for d in error.get("details") or [])


def asset_lists(base_url: str) -> float:
    """The API's complete lists of every asset so far (`mediaplane_api_asset_lists_total`)."""
    scraped = httpx.get(f"{base_url}/metrics", timeout=10).text
    return next(sample.value for family in text_string_to_metric_families(scraped)
                if family.name == "mediaplane_api_asset_lists"
                for sample in family.samples if sample.name.endswith("_total"))


@pytest.mark.faults_ci  # also in make test (CI): see README, the reliability suites
def test_api_server_down_and_stalled_gets_bounded_503s(
        cluster: DevCluster, operator: OperatorHandle, make_tenant: Callable[..., str],
        make_user: UserFactory, audio: Media) -> None:
    user = make_user(make_tenant(), "alice")
    known = user.upload(audio)
    user.wait_status(known, "ready")
    lists = asset_lists(user.base_url)
    for how in ("stalled", "down"):
        if how == "stalled":
            cluster.pause("kube-apiserver")
        else:
            cluster.process("kube-apiserver").stop()
        LEDGER.fault(f"kube-apiserver {how}, REST routes probed")
        try:
            answers = api_answers_while_away(user)
            cached = user.client.get(f"/api/v1/media/{known}", timeout=30)
            missing = missing_dependencies(user)
        finally:
            if how == "stalled":
                cluster.resume("kube-apiserver")
            else:
                cluster.restart("kube-apiserver")
        for route, (status, code, seconds) in answers.items():
            assert status != 500, f"{how}: {route} answered 500"
            assert status in (200, 404, 503), f"{how}: {route}: {status} {code}"
            assert status != 503 or code == "unavailable"
            assert seconds <= 5.5, f"{how}: {route} took {seconds:.1f} s"
        assert answers["readyz"][0] == 503
        assert "kubernetes" in missing, missing
        assert cached.status_code == 200, "a read the cache can answer keeps working"
    eventually(lambda: httpx.get(f"{user.base_url}/readyz", timeout=5).status_code == 200,
               "the API ready again", timeout=60)
    # Its watch of the assets ended with the server: it listed them all again (/metrics).
    eventually(lambda: asset_lists(user.base_url) > lists, "the informer's new list",
               timeout=30)
    assert operator.process is not None
    assert operator.process.alive()


def test_two_operator_replicas_only_one_acts(batch: Batch, operator: OperatorHandle,
                                             cluster: DevCluster) -> None:
    """Two replicas in one kopf peering: the standby does nothing while the other works,
    so nothing is created twice; killing the active one hands over to the other."""
    import subprocess
    import sys

    from mediaplane.devcluster.services import operator_env

    kubectl = [str(p) for p in [Path(cluster.env()["PATH"].split(os.pathsep)[0]) / "kubectl"]]
    peering = Path(__file__).parents[2] / "charts/mediaplane/crds/clusterkopfpeerings.kopf.dev.yaml"
    env = {**os.environ, **cluster.env()}
    subprocess.run([*kubectl, "apply", "-f", str(peering)], check=True, env=env,
                   capture_output=True)
    eventually(lambda: subprocess.run(
        [*kubectl, "apply", "-f", "-"], input=b"apiVersion: kopf.dev/v1\n"
        b"kind: ClusterKopfPeering\nmetadata:\n  name: mediaplane-faults\n", env=env,
        capture_output=True).returncode == 0, "the peering object", timeout=30)
    operator.stop()
    replicas = [cluster.spawn(f"operator-replica-{n}", [
        sys.executable, "-m", "mediaplane.operator", "--peering", "mediaplane-faults",
        "--priority", str(100 + n)], operator_env(cluster.env())) for n in range(2)]
    LEDGER.fault("two operator replicas in one peering")
    try:
        time.sleep(5)
        batch.start()
        midway(batch, 0.5)
        replicas[1].popen.kill()  # the higher priority one is the active one
        LEDGER.fault("the active replica SIGKILLed mid-batch")
        batch.settle()
        operator.start()  # the session's operator, for the checks and the next tests
        for replica in replicas:
            replica.stop()
        batch.check(operator)
    finally:
        for replica in replicas:
            replica.stop()
        if operator.process is None:
            operator.start()


def test_a_hanging_worker_and_an_always_failing_one(
        batch: Batch, operator: OperatorHandle, cluster: DevCluster,
        make_tenant: Callable[..., str], make_user: UserFactory, api_url: str,
        audio: Media) -> None:
    """The storyboard's worker hangs (killed at activeDeadlineSeconds, retried once, then
    failed with the reason) and the poster's always fails: each video ends Ready on its
    other rungs, Complete with those two failed, an event naming each. Then each is retried
    without a new upload (REST for one asset, kubectl for another) with a sound worker."""
    import json
    import sys

    from mediaplane.devcluster.services import operator_env, worker_command

    faulty = [sys.executable, str(Path(__file__).parents[1] / "support" / "faultyworker.py"),
              "--hang", "storyboard", "--fail", "poster", "--", *worker_command()]
    env = {**operator_env(cluster.env()), "MEDIAPLANE_WORKER_COMMAND": json.dumps(faulty),
           "MEDIAPLANE_JOB_DEADLINE_SECONDS": "30", "MEDIAPLANE_JOB_BACKOFF_LIMIT": "1"}
    operator.stop()
    LEDGER.fault("storyboard workers hang, poster workers always fail")
    faulty_operator = cluster.spawn("operator-faulty", [sys.executable, "-m",
                                                        "mediaplane.operator", "--standalone"],
                                    env)
    try:
        batch.start()
        batch.settle()
    finally:
        faulty_operator.stop()
        operator.start()
    videos = [n for n, m in zip(batch.names, batch.media, strict=True) if m.kind == "video"]
    for name in videos:
        body = batch.assets.get(batch.tenant, name) or {}
        status = body["status"]
        assert status["phase"] == "ready", status
        assert status["playable"], status
        variants = {v["name"]: v for v in status["variants"]}
        assert variants["poster"]["state"] == "failed"
        assert "injected failure of poster" in variants["poster"]["message"]
        assert variants["storyboard"]["state"] == "failed"
        assert variants["storyboard"]["message"].startswith(("DeadlineExceeded",
                                                             "BackoffLimitExceeded")), \
            variants["storyboard"]["message"]
        reasons = [m for r, m in batch.assets.events(batch.tenant, name) if r == "VariantFailed"]
        assert any("poster" in m for m in reasons), reasons
        assert any("storyboard" in m for m in reasons), reasons
        pods = batch.assets.core.list_namespaced_pod(
            batch.tenant, label_selector=f"job-name={names.child_name(name, 'storyboard')}")
        assert len(pods.items) == 2, "the hung attempt was retried once"
        assert all(p.status.reason == "DeadlineExceeded" or p.status.phase == "Failed"
                   for p in pods.items)

    # Retried without a new upload, the worker sound again: REST, then kubectl.
    first, second = videos[0], videos[1]
    batch.assets.core.patch_namespace(batch.tenant, {"metadata": {"labels": {
        TENANT_LABEL: "true"}}})  # a tenant for the REST API too
    token = mint_dev_token(cluster.env()["MEDIAPLANE_API_JWT_SECRET"], batch.tenant, "ops",
                           3600)
    tenant_user = ApiUser(api_url, batch.tenant, "ops", token)
    retried = tenant_user.call(
        "POST", f"/api/v1/media/{names.asset_id_from_name(first)}/variants/poster/retry",
        expect=202)["data"]
    assert retried["name"] == "poster"
    tenant_user.call(
        "POST", f"/api/v1/media/{names.asset_id_from_name(first)}/variants/poster/retry",
        expect=202)
    batch.assets.custom.patch_namespaced_custom_object(
        names.GROUP, names.VERSION, batch.tenant, names.ASSET_PLURAL, second,
        {"spec": {"retries": {"storyboard": 1}}})

    def variant(name: str, which: str) -> dict[str, object] | None:
        body = batch.assets.get(batch.tenant, name) or {}
        found = {v["name"]: v for v in (body.get("status") or {}).get("variants", [])}
        entry = found.get(which)
        return entry if entry and entry["state"] == "succeeded" else None

    poster = eventually(lambda: variant(first, "poster"), "the retried poster", timeout=180)
    storyboard = eventually(lambda: variant(second, "storyboard"), "the retried storyboard",
                            timeout=180)
    assert poster["retries"] == 1
    assert storyboard["retries"] == 1
    jobs = {j.metadata.name for j in batch.assets.jobs(batch.tenant, first)}
    assert names.child_name(first, "poster") + "-r1" in jobs
    assert not [n for n in jobs if n.endswith("-r2")], "asked twice, run once"
    batch.watch.__exit__()
    assert batch.watch.duplicates() == {}
    tenant_user.close()

