"""Retrying one failed variant without a new upload: the operator's side (a new Job under a
new deterministic name, attempts recorded, manifests rewritten) over the in-memory Kube,
and the REST route (202, idempotent, 409 unless failed) over in-memory stores."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from mediaplane.api.app import create_app
from mediaplane.api.context import ApiContext
from mediaplane.api.routers.uploads import dedup_asset_id
from mediaplane.api.settings import ApiSettings
from mediaplane.core import names
from mediaplane.core.objects import FormUpload
from mediaplane.core.resources import TranscodeJob, VariantStatus
from mediaplane.core.states import AssetCondition, AssetPhase, PodPhase, VariantState
from mediaplane.core.tasks import VariantType
from mediaplane.devcluster.tokens import mint_dev_token
from mediaplane.operator import reconcile
from tests.middle.test_reconcile import TENANT, Pipeline
from tests.support.memkube import MemoryAssets, MemoryObjects, MemoryTenants
from tests.support.resources import playable_status

FAILED_JOB = {"failed": 4, "conditions": [
    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
     "message": "Job has reached the specified backoff limit"}]}


class FlakyPipeline(Pipeline):
    """The pipeline where the Jobs named in `failing` fail every attempt."""

    def __init__(self, failing: set[str]) -> None:
        super().__init__()
        self.failing = failing

    async def step(self) -> bool:
        before = self.snapshot()
        await reconcile.reconcile_asset(self.ctx, TENANT, self.name)
        for tj_body in list(self.kube.transcode_jobs_.values()):
            await reconcile.ensure_job(self.ctx, TranscodeJob.model_validate(tj_body))
        for (namespace, job_name), body in list(self.kube.jobs.items()):
            if job_name in self.failing and not (body.get("status") or {}).get("conditions"):
                self.kube.run_pod(namespace, job_name, PodPhase.FAILED, "ffmpeg: moov atom "
                                  "not found", exit_code=3)
                job = self.kube.set_job_status(namespace, job_name, FAILED_JOB)
                await reconcile.sync_from_job(self.ctx, job)
                await reconcile.reconcile_asset(self.ctx, TENANT, self.name)
        return await super().step() or self.snapshot() != before

    def ask_retry(self, variant: str, retry: int) -> None:
        """What `kubectl patch … {"spec":{"retries":{…}}}` (or the REST route) writes."""
        body = self.kube.assets[(TENANT, self.name)]
        body["spec"]["retries"] = {**body["spec"].get("retries", {}), variant: retry}
        body["metadata"]["generation"] += 1


async def test_a_failed_rung_is_retried_in_a_new_job_and_published() -> None:
    pipeline = FlakyPipeline(set())
    pipeline.failing.add(names.child_name(pipeline.name, "360p"))
    pipeline.add_video()
    asset = await pipeline.run()
    failed = asset.status.variant("360p")
    assert failed is not None
    assert failed.state is VariantState.FAILED
    assert "BackoffLimitExceeded" in (failed.message or "")
    assert asset.phase is AssetPhase.READY, "playable on the other rungs"
    complete = asset.status.condition(AssetCondition.COMPLETE)
    assert complete is not None
    assert complete.reason == "SomeVariantsFailed"
    assert asset.status.manifests is not None
    assert asset.status.manifests.variants == ["240p", "audio"]
    assert "VariantFailed" in pipeline.kube.reasons(pipeline.name)

    pipeline.ask_retry("360p", 1)
    asset = await pipeline.run()
    retried = asset.status.variant("360p")
    assert retried is not None
    assert (retried.state, retried.retries) == (VariantState.SUCCEEDED, 1)
    assert asset.status.manifests is not None
    assert asset.status.manifests.variants == ["240p", "360p", "audio"]
    tj = pipeline.kube.transcode_job(TENANT, names.child_name(pipeline.name, "360p"))
    assert (tj.status.retry, tj.status.job_name) == (1, f"{tj.name}-r1")
    assert (TENANT, f"{tj.name}-r1") in pipeline.kube.jobs
    assert pipeline.kube.duplicates() == []
    assert "VariantRetrying" in pipeline.kube.reasons(pipeline.name)
    assert not await pipeline.step(), "nothing more happens: the retry is not repeated"
    # The storyboard came from the same decode, failed with it, and is retried on its own.
    storyboard = asset.status.variant("storyboard")
    assert storyboard is not None
    assert (storyboard.state, storyboard.retries) == (VariantState.FAILED, None)
    pipeline.ask_retry("storyboard", 1)
    asset = await pipeline.run()
    assert asset.status.is_true(AssetCondition.COMPLETE)
    assert pipeline.kube.count("Job") == 6, "the four first runs and two retries"


async def test_a_retry_that_fails_again_can_be_retried_again_and_repeats_are_ignored() -> None:
    pipeline = FlakyPipeline(set())
    tj_name = names.child_name(pipeline.name, "poster")
    pipeline.failing.update({tj_name, f"{tj_name}-r1"})
    pipeline.add_video()
    await pipeline.run()
    pipeline.ask_retry("poster", 1)
    asset = await pipeline.run()
    poster = asset.status.variant("poster")
    assert poster is not None
    assert (poster.state, poster.retries) == (VariantState.FAILED, 1)
    pipeline.ask_retry("240p", 1)  # not failed: nothing happens
    pipeline.ask_retry("poster", 2)
    asset = await pipeline.run()
    poster = asset.status.variant("poster")
    assert poster is not None
    assert (poster.state, poster.retries) == (VariantState.SUCCEEDED, 2)
    rung = asset.status.variant("240p")
    assert rung is not None
    assert rung.retries is None
    assert pipeline.kube.count("Job") == 6, "four first runs and two retries"
    assert pipeline.kube.duplicates() == []


# --- the REST route -------------------------------------------------------------------------

SECRET = "s" * 40
SHA = hashlib.sha256(b"retry").hexdigest()


class Api:
    def __init__(self, client: TestClient, assets: MemoryAssets) -> None:
        self.client, self.assets = client, assets

    def retry(self, asset_id: str, variant: str, expect: int) -> Any:
        response = self.client.post(f"/api/v1/media/{asset_id}/variants/{variant}/retry")
        assert response.status_code == expect, response.text
        body = response.json()
        return body["data"] if expect < 400 else body["error"]["code"]


@pytest.fixture
def api() -> Iterator[Api]:
    assets, objects, tenants = MemoryAssets(), MemoryObjects(), MemoryTenants({"acme": 10**6})
    settings = ApiSettings(jwt_secret=SecretStr(SECRET), stream_signing_key=SecretStr("k" * 40))

    async def context(settings: ApiSettings) -> ApiContext:
        return ApiContext.with_settings(settings, assets=assets, tenants=tenants,
                                        storage=objects)

    with TestClient(create_app(settings, context)) as client:
        client.headers["Authorization"] = f"Bearer {mint_dev_token(SECRET, 'acme', 'al', 600)}"
        grant = client.post("/api/v1/media/upload-url", json={
            "sha256": SHA, "sizeBytes": 10, "mime": "video/mp4", "filename": "a.mp4"}
        ).json()["data"]
        etag = objects.upload(FormUpload(url=grant["uploadUrl"], fields=grant["uploadFields"]),
                              b"\x00" * 10)
        assert client.post(f"/api/v1/media/{grant['assetId']}/finalize",
                           json={"etag": etag}).status_code == 200
        yield Api(client, assets)


def test_the_route_asks_once_answers_202_again_and_409_unless_failed(api: Api) -> None:
    asset_id = dedup_asset_id("acme", SHA)
    name = names.name_from_asset_id(asset_id)
    failed = VariantStatus(name="360p", type=VariantType.VIDEO, state=VariantState.FAILED,
                           message="BackoffLimitExceeded; last error: moov atom not found")
    api.assets.set_status("acme", name, playable_status("acme", asset_id, failed))
    assert api.retry(asset_id, "240p", 409) == "variant.not_failed"
    assert api.retry(asset_id, "1080p", 404) == "validation.variant"
    assert api.retry(asset_id, "../240p", 404) in ("not_found", "validation.variant")

    variant = api.retry(asset_id, "360p", 202)
    assert (variant["state"], variant["retries"]) == ("failed", 0)
    assert "moov atom" in variant["error"]
    assert api.assets.items[("acme", name)]["spec"]["retries"] == {"360p": 1}
    api.retry(asset_id, "360p", 202)  # asked already, the operator has not started it yet
    assert api.assets.items[("acme", name)]["spec"]["retries"] == {"360p": 1}

    # The operator started the retry: still 202 and nothing more asked while it runs.
    running = failed.model_copy(update={"state": VariantState.RUNNING, "retries": 1,
                                        "message": None})
    api.assets.set_status("acme", name, playable_status("acme", asset_id, running))
    assert api.retry(asset_id, "360p", 202)["retries"] == 1
    assert api.assets.items[("acme", name)]["spec"]["retries"] == {"360p": 1}

    # It failed again: a second retry is asked for.
    again = running.model_copy(update={"state": VariantState.FAILED, "message": "again"})
    api.assets.set_status("acme", name, playable_status("acme", asset_id, again))
    api.retry(asset_id, "360p", 202)
    assert api.assets.items[("acme", name)]["spec"]["retries"] == {"360p": 2}
