"""Caption jobs through reconcile.py over the in-memory Kube: a request becomes a caption
TranscodeJob, its plan Job and its Indexed Job, the chunk transcripts are merged into a
track and a transcript, and the asset says so; an operator killed after any write resumes
without a duplicate. The test plays the Job controller and the chunk workers (their
results and their uploads); the real ones run in tests/api/test_speech.py."""

from __future__ import annotations

from typing import Any

from mediaplane.core import keys, names
from mediaplane.core.ladder import Ladder
from mediaplane.core.resources import CaptionRequest, TranscodeJob
from mediaplane.core.speech import ChunkTranscript, Cue, chunk_bounds, chunk_file
from mediaplane.core.states import AssetCondition, PodPhase, TranscodePhase
from mediaplane.core.tasks import (
    ProbeOutcome,
    SpeechChunkOutcome,
    SpeechPlanOutcome,
    TaskType,
    Verdict,
    WorkerTask,
)
from mediaplane.operator import captionjobs, reconcile
from mediaplane.operator.context import Context
from mediaplane.operator.settings import OperatorSettings
from tests.middle.test_reconcile import ASSET_ID, PROBE, TENANT, Pipeline

INDEX = "batch.kubernetes.io/job-completion-index"
LONG = PROBE.model_copy(update={"duration_seconds": 100.0})


class CaptionPipeline(Pipeline):
    """The pipeline, plus caption Jobs: a plan pod answers cut points, each chunk pod
    uploads its chunk's transcript (a cue at the chunk's start) and answers its summary."""

    def restart(self) -> Context:
        self.ctx = Context(kube=self.kube, storage=self.objects,
                           settings=OperatorSettings(worker_service_account="mp-worker",
                                                     caption_parallelism=2),
                           ladder=Ladder())
        return self.ctx

    def result_of(self, tj: TranscodeJob) -> str:
        if tj.spec.task is TaskType.PROBE:
            return ProbeOutcome(verdict=Verdict.ACCEPTED, probe=LONG).model_dump_json()
        return super().result_of(tj)

    def request(self, language: str = "en-US", **fields: Any) -> None:
        body = self.kube.assets[(TENANT, self.name)]
        body["spec"]["captionRequests"] = {language: CaptionRequest(**fields).to_body()}

    async def step(self) -> bool:
        before = self.snapshot()
        await reconcile.reconcile_asset(self.ctx, TENANT, self.name)
        for body in list(self.kube.transcode_jobs_.values()):
            await reconcile.ensure_job(self.ctx, TranscodeJob.model_validate(body))
        for (namespace, job_name), body in list(self.kube.jobs.items()):
            if (body.get("status") or {}).get("conditions"):
                continue
            tj = self.kube.transcode_job(namespace, body["metadata"]["labels"][
                names.LABEL_TRANSCODE_JOB])
            container = body["spec"]["template"]["spec"]["containers"][0]
            env = {e["name"]: e["value"] for e in container["env"]}
            task = WorkerTask.model_validate_json(env["MEDIAPLANE_TASK"])
            completions = body["spec"].get("completions", 1)
            for index in range(completions):
                message = self.work(tj, task, index)
                pod = self.kube.run_pod(namespace, job_name, PodPhase.SUCCEEDED, message,
                                        annotations={INDEX: str(index)})
                await reconcile.sync_from_pod(self.ctx, pod)
            job = self.kube.set_job_status(namespace, job_name, {
                "succeeded": completions, "conditions": [{"type": "Complete",
                                                          "status": "True"}]})
            await reconcile.sync_from_job(self.ctx, job)
            await reconcile.reconcile_asset(self.ctx, TENANT, self.name)
        return bool(self.snapshot() != before)

    def work(self, tj: TranscodeJob, task: WorkerTask, index: int) -> str:
        if task.type is TaskType.SPEECH_PLAN:
            assert task.speech is not None
            return SpeechPlanOutcome(duration_seconds=task.speech.duration_seconds,
                                     cuts=[48.5], silences=7).model_dump_json()
        if task.type is TaskType.SPEECH_CHUNK:
            assert task.speech is not None
            assert task.output is not None
            start, end = chunk_bounds(task.speech.duration_seconds, task.speech.cuts)[index]
            chunk = ChunkTranscript(index=index, start=start, end=end, language="en", cues=[
                Cue(start=start + 1.0, end=start + 3.0, text=f"Chunk {index} speaks.")])
            name = chunk_file(index)
            self.objects.put(task.output.key_prefix + name, chunk.model_dump_json().encode())
            return SpeechChunkOutcome(index=index, file=name, cues=1,
                                      language="en").model_dump_json()
        return self.result_of(tj)


