"""AI generation, pure parts: the catalogue, sizes, the idempotency key, budgets in memory,
the generation Job's manifest and the generating asset's status."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mediaplane.api.budgets import Budget, Budgets, MemoryBudgets
from mediaplane.core import ai, names
from mediaplane.core.ai import AiCatalog, CatalogFile, ImageService, SecretRef, Voice
from mediaplane.core.resources import (
    GenerationSpec,
    ImageGeneration,
    MediaAsset,
    SpeechGeneration,
    TranscodeJobStatus,
    WorkerResultStatus,
)
from mediaplane.core.states import AssetCondition, AssetPhase, SourceOrigin, TranscodePhase
from mediaplane.core.tasks import (
    EXIT_PROVIDER_REFUSED,
    PROVIDER_KEY_ENV,
    VOICES_DIR_ENV,
    AudioFormat,
    GeneratedObject,
    GenerationKind,
    ImageProviderKind,
    MediaKind,
    PresignedPost,
    TaskType,
    WorkerTask,
)
from mediaplane.operator import generation
from mediaplane.operator.settings import OperatorSettings

ASSET_ID = "mda_0123456789abcdefghjkmnpqrs"
SERVICE = ImageService(kind=ImageProviderKind.OPENAI, url="http://127.0.0.1:9",
                       models=["gpt-image-1"], secret=SecretRef(name="image-key"),
                       sizes=["1024x1024", "1536x1024", "1024x1536"])


def image_asset(**spec: object) -> MediaAsset:
    params = ImageGeneration(size="medium", aspect_ratio="16:9", width=1024, height=576,
                             style="line-art")
    gen = GenerationSpec(type=GenerationKind.IMAGE, model="gpt-image-1", prompt="a kite",
                         request_sha256="a" * 64, image=params)
    asset = MediaAsset.new("acme", ASSET_ID, kind=MediaKind.IMAGE, mime="image/png",
                           origin=SourceOrigin.AI, generation=gen)
    asset.metadata.uid = "uid-1"
    return asset


def speech_asset(voice: str = ai.BUILTIN_VOICE) -> MediaAsset:
    gen = GenerationSpec(type=GenerationKind.SPEECH, model=f"piper:{voice}", prompt="hello",
                         request_sha256="b" * 64, speech=SpeechGeneration(
                             voice=voice, language="en-US", format=AudioFormat.OGG))
    asset = MediaAsset.new("acme", ASSET_ID, kind=MediaKind.AUDIO, mime="audio/ogg",
                           origin=SourceOrigin.AI, generation=gen)
    asset.metadata.uid = "uid-2"
    return asset


def test_dimensions_follow_size_and_shape_in_multiples_of_64() -> None:
    assert ai.dimensions(1024, "1:1") == (1024, 1024)
    assert ai.dimensions(1024, "16:9") == (1024, 576)
    assert ai.dimensions(1024, "9:16") == (576, 1024)
    assert ai.dimensions(512, "3:2") == (512, 320)
    assert all(v % 64 == 0 for v in ai.dimensions(1536, "4:3"))


def test_nearest_size_prefers_the_shape_then_the_area() -> None:
    allowed = ["1024x1024", "1536x1024", "1024x1536"]
    assert ai.nearest_size(1024, 576, allowed) == (1536, 1024)
    assert ai.nearest_size(576, 1024, allowed) == (1024, 1536)
    assert ai.nearest_size(512, 512, allowed) == (1024, 1024)
    assert ai.nearest_size(640, 384, []) == (640, 384)


def test_the_asset_id_depends_on_tenant_model_prompt_and_parameters_only() -> None:
    prompt = ai.normalise_prompt("  A   red\tkite\u00a0over the sea ")
    assert prompt == "A red kite over the sea"
    digest = ai.request_digest("image", prompt, {"size": "medium", "aspectRatio": "1:1"})
    same = ai.request_digest("image", ai.normalise_prompt("A red kite over the sea"),
                             {"aspectRatio": "1:1", "size": "medium"})
    assert digest == same
    asset_id = ai.generated_asset_id("acme", "gpt-image-1", digest)
    assert names.ASSET_ID_PATTERN.match(asset_id)
    assert asset_id == ai.generated_asset_id("acme", "gpt-image-1", same)
    assert asset_id != ai.generated_asset_id("other", "gpt-image-1", digest)
    assert asset_id != ai.generated_asset_id("acme", "dall-e-3", digest)
    assert digest != ai.request_digest("image", prompt, {"size": "large", "aspectRatio": "1:1"})


def test_voices_match_their_language_and_need_one_source() -> None:
    voice = AiCatalog().voice(ai.BUILTIN_VOICE)
    assert voice is not None
    assert voice.speaks("en-US")
    assert voice.speaks("en")
    assert voice.speaks("EN-us")
    assert not voice.speaks("en-GB")
    assert not voice.speaks("fr-FR")
    with pytest.raises(ValueError, match="exactly one"):
        Voice(id="x", language="en", package="p", file="x.onnx")
    with pytest.raises(ValueError, match="validation error"):
        Voice(id="x", language="en", file="../x.onnx")


def test_the_catalogue_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    catalog = CatalogFile(path)
    assert catalog.get().image is None, "no file: the built-in catalogue"
    path.write_text(json.dumps({"image": SERVICE.model_dump(mode="json", by_alias=True)}))
    first = catalog.get()
    assert first.image is not None
    assert first.image.models == ["gpt-image-1"]
    assert catalog.get() is first, "unchanged file: not parsed again"
    extra = {"id": "alan", "language": "en-GB", "file": "en_GB-alan-low.onnx"}
    path.write_text(json.dumps({"voices": [extra]}))
    assert [v.id for v in catalog.get().voices] == ["alan"]


def test_budgets_renew_per_window_and_refunds_happen_once() -> None:
    async def run() -> None:
        budgets = Budgets(MemoryBudgets())
        budget = Budget.parse("2 per 10 seconds")
        assert (budget.units, budget.period_seconds) == (2, 10)
        first, label = await budgets.take("acme", "image", budget, now=1000.5)
        second, _ = await budgets.take("acme", "image", budget, now=1001.0)
        third, _ = await budgets.take("acme", "image", budget, now=1009.9)
        assert (first.taken, second.taken, third.taken) == (True, True, False)
        assert third.remaining == 0
        assert third.renews_at == 1010
        assert label == "image:10:100"
        other, _ = await budgets.take("other", "image", budget, now=1001.0)
        assert other.taken, "tenants do not share a budget"
        speech, _ = await budgets.take("acme", "speech", budget, now=1001.0)
        assert speech.taken, "image and speech are separate budgets"
        renewed = await budgets.peek("acme", "image", budget, now=1010.0)
        assert renewed.remaining == 2
        # A refund of a unit of the current window: once per marker.
        usage, label = await budgets.take("acme", "image", budget, now=1010.0)
        assert usage.used == 1
        store = budgets.store
        assert isinstance(store, MemoryBudgets)
        key = budgets.key("acme", "image", budget, 101)
        assert await store.give_back(key, "m-1", 60)
        assert not await store.give_back(key, "m-1", 60)
        assert await store.used(key) == 0

    asyncio.run(run())


def test_the_generation_job_gets_the_key_by_reference_and_stops_on_a_refusal() -> None:
    asset = image_asset()
    tj = generation.transcode_job(asset)
    assert tj.name == f"{asset.name}-generate"
    assert tj.spec.task is TaskType.GENERATE
    assert tj.spec.input.key == asset.spec.source.key
    assert tj.spec.output_prefix is None
    assert tj.spec.variant is None
    catalog = AiCatalog(image=SERVICE)
    target = PresignedPost(url="http://s3", fields={"policy": "p"},
                           key_prefix=asset.spec.source.key)
    task = generation.generation_task(asset, catalog, target)
    assert task.image is not None
    assert (task.image.width, task.image.height) == (1024, 576)
    assert task.image.style_prompt == "black and white line art"
    assert task.image.provider.sizes == ("1024x1024", "1536x1024", "1024x1536")
    tj.metadata.uid = "tj-uid"
    settings = OperatorSettings(ai_job_backoff_limit=1, ai_job_deadline_seconds=120)
    job = generation.worker_job(tj, WorkerTask(type=TaskType.GENERATE, generation=task),
                                settings, catalog)
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env[PROVIDER_KEY_ENV] == {"name": PROVIDER_KEY_ENV, "valueFrom": {"secretKeyRef": {
        "name": "image-key", "key": "apiKey"}}}
    assert "sk-" not in json.dumps(job), "the key itself is never in the Job"
    assert job["spec"]["backoffLimit"] == 1
    assert job["spec"]["template"]["spec"]["activeDeadlineSeconds"] == 120
    assert job["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == \
        [EXIT_PROVIDER_REFUSED]
    assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert VOICES_DIR_ENV not in env


def test_speech_jobs_get_no_key_and_file_voices_get_the_volume() -> None:
    catalog = AiCatalog(image=SERVICE, voices=[
        Voice(id="alan", language="en-GB", file="en_GB-alan-low.onnx")])
    asset = speech_asset("alan")
    tj = generation.transcode_job(asset)
    tj.metadata.uid = "tj-uid"
    target = PresignedPost(url="http://s3", fields={}, key_prefix=asset.spec.source.key)
    task = generation.generation_task(asset, catalog, target)
    assert task.speech is not None
    assert task.speech.model_path == "en_GB-alan-low.onnx"
    volume = {"persistentVolumeClaim": {"claimName": "voices", "readOnly": True}}
    settings = OperatorSettings(ai_voices_volume=volume)
    job = generation.worker_job(tj, WorkerTask(type=TaskType.GENERATE, generation=task),
                                settings, catalog)
    pod = job["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert PROVIDER_KEY_ENV not in env, "only image generation gets the service's key"
    assert env[VOICES_DIR_ENV] == "/voices"
    assert {"name": "voices", **volume} in pod["volumes"]
    with pytest.raises(generation.UnavailableError):
        generation.generation_task(speech_asset("gone"), catalog, target)
    with pytest.raises(generation.UnavailableError):
        generation.generation_task(image_asset(), AiCatalog(), target)


def test_a_generating_asset_shows_generation_then_failure_with_the_services_reason() -> None:
    asset = image_asset()
    status, events = generation.compute(asset, None, "2026-12-01T00:00:00Z")
    assert status.phase is AssetPhase.GENERATING
    assert status.condition(AssetCondition.READY).reason == "Generating"  # type: ignore[union-attr]
    tj = generation.transcode_job(asset)
    tj.status = TranscodeJobStatus(phase=TranscodePhase.FAILED, message=(
        "Job has reached the specified backoff limit; last error: ProviderRefused: 400: "
        "rejected by the safety system"))
    asset.status = status
    failed, events = generation.compute(asset, tj, "2026-12-01T00:00:09Z")
    assert failed.phase is AssetPhase.FAILED
    assert failed.generation is not None
    assert (failed.generation.reason, failed.generation.message) == (
        "ProviderRefused", "400: rejected by the safety system")
    assert [e[1] for e in events] == ["GenerationFailed"]
    asset.status = failed
    _, again = generation.compute(asset, tj, "2026-12-01T00:00:10Z")
    assert again == [], "no second event for the same failure"


def test_a_succeeded_generation_reports_the_model_time() -> None:
    asset = image_asset()
    tj = generation.transcode_job(asset)
    tj.status = TranscodeJobStatus(phase=TranscodePhase.SUCCEEDED, result=WorkerResultStatus(
        generated=GeneratedObject(sha256="c" * 64, size_bytes=10, etag="e", mime="image/png",
                                  provider_seconds=1.25)))
    status, events = generation.compute(asset, tj, "2026-12-01T00:00:00Z")
    assert status.generation is not None
    assert status.generation.provider_seconds == 1.25
    assert status.is_true(AssetCondition.GENERATED)
    assert [e[1] for e in events] == ["Generated"]
