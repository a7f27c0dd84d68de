"""AI assets through reconcile.py over the in-memory OperatorKube: the generation Job, the
digest recorded into the spec, then the ordinary probe and variants; a failed generation;
an operator killed after every write; the service's Secret copied for image Jobs only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mediaplane.core import names
from mediaplane.core.ai import BUILTIN_VOICE, ImageService, SecretRef
from mediaplane.core.resources import (
    GenerationSpec,
    ImageGeneration,
    MediaAsset,
    SpeechGeneration,
    TranscodeJob,
)
from mediaplane.core.states import AssetCondition, AssetPhase, PodPhase, SourceOrigin
from mediaplane.core.tasks import (
    PROVIDER_KEY_ENV,
    AudioFormat,
    GeneratedObject,
    GenerationKind,
    GenerationOutcome,
    ImageProviderKind,
    MediaKind,
    ProbeOutcome,
    ProbeResult,
    TaskType,
    Verdict,
)
from mediaplane.operator import reconcile
from mediaplane.operator.settings import OperatorSettings
from tests.middle.test_reconcile import ASSET_ID, TENANT, Pipeline
from tests.support.memkube import SimulatedCrash

PICTURE = b"\x89PNG\r\n\x1a\n" + b"\x01" * 500
SPEECH = b"OggS" + b"\x02" * 800
SECRET = "image-service-key"


class GenerationPipeline(Pipeline):
    def __init__(self, tmp_path: Path, *, fail_with: str | None = None) -> None:
        self.catalog_path = tmp_path / "catalog.json"
        service = ImageService(kind=ImageProviderKind.OPENAI, url="http://127.0.0.1:9",
                               models=["gpt-image-1"], secret=SecretRef(name=SECRET))
        self.catalog_path.write_text(json.dumps({"image": service.model_dump(
            mode="json", by_alias=True, exclude_none=True)}))
        self.fail_with = fail_with
        super().__init__()
        self.kube.secrets[("mediaplane", SECRET)] = {"apiKey": "c2stc2VjcmV0"}

    def restart(self):  # type: ignore[no-untyped-def]
        ctx = super().restart()
        ctx.settings = OperatorSettings(worker_service_account="mp-worker",
                                        ai_catalog_file=self.catalog_path)
        from mediaplane.core.ai import CatalogFile

        ctx.catalog = CatalogFile(self.catalog_path)
        return ctx

    def add_generated(self, kind: GenerationKind) -> MediaAsset:
        if kind is GenerationKind.IMAGE:
            gen = GenerationSpec(type=kind, model="gpt-image-1", prompt="a kite",
                                 request_sha256="a" * 64, image=ImageGeneration(
                                     size="small", aspect_ratio="1:1", width=512, height=512))
            media, mime = MediaKind.IMAGE, "image/png"
        else:
            gen = GenerationSpec(type=kind, model=f"piper:{BUILTIN_VOICE}", prompt="hello",
                                 request_sha256="b" * 64, speech=SpeechGeneration(
                                     voice=BUILTIN_VOICE, language="en-US",
                                     format=AudioFormat.OGG))
            media, mime = MediaKind.AUDIO, "audio/ogg"
        asset = MediaAsset.new(TENANT, ASSET_ID, kind=media, mime=mime, origin=SourceOrigin.AI,
                               generation=gen, finalizers=[names.FINALIZER])
        return self.kube.add_asset(asset)

    def result_of(self, tj: TranscodeJob) -> str:
        asset = self.asset()
        if tj.spec.task is TaskType.GENERATE:
            data = PICTURE if asset.spec.kind is MediaKind.IMAGE else SPEECH
            self.objects.put(tj.spec.input.key, data, asset.spec.mime)
            return GenerationOutcome(generated=GeneratedObject(
                sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
                etag=f"etag-{len(data)}", mime=asset.spec.mime,
                provider_seconds=0.5)).model_dump_json()
        if tj.spec.task is TaskType.PROBE:
            image = asset.spec.kind is MediaKind.IMAGE
            probe = ProbeResult(detected_mime=asset.spec.mime,
                                format_name="png_pipe" if image else "ogg",
                                width=512 if image else None, height=512 if image else None,
                                duration_seconds=None if image else 2.0, has_video=image,
                                has_audio=not image)
            return ProbeOutcome(verdict=Verdict.ACCEPTED, probe=probe).model_dump_json()
        return super().result_of(tj)

    async def step(self) -> bool:
        if self.fail_with is None:
            return await super().step()
        before = self.snapshot()
        await reconcile.reconcile_asset(self.ctx, TENANT, self.name)
        for body in list(self.kube.transcode_jobs_.values()):
            await reconcile.ensure_job(self.ctx, TranscodeJob.model_validate(body))
        for (namespace, job_name), body in list(self.kube.jobs.items()):
            if (body.get("status") or {}).get("conditions"):
                continue
            self.kube.run_pod(namespace, job_name, PodPhase.FAILED, self.fail_with,
                              exit_code=6)
            job = self.kube.set_job_status(namespace, job_name, {"failed": 1, "conditions": [
                {"type": "Failed", "status": "True", "reason": "PodFailurePolicy",
                 "message": "Container worker failed with exit code 6"}]})
            await reconcile.sync_from_job(self.ctx, job)
            await reconcile.reconcile_asset(self.ctx, TENANT, self.name)
        return bool(self.snapshot() != before)


@pytest.mark.parametrize("kind", list(GenerationKind))
async def test_a_generated_asset_becomes_an_ordinary_ready_asset(
        kind: GenerationKind, tmp_path: Path) -> None:
    pipeline = GenerationPipeline(tmp_path)
    pipeline.add_generated(kind)
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    generating = pipeline.asset()
    assert generating.phase is AssetPhase.GENERATING
    assert generating.status.generation is not None
    assert pipeline.kube.count("TranscodeJob") == 1, "nothing but the generation before it"
    asset = await pipeline.run()
    assert asset.phase is AssetPhase.READY, asset.status
    data = PICTURE if kind is GenerationKind.IMAGE else SPEECH
    assert asset.spec.sha256 == hashlib.sha256(data).hexdigest()
    assert asset.spec.size_bytes == len(data)
    assert asset.status.is_true(AssetCondition.GENERATED)
    assert asset.status.is_true(AssetCondition.UPLOADED)
    assert asset.status.is_true(AssetCondition.PROBED)
    assert asset.status.generation is not None
    assert asset.status.generation.provider_seconds == 0.5
    tasks = {TranscodeJob.model_validate(b).spec.task.value
             for b in pipeline.kube.transcode_jobs_.values()}
    assert tasks == {"generate", "probe", "image" if kind is GenerationKind.IMAGE else "audio"}
    assert pipeline.kube.duplicates() == []
    reasons = pipeline.kube.reasons(pipeline.name)
    assert reasons.index("Generating") < reasons.index("Generated") < reasons.index("Probing")
    job = pipeline.kube.jobs[(TENANT, f"{pipeline.name}-generate")]
    env = {e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    if kind is GenerationKind.IMAGE:
        assert PROVIDER_KEY_ENV in env
        assert pipeline.kube.secrets[(TENANT, SECRET)] == {"apiKey": "c2stc2VjcmV0"}
    else:
        assert PROVIDER_KEY_ENV not in env
        assert (TENANT, SECRET) not in pipeline.kube.secrets
    others = [b for k, b in pipeline.kube.jobs.items() if not k[1].endswith("-generate")]
    assert others
    for other in others:
        names_ = {e["name"] for e in other["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert PROVIDER_KEY_ENV not in names_, "only generation Jobs get the key"


async def test_a_refused_generation_fails_the_asset_with_the_services_reason(
        tmp_path: Path) -> None:
    pipeline = GenerationPipeline(
        tmp_path, fail_with="ProviderRefused: 400: rejected by the safety system")
    pipeline.add_generated(GenerationKind.IMAGE)
    asset = await pipeline.run()
    assert asset.phase is AssetPhase.FAILED
    assert asset.status.generation is not None
    assert asset.status.generation.state.value == "failed"
    assert asset.status.generation.reason == "ProviderRefused"
    assert asset.status.generation.message == "400: rejected by the safety system"
    ready = asset.status.condition(AssetCondition.READY)
    assert ready is not None
    assert ready.reason == "GenerationFailed"
    assert asset.spec.sha256 is None, "nothing was recorded"
    assert pipeline.kube.count("TranscodeJob") == 1
    assert "GenerationFailed" in pipeline.kube.reasons(pipeline.name)


async def test_a_missing_service_secret_fails_the_generation_without_a_job(
        tmp_path: Path) -> None:
    pipeline = GenerationPipeline(tmp_path)
    del pipeline.kube.secrets[("mediaplane", SECRET)]
    pipeline.add_generated(GenerationKind.IMAGE)
    asset = await pipeline.run()
    assert asset.phase is AssetPhase.FAILED
    assert asset.status.generation is not None
    assert asset.status.generation.reason == "GenerationUnavailable"
    assert pipeline.kube.count("Job") == 0


async def test_an_operator_killed_after_any_write_still_generates_once(tmp_path: Path) -> None:
    clean = GenerationPipeline(tmp_path)
    clean.add_generated(GenerationKind.SPEECH)
    await clean.run()
    total = clean.kube.writes
    for crash_after in range(1, total):
        pipeline = GenerationPipeline(tmp_path)
        pipeline.add_generated(GenerationKind.SPEECH)
        pipeline.kube.crash_after = crash_after
        asset = await pipeline.run(limit=40)
        assert asset.phase is AssetPhase.READY, (crash_after, asset.status)
        assert pipeline.kube.duplicates() == [], crash_after
        assert pipeline.kube.creations[f"Job/{TENANT}/{pipeline.name}-generate"] == 1
    with pytest.raises(SimulatedCrash):
        raise SimulatedCrash("the helper above really raises this")