def caption_tjs(pipeline: Pipeline) -> list[TranscodeJob]:
    return [pipeline.kube.transcode_job(ns, n) for ns, n in pipeline.kube.transcode_jobs_
            if pipeline.kube.transcode_job(ns, n).spec.task is TaskType.CAPTION]


async def test_a_caption_request_becomes_a_merged_track_and_transcript() -> None:
    pipeline = CaptionPipeline()
    pipeline.add_video()
    pipeline.request("en-us")
    asset = await pipeline.run()
    (tj,) = caption_tjs(pipeline)
    assert tj.phase is TranscodePhase.SUCCEEDED
    assert tj.spec.caption is not None
    assert (tj.spec.caption.chunks, tj.spec.caption.language) == (2, "en-US")
    assert tj.status.speech is not None
    assert tj.status.speech.cuts == [48.5]
    assert (TENANT, captionjobs.plan_job_name(tj.name)) in pipeline.kube.jobs
    indexed = pipeline.kube.jobs[(TENANT, tj.name)]["spec"]
    assert (indexed["completionMode"], indexed["completions"]) == ("Indexed", 2)

    vtt = pipeline.objects.get_text(keys.generated_caption_key(TENANT, ASSET_ID, "en-US"))
    assert "00:00:01.000 --> 00:00:03.000\nChunk 0 speaks." in vtt
    assert "00:00:49.500 --> 00:00:51.500\nChunk 1 speaks." in vtt, "absolute timings"
    text = pipeline.objects.get_text(keys.transcript_key(TENANT, ASSET_ID, "en-US", "txt"))
    assert text == "Chunk 0 speaks.\n\nChunk 1 speaks.\n"
    (track,) = asset.status.captions
    assert (track.language, track.approved, track.model) == ("en-US", True, "whisper-base")
    assert asset.status.is_true(AssetCondition.CAPTIONS_READY)
    assert not asset.status.is_true(AssetCondition.CAPTIONS_GENERATING)
    assert [t.language for t in asset.caption_tracks()] == ["en-US"]
    reasons = pipeline.kube.reasons(pipeline.name)
    assert reasons.count("CaptionsGenerating") == 1
    assert reasons.count("CaptionsReady") == 1
    assert pipeline.kube.duplicates() == []


async def test_operator_killed_after_every_write_captions_once() -> None:
    clean = CaptionPipeline()
    clean.add_video()
    clean.request()
    await clean.run()
    total = clean.kube.writes
    for crash_after in range(1, total + 1):
        pipeline = CaptionPipeline()
        pipeline.add_video()
        pipeline.request()
        pipeline.kube.crash_after = crash_after
        asset = await pipeline.run(limit=40)
        where = f"killed after write {crash_after} of {total}"
        assert asset.status.is_true(AssetCondition.CAPTIONS_READY), where
        assert pipeline.kube.duplicates() == [], where
        assert len(caption_tjs(pipeline)) == 1, where
        assert pipeline.restarts == 1, where
        # Events follow the write they describe: a kill in between loses one, never doubles.
        assert pipeline.kube.reasons(pipeline.name).count("CaptionsReady") <= 1, where


async def test_a_tenant_annotation_captions_a_playable_video_automatically() -> None:
    pipeline = CaptionPipeline()
    pipeline.kube.namespaces[TENANT] = {names.AUTO_CAPTIONS_ANNOTATION: "fr-FR",
                                        names.AUTO_CAPTIONS_REVIEW_ANNOTATION: "true"}
    pipeline.add_video()
    asset = await pipeline.run()
    assert asset.status.auto_captions == "fr-FR"
    (job,) = asset.status.caption_jobs
    assert (job.language, job.auto, job.review_required) == ("fr-FR", True, True)
    (track,) = asset.status.captions
    assert track.approved is False, "the tenant asked for a review"
    assert asset.caption_tracks() == []
    # Decided once: a later change of the annotation does not touch this asset.
    pipeline.kube.namespaces[TENANT] = {}
    pipeline.ctx.annotations.clear()
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    assert pipeline.asset().status.auto_captions == "fr-FR"
