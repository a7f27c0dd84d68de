"""reconcile.py against the operator's own Kube interface, in memory: the whole pipeline of
an asset, an operator killed after every single write it makes, duplicate events, reads
that fail, quarantine, deletion. No server: the cluster tests run the same paths for real.

The test plays kopf (which handler runs on which event) and the Job controller with the
node agent (a Job gets a pod, the pod ends with the worker's result)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from typing import Any, cast

import kopf
import pytest

from mediaplane.core import keys, names
from mediaplane.core.ladder import (
    Ladder,
    audio_beside_probe,
    probe_rung_limit,
    rung_beside_probe,
)
from mediaplane.core.resources import MediaAsset, MediaAssetStatus, TranscodeJob
from mediaplane.core.states import (
    AssetCondition,
    AssetPhase,
    PodPhase,
    SourceOrigin,
    TranscodePhase,
)
from mediaplane.core.tasks import (
    MediaKind,
    ProbeOutcome,
    ProbeResult,
    TaskType,
    VariantOutcome,
    VariantOutput,
    VariantSpec,
    VariantType,
    Verdict,
)
from mediaplane.operator import handlers, reconcile
from mediaplane.operator.context import Context
from mediaplane.operator.settings import OperatorSettings
from mediaplane.operator.workloads import Job
from tests.support.memkube import MemoryKube, MemoryObjects, SimulatedCrash

TENANT = "acme"
ASSET_ID = "mda_0123456789abcdefghjkmnpqrs"
SOURCE = b"\x00" * 1000
PROBE = ProbeResult(detected_mime="video/mp4", format_name="mov,mp4", width=640, height=360,
                    duration_seconds=4.0, video_codec="h264", audio_codec="aac",
                    has_video=True, has_audio=True)
RENDITION_MPD = """<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT4S"
     minBufferTime="PT4S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <Period id="0"><AdaptationSet contentType="{ctype}">
    <Representation id="0" mimeType="{ctype}/mp4" codecs="{codecs}" bandwidth="1000">
      <SegmentTemplate timescale="1000" initialization="init.m4s" media="seg-$Number%05d$.m4s"
                       startNumber="1"><SegmentTimeline><S t="0" d="4000"/></SegmentTimeline>
      </SegmentTemplate></Representation></AdaptationSet></Period></MPD>"""


# The lowest rung started beside the probe in a pod of its own, not in the probe's pod.
RUNG_POD = OperatorSettings(probe_encodes_first_rung=False)


class Pipeline:
    """The operator's handlers driven as kopf and the Job controller would drive them."""

    def __init__(self, *, verdict: Verdict = Verdict.ACCEPTED, probe: ProbeResult = PROBE,
                 settings: OperatorSettings | None = None) -> None:
        self.kube = MemoryKube()
        self.objects = MemoryObjects()
        self.verdict = verdict
        self.probe = probe
        self.settings = settings or OperatorSettings()
        self.ctx = self.restart()
        self.restarts = 0

    def restart(self) -> Context:
        """A new operator process: nothing of the old one's memory survives."""
        settings = self.settings.model_copy(update={"worker_service_account": "mp-worker"})
        self.ctx = Context(kube=self.kube, storage=self.objects, settings=settings,
                           ladder=Ladder())
        return self.ctx

    def add_video(self) -> MediaAsset:
        asset = MediaAsset.new(TENANT, ASSET_ID, kind=MediaKind.VIDEO, mime="video/mp4",
                               sha256="a" * 64, size_bytes=len(SOURCE),
                               finalizers=[names.FINALIZER])
        self.objects.put(asset.spec.source.key, SOURCE, "video/mp4")
        return self.kube.add_asset(asset)

    @property
    def name(self) -> str:
        return names.name_from_asset_id(ASSET_ID)

    def asset(self) -> MediaAsset:
        return self.kube.asset(TENANT, self.name)

    def result_of(self, tj: TranscodeJob) -> str:
        """What the worker of `tj` writes to its termination message (and to storage)."""
        if tj.spec.task is TaskType.PROBE:
            probe = self.probe if self.verdict is Verdict.ACCEPTED else None
            # The audio the probe's pod copies once it accepts a source it can copy, and the
            # lowest rung it encodes meanwhile, for a source that keeps it.
            beside = [self.output_of(spec) for spec in tj.spec.also_encodes or []
                      if probe is not None and (
                          audio_beside_probe(spec, probe) if spec.type is VariantType.AUDIO
                          else rung_beside_probe(spec, probe, probe_rung_limit(Ladder())))]
            return ProbeOutcome(verdict=self.verdict, probe=probe,
                                reason=None if probe else "ChecksumMismatch",
                                message=None if probe else "sha256 differs",
                                also=beside or None).model_dump_json()
        variant = tj.spec.variant
        assert variant is not None
        # The Job a retry makes encodes its own rung only (`WorkerTask.also` is empty then).
        shared = (tj.spec.also_encodes or []) if not tj.status.retry else []
        return VariantOutcome(output=self.output_of(variant),
                              also=[self.output_of(spec) for spec in shared] or None
                              ).model_dump_json()

    def output_of(self, variant: VariantSpec) -> VariantOutput:
        """What a worker stores of `variant` (the MPD, which the master MPD is made from)."""
        if variant.type.value in ("video", "audio"):
            ctype = "video" if variant.type.value == "video" else "audio"
            codecs = "avc1.64001e" if ctype == "video" else "mp4a.40.2"
            prefix = keys.variant_prefix(TENANT, ASSET_ID, variant.name)
            self.objects.put(prefix + "manifest.mpd",
                             RENDITION_MPD.format(ctype=ctype, codecs=codecs).encode())
            return VariantOutput(name=variant.name, files=4, bytes=4000, bandwidth=1000,
                                 width=640 if ctype == "video" else None,
                                 height=variant.height, codecs=codecs, duration_seconds=4.0,
                                 playlist="media_0.m3u8", mpd="manifest.mpd")
        return VariantOutput(name=variant.name, files=1, bytes=500, file="poster.jpg")

    async def step(self) -> bool:
        """One round of every event the cluster would deliver now; True if anything moved."""
        before = self.snapshot()
        await reconcile.reconcile_asset(self.ctx, TENANT, self.name)
        for body in list(self.kube.transcode_jobs_.values()):
            await reconcile.ensure_job(self.ctx, TranscodeJob.model_validate(body))
        for (namespace, job_name), body in list(self.kube.jobs.items()):
            if (body.get("status") or {}).get("conditions") or \
                    (namespace, job_name) not in self.kube.jobs:
                continue  # ended, or deleted meanwhile
            tj = self.kube.transcode_job(
                namespace, body["metadata"]["labels"][names.LABEL_TRANSCODE_JOB])
            pod = self.kube.run_pod(namespace, job_name, PodPhase.SUCCEEDED, self.result_of(tj))
            await reconcile.sync_from_pod(self.ctx, pod)  # the pod event
            job = self.kube.set_job_status(namespace, job_name, {
                "succeeded": 1, "completionTime": "2026-12-01T00:00:06Z",
                "conditions": [{"type": "Complete", "status": "True"}]})
            await reconcile.sync_from_job(self.ctx, job)  # the Job event, a second later
            await reconcile.reconcile_asset(self.ctx, TENANT, self.name)  # the TJ event
        return bool(self.snapshot() != before)

    def count_asset_reads(self) -> Callable[[], int]:
        """From now on, counts the operator's reads of the asset: the function returned
        says how many so far."""
        reads = 0
        get_asset = self.kube.get_asset

        async def counting(namespace: str, name: str) -> MediaAsset | None:
            nonlocal reads
            reads += 1
            return await get_asset(namespace, name)

        self.kube.get_asset = counting  # type: ignore[method-assign]
        return lambda: reads

    def snapshot(self) -> Any:
        return (sorted(self.kube.creations.items()),
                repr(self.kube.assets), repr(self.kube.transcode_jobs_))

    async def resume(self) -> None:
        """What kopf runs for every object when the operator starts (on.resume)."""
        await reconcile.reconcile_asset(self.ctx, TENANT, self.name)
        for body in list(self.kube.transcode_jobs_.values()):
            await reconcile.ensure_job(self.ctx, TranscodeJob.model_validate(body))

    async def run(self, limit: int = 30) -> MediaAsset:
        """Until nothing moves; an operator crash restarts it and resumes."""
        for _ in range(limit):
            try:
                if not await self.step():
                    return self.asset()
            except SimulatedCrash:
                self.restarts += 1
                self.restart()
                await self.resume()
        raise AssertionError("the pipeline did not settle")


def tj_of(pipeline: Pipeline, variant: str) -> TranscodeJob:
    return pipeline.kube.transcode_job(TENANT, names.child_name(pipeline.name, variant))


async def test_a_video_goes_from_source_to_complete() -> None:
    pipeline = Pipeline()
    pipeline.add_video()
    asset = await pipeline.run()
    assert asset.phase is AssetPhase.READY
    assert asset.status.is_true(AssetCondition.COMPLETE)
    assert [v.name for v in asset.status.variants] == ["240p", "360p", "audio", "poster",
                                                       "storyboard"]
    assert asset.status.variant_summary == "5/5"
    prefix = keys.asset_prefix(TENANT, ASSET_ID)
    assert asset.status.manifests is not None
    assert asset.status.manifests.variants == ["240p", "360p", "audio"]
    assert pipeline.objects.get_text(prefix + "master.m3u8").count("#EXT-X-STREAM-INF") == 2
    assert "variants/audio/" in pipeline.objects.get_text(prefix + "manifest.mpd")
    assert pipeline.kube.count("TranscodeJob") == 6
    assert pipeline.kube.count("Job") == 4, "the probe's pod encodes the 240p; the 360p and "\
        "the storyboard share one decode"
    assert tj_of(pipeline, "240p").spec.encoded_by == tj_of(pipeline, "probe").name
    assert pipeline.kube.duplicates() == []
    reasons = pipeline.kube.reasons(pipeline.name)
    assert reasons.index("Probing") < reasons.index("PlayableEarly") < reasons.index("Complete")
    assert ("acme", "mp-worker") in pipeline.kube.service_accounts


async def test_playable_first_holds_back_the_rest_of_the_ladder() -> None:
    pipeline = Pipeline(settings=RUNG_POD)
    pipeline.add_video()

    async def finish(task: str) -> list[str]:
        """Runs `task`'s worker to success; the TranscodeJobs that exist afterwards."""
        tj = pipeline.kube.transcode_job(TENANT, names.child_name(pipeline.name, task))
        await reconcile.ensure_job(pipeline.ctx, tj)
        pod = pipeline.kube.run_pod(TENANT, tj.name, PodPhase.SUCCEEDED, pipeline.result_of(tj))
        await reconcile.sync_from_pod(pipeline.ctx, pod)
        await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
        return sorted(n.rsplit("-", 1)[-1] for _, n in pipeline.kube.transcode_jobs_)

    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    assert await finish("probe") == ["240p", "audio", "probe"]
    assert await finish("240p") == ["240p", "audio", "probe"], "audio still running"
    assert pipeline.asset().phase is AssetPhase.PROCESSING
    assert await finish("audio") == ["240p", "360p", "audio", "poster", "probe", "storyboard"]
    assert pipeline.asset().playable

    # The rest of the ladder asks for a tenth of the first wave's CPU: on a busy node, the
    # first wave of an asset uploaded meanwhile keeps most of the cores.
    for task in ("360p", "poster"):
        await reconcile.ensure_job(pipeline.ctx, pipeline.kube.transcode_job(
            TENANT, names.child_name(pipeline.name, task)))
    requests = {
        job["metadata"]["labels"][names.LABEL_TRANSCODE_JOB].rsplit("-", 1)[-1]: (
            job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            job["metadata"]["labels"].get(names.LABEL_PRIORITY))
        for job in pipeline.kube.jobs.values()}
    assert requests == {"probe": ("500m", None), "240p": ("500m", None),
                        "audio": ("500m", None), "360p": ("50m", "background"),
                        "poster": ("50m", "background")}
    follower = pipeline.kube.transcode_job(TENANT, names.child_name(pipeline.name, "storyboard"))
    assert follower.spec.encoded_by, "the storyboard shares the 360p's decode"
    assert follower.metadata.labels[names.LABEL_PRIORITY] == "background"


async def test_without_playable_first_every_job_asks_for_the_same_cpu() -> None:
    pipeline = Pipeline(settings=OperatorSettings(playable_first=False))
    pipeline.add_video()
    asset = await pipeline.run()
    assert asset.phase is AssetPhase.READY
    cpu = {job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
           for job in pipeline.kube.jobs.values()}
    assert cpu == {"500m"}


async def test_playable_is_written_before_the_rest_of_the_ladder_is_created() -> None:
    """Viewers wait for the status write that says playable, not for the rest of the
    ladder's TranscodeJobs (and the Jobs their creation sets off) to be made first."""
    pipeline = Pipeline()
    pipeline.add_video()
    existing_when_playable: list[list[str]] = []
    write_status = pipeline.kube.patch_asset_status

    async def recording(namespace: str, name: str, status: MediaAssetStatus) -> None:
        if status.playable and not existing_when_playable:
            existing_when_playable.append(
                sorted(n.rsplit("-", 1)[-1] for _, n in pipeline.kube.transcode_jobs_))
        await write_status(namespace, name, status)

    pipeline.kube.patch_asset_status = recording  # type: ignore[method-assign]
    asset = await pipeline.run()
    assert asset.phase is AssetPhase.READY
    assert existing_when_playable == [["240p", "audio", "probe"]]


async def _clean_run_writes() -> int:
    pipeline = Pipeline()
    pipeline.add_video()
    await pipeline.run()
    return pipeline.kube.writes


async def test_operator_killed_after_every_write_loses_and_duplicates_nothing() -> None:
    total = await _clean_run_writes()
    assert total > 20, "the pipeline makes a write per step: each is a place to die"
    for crash_after in range(1, total + 1):
        pipeline = Pipeline()
        pipeline.add_video()
        pipeline.kube.crash_after = crash_after
        asset = await pipeline.run()
        where = f"killed after write {crash_after} of {total}"
        assert pipeline.restarts == 1, where
        assert asset.phase is AssetPhase.READY, where
        assert asset.status.is_true(AssetCondition.COMPLETE), where
        assert pipeline.kube.duplicates() == [], where
        assert pipeline.kube.count("TranscodeJob") == 6, where
        assert pipeline.kube.count("Job") == 4, where


async def test_duplicate_and_concurrent_events_create_each_child_once() -> None:
    pipeline = Pipeline()
    pipeline.add_video()
    ctx = pipeline.ctx
    await asyncio.gather(*(reconcile.reconcile_asset(ctx, TENANT, pipeline.name)
                           for _ in range(5)))
    probe = pipeline.kube.transcode_job(TENANT, names.child_name(pipeline.name, "probe"))
    await asyncio.gather(*(reconcile.ensure_job(ctx, probe) for _ in range(5)))
    pod = pipeline.kube.run_pod(TENANT, probe.name, PodPhase.SUCCEEDED,
                                pipeline.result_of(probe))
    await asyncio.gather(*(reconcile.sync_from_pod(ctx, pod) for _ in range(3)))
    assert pipeline.kube.transcode_job(TENANT, probe.name).phase is TranscodePhase.SUCCEEDED
    assert pipeline.kube.duplicates() == []
    assert pipeline.kube.reasons(pipeline.name).count("Probing") == 1
    await pipeline.run()
    assert pipeline.kube.duplicates() == []
    del ctx
    pipeline.restart()
    gc.collect()
    assert pipeline.ctx.locks_held == 0, "no lock outlives the work it guarded"


async def test_a_burst_of_transcode_job_events_costs_one_more_reconcile() -> None:
    """While one reconcile of the asset runs, the TranscodeJob events that follow need one
    more, after it: the first waits for the lock, the others find it waiting and add
    nothing (it reads what they were told). Other callers always reconcile."""
    pipeline = Pipeline()
    pipeline.add_video()
    ctx = pipeline.ctx
    reads = pipeline.count_asset_reads()
    lock = await ctx.acquire(TENANT, pipeline.name)  # a reconcile in progress
    burst = [asyncio.create_task(reconcile.reconcile_asset(ctx, TENANT, pipeline.name,
                                                           coalesce=True)) for _ in range(5)]
    await asyncio.sleep(0)
    assert ctx.reconcile_waiting(TENANT, pipeline.name)
    resync = asyncio.create_task(reconcile.reconcile_asset(ctx, TENANT, pipeline.name))
    await asyncio.sleep(0)
    lock.release()
    await asyncio.gather(*burst, resync)
    assert reads() == 2, "the first of the burst, and the caller that did not coalesce"
    assert not ctx.reconcile_waiting(TENANT, pipeline.name)
    assert pipeline.kube.reasons(pipeline.name).count("Probing") == 1
    assert (await pipeline.run()).phase is AssetPhase.READY


async def test_a_failing_read_is_retried_then_reported_never_taken_for_missing() -> None:
    pipeline = Pipeline()
    pipeline.add_video()
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    probe = pipeline.kube.transcode_job(TENANT, names.child_name(pipeline.name, "probe"))
    await reconcile.ensure_job(pipeline.ctx, probe)
    pod = pipeline.kube.run_pod(TENANT, probe.name, PodPhase.SUCCEEDED,
                                pipeline.result_of(probe))

    pipeline.kube.failures.plan["get_transcode_job"] = reconcile.READ_ATTEMPTS - 1
    await reconcile.sync_from_pod(pipeline.ctx, pod)  # rides over the failures
    assert pipeline.kube.transcode_job(TENANT, probe.name).phase is TranscodePhase.SUCCEEDED

    # A read that keeps failing: the handler gives up loudly, with an event, and the
    # asset's resync timer records the outcome once the API server answers again.
    other = Pipeline()
    other.add_video()
    await reconcile.reconcile_asset(other.ctx, TENANT, other.name)
    probe = other.kube.transcode_job(TENANT, names.child_name(other.name, "probe"))
    await reconcile.ensure_job(other.ctx, probe)
    other.kube.run_pod(TENANT, probe.name, PodPhase.SUCCEEDED, other.result_of(probe))
    job = other.kube.set_job_status(TENANT, probe.name, {
        "succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
    other.kube.failures.plan["get_transcode_job"] = reconcile.READ_ATTEMPTS
    with pytest.raises(Exception, match="injected failure"):
        await reconcile.sync_from_job(other.ctx, Job.model_validate(job.to_body()))
    assert "TranscodeJobUnreadable" in other.kube.reasons(probe.name)
    assert other.kube.transcode_job(TENANT, probe.name).status.phase is not \
        TranscodePhase.SUCCEEDED
    await reconcile.resync_asset(other.ctx, TENANT, other.name)
    assert other.kube.transcode_job(TENANT, probe.name).phase is TranscodePhase.SUCCEEDED


async def test_quarantined_source_gets_no_variants() -> None:
    pipeline = Pipeline(verdict=Verdict.QUARANTINED, settings=RUNG_POD)
    pipeline.add_video()
    asset = await pipeline.run()
    assert asset.phase is AssetPhase.QUARANTINED
    assert asset.status.quarantine is not None
    assert asset.status.quarantine.reason == "ChecksumMismatch"
    assert asset.status.variants == [], "nothing started before the verdict is published"
    remaining = [name for _, name in pipeline.kube.transcode_jobs_]
    assert remaining == [names.child_name(pipeline.name, "probe")]
    assert pipeline.kube.deletions == [
        f"TranscodeJob/{TENANT}/{names.child_name(pipeline.name, '240p')}"]
    assert {"Quarantined", "SpeculationDiscarded"} <= set(pipeline.kube.reasons(pipeline.name))


async def test_a_refused_source_gets_nothing_from_the_probes_pod() -> None:
    """The lowest rung encodes in the probe's pod, which uploads nothing of it before its
    verdict: a refused source leaves the probe alone, nothing to stop or delete."""
    pipeline = Pipeline(verdict=Verdict.QUARANTINED)
    pipeline.add_video()
    asset = await pipeline.run()
    assert asset.phase is AssetPhase.QUARANTINED
    assert asset.status.variants == []
    assert [name for _, name in pipeline.kube.transcode_jobs_] == [
        names.child_name(pipeline.name, "probe")]
    assert pipeline.kube.count("Job") == 1
    assert pipeline.kube.deletions == []
    assert pipeline.objects.under(keys.asset_prefix(TENANT, ASSET_ID)) == [
        asset.spec.source.key]


class RungAlwaysMade(Pipeline):
    """A probe's pod that stores the lowest rung whatever the source (as one started under
    another ladder would)."""

    def result_of(self, tj: TranscodeJob) -> str:
        text = super().result_of(tj)
        if tj.spec.task is not TaskType.PROBE or self.verdict is not Verdict.ACCEPTED:
            return text
        outcome = ProbeOutcome.model_validate_json(text)
        rungs = [self.output_of(spec) for spec in tj.spec.also_encodes or []
                 if spec.type is VariantType.VIDEO]
        return outcome.model_copy(update={"also": [*(outcome.also or []), *rungs]}
                                  ).model_dump_json()


async def test_a_source_smaller_than_the_lowest_rung_gets_its_rung_from_its_own_pod() -> None:
    pipeline = Pipeline(probe=PROBE.model_copy(update={"width": 320, "height": 180}))
    pipeline.add_video()
    asset = await pipeline.run()
    assert [v.name for v in asset.status.variants] == ["180p", "audio", "poster", "storyboard"]
    rung = tj_of(pipeline, "180p")
    assert rung.spec.encoded_by is None
    assert (TENANT, rung.job_name) in pipeline.kube.jobs
    assert pipeline.kube.deletions == []

    # A rung the probe's pod stored all the same (another ladder) is removed, unpublished.
    stored = RungAlwaysMade(probe=PROBE.model_copy(update={"width": 320, "height": 180}))
    stored.add_video()
    asset = await stored.run()
    assert [v.name for v in asset.status.variants] == ["180p", "audio", "poster", "storyboard"]
    assert stored.objects.under(keys.variant_prefix(TENANT, ASSET_ID, "240p")) == []
    assert "SpeculationDiscarded" in stored.kube.reasons(stored.name)


async def test_a_refused_source_keeps_nothing_its_early_rung_wrote_late() -> None:
    """The early rung's pod outlives its deleted TranscodeJob long enough to upload: its
    files stay while it may still write, and go once it has ended (its deletion event)."""
    pipeline = Pipeline(verdict=Verdict.QUARANTINED, settings=RUNG_POD)
    pipeline.add_video()
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    probe = pipeline.kube.transcode_job(TENANT, names.child_name(pipeline.name, "probe"))
    rung = pipeline.kube.transcode_job(TENANT, names.child_name(pipeline.name, "240p"))
    await reconcile.ensure_job(pipeline.ctx, probe)
    await reconcile.ensure_job(pipeline.ctx, rung)
    straggler = pipeline.kube.run_pod(TENANT, rung.name, PodPhase.RUNNING)
    pod = pipeline.kube.run_pod(TENANT, probe.name, PodPhase.SUCCEEDED,
                                pipeline.result_of(probe))
    await reconcile.sync_from_pod(pipeline.ctx, pod)
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    assert pipeline.asset().phase is AssetPhase.QUARANTINED
    assert (TENANT, rung.name) not in pipeline.kube.transcode_jobs_

    pipeline.result_of(rung)  # the straggler uploads after the verdict
    prefix = keys.variant_prefix(TENANT, ASSET_ID, "240p")
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    assert pipeline.objects.under(prefix), "nothing deleted while its pod can still write"
    del pipeline.kube.pods[(TENANT, straggler.metadata.name)]  # collected, then gone
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    assert pipeline.objects.under(keys.asset_prefix(TENANT, ASSET_ID)) == [
        pipeline.asset().spec.source.key], "the source alone is kept"
    assert pipeline.asset().phase is AssetPhase.QUARANTINED


async def test_an_upload_awaiting_finalize_costs_no_storage_call() -> None:
    pipeline = Pipeline()
    upload = MediaAsset.new(TENANT, ASSET_ID, kind=MediaKind.VIDEO, mime="video/mp4",
                            sha256="a" * 64, size_bytes=len(SOURCE), origin=SourceOrigin.UPLOAD)
    pipeline.kube.add_asset(upload)
    pipeline.kube.failures.plan["transcode_jobs"] = 1  # would fail the test if called
    assert await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name) is False
    assert pipeline.objects.calls["head"] == 0
    asset = pipeline.asset()
    assert asset.phase is AssetPhase.PENDING
    condition = asset.status.condition(AssetCondition.UPLOADED)
    assert condition is not None
    assert condition.reason == "AwaitingUpload"


async def test_delete_waits_for_workers_then_removes_every_object() -> None:
    pipeline = Pipeline()
    pipeline.add_video()
    await pipeline.run()
    prefix = keys.asset_prefix(TENANT, ASSET_ID)
    assert pipeline.objects.under(prefix)
    asset = pipeline.asset()
    pipeline.kube.jobs[(TENANT, "straggler")] = {
        "metadata": {"name": "straggler", "namespace": TENANT,
                     "labels": {names.LABEL_ASSET: pipeline.name}}}
    pipeline.kube.run_pod(TENANT, "straggler", PodPhase.RUNNING)
    with pytest.raises(reconcile.WorkersStillRunningError):
        await reconcile.delete_asset_objects(pipeline.ctx, asset)
    assert pipeline.objects.under(prefix), "nothing deleted while a worker can still write"
    assert not any(ns == TENANT for ns, _ in pipeline.kube.jobs), "the Jobs are deleted first"
    pipeline.kube.pods.clear()  # the Job controller's garbage collection of their pods
    assert await reconcile.delete_asset_objects(pipeline.ctx, asset) > 5
    assert pipeline.objects.under(prefix) == []


async def test_the_lowest_rung_starts_with_the_probe_and_waits_to_be_published() -> None:
    pipeline = Pipeline(settings=RUNG_POD)
    pipeline.add_video()
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    rung = pipeline.kube.transcode_job(TENANT, names.child_name(pipeline.name, "240p"))
    assert rung.metadata.labels[names.LABEL_SPECULATIVE] == "true"
    await reconcile.ensure_job(pipeline.ctx, rung)
    pod = pipeline.kube.run_pod(TENANT, rung.name, PodPhase.SUCCEEDED, pipeline.result_of(rung))
    await reconcile.sync_from_pod(pipeline.ctx, pod)
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    early = pipeline.asset()
    assert early.status.variants == [], "done before the probe spoke, and not published"
    assert early.status.manifests is None
    asset = await pipeline.run()
    assert asset.status.variant("240p") is not None
    assert pipeline.kube.duplicates() == []
    assert pipeline.kube.deletions == []
    assert pipeline.kube.count("Job") == 5, "the early rung is the rung: no second run"


async def test_a_handler_run_again_on_an_old_body_makes_no_second_job() -> None:
    """kopf retries a TranscodeJob's create handler that failed while the API server was
    away with the body it had. If the early rung was discarded meanwhile and its Job
    collected, or its name now belongs to another TranscodeJob, no Job comes of it (the
    fault suite's API-server restart saw such a rung's Job made twice)."""
    pipeline = Pipeline(probe=PROBE.model_copy(update={"width": 320, "height": 180}),
                        settings=RUNG_POD)
    pipeline.add_video()
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    stale = pipeline.kube.transcode_job(TENANT, names.child_name(pipeline.name, "240p"))
    probe = pipeline.kube.transcode_job(TENANT, names.child_name(pipeline.name, "probe"))
    await pipeline.run()
    assert (TENANT, stale.name) not in pipeline.kube.transcode_jobs_, "discarded"
    await reconcile.ensure_job(pipeline.ctx, stale)
    assert (TENANT, stale.job_name) not in pipeline.kube.jobs
    # The probe finished meanwhile and its Job was collected (its TTL): nothing again.
    del pipeline.kube.jobs[(TENANT, probe.job_name)]
    await reconcile.ensure_job(pipeline.ctx, probe)
    assert (TENANT, probe.job_name) not in pipeline.kube.jobs
    assert pipeline.kube.duplicates() == []

    # The same name made again as another object: the old body makes nothing either.
    pipeline.kube.transcode_jobs_[(TENANT, stale.name)] = pipeline.kube._stamp(
        stale.model_copy(update={"metadata": stale.metadata.model_copy(
            update={"uid": None})}).to_body(), "TranscodeJob")
    await reconcile.ensure_job(pipeline.ctx, stale)
    assert (TENANT, stale.job_name) not in pipeline.kube.jobs


async def test_a_source_smaller_than_the_lowest_rung_drops_the_early_start() -> None:
    pipeline = Pipeline(probe=PROBE.model_copy(update={"width": 320, "height": 180}),
                        settings=RUNG_POD)
    pipeline.add_video()
    asset = await pipeline.run()
    assert [v.name for v in asset.status.variants] == ["180p", "audio", "poster", "storyboard"]
    assert pipeline.kube.deletions == [
        f"TranscodeJob/{TENANT}/{names.child_name(pipeline.name, '240p')}"]
    assert "SpeculationDiscarded" in pipeline.kube.reasons(pipeline.name)


async def test_a_discarded_early_rungs_job_is_not_taken_for_its_successors() -> None:
    """The probe plans a long video's lowest rung in chunks: the early one-piece rung is
    deleted and made again under the same name. Until the garbage collector removes the old
    Job, its outcome must not count for the new TranscodeJob; once it is gone, the new one
    gets its own (Indexed) Job."""
    pipeline = Pipeline(probe=PROBE.model_copy(update={"duration_seconds": 600.0}),
                        settings=RUNG_POD)
    pipeline.kube.instant_gc = False
    pipeline.add_video()
    ctx, kube = pipeline.ctx, pipeline.kube
    await reconcile.reconcile_asset(ctx, TENANT, pipeline.name)
    rung_name = names.child_name(pipeline.name, "240p")
    early = kube.transcode_job(TENANT, rung_name)
    await reconcile.ensure_job(ctx, early)
    probe_tj = kube.transcode_job(TENANT, names.child_name(pipeline.name, "probe"))
    await reconcile.ensure_job(ctx, probe_tj)
    pod = kube.run_pod(TENANT, probe_tj.name, PodPhase.SUCCEEDED, pipeline.result_of(probe_tj))
    await reconcile.sync_from_pod(ctx, pod)
    await reconcile.reconcile_asset(ctx, TENANT, pipeline.name)

    rung = kube.transcode_job(TENANT, rung_name)
    assert rung.metadata.uid != early.metadata.uid
    assert rung.spec.variant is not None
    assert rung.spec.variant.chunks == 10
    # The old Job finishes its one-piece encode meanwhile: not the new rung's outcome.
    old_pod = kube.run_pod(TENANT, rung_name, PodPhase.SUCCEEDED, pipeline.result_of(early))
    await reconcile.sync_from_pod(ctx, old_pod)
    old_job = kube.set_job_status(TENANT, rung_name, {
        "succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
    await reconcile.sync_from_job(ctx, old_job)
    await reconcile.ensure_job(ctx, rung)
    assert kube.transcode_job(TENANT, rung_name).status.phase is None
    assert kube.creations[f"Job/{TENANT}/{rung_name}"] == 1

    (collected,) = kube.collect_garbage()
    await reconcile.job_gone(ctx, collected)
    job = await kube.get_job(TENANT, rung_name)
    assert job is not None
    assert job.made_for(rung.metadata.uid)
    assert job.metadata.labels[names.LABEL_TRANSCODE_JOB_UID] == rung.metadata.uid
    assert kube.creations[f"Job/{TENANT}/{rung_name}"] == 2


async def test_a_transcode_job_event_without_news_for_the_asset_reconciles_nothing() -> None:
    """An event that changes a TranscodeJob's metadata only (an annotation someone added)
    changes no status, so the asset is not read and reconciled again for it."""
    pipeline = Pipeline()
    pipeline.add_video()
    await pipeline.run()
    memo = kopf.Memo()
    memo.ctx = pipeline.ctx
    reads = pipeline.count_asset_reads()
    body = pipeline.kube.transcode_job(TENANT, names.child_name(pipeline.name, "360p")).to_body()
    body["status"] = {**body["status"], "phase": "Running"}

    # kopf's decorator types the function as its own callback protocol.
    handle = cast("Callable[..., Awaitable[None]]", handlers.transcode_job_event)

    async def event(kind: str | None, obj: dict[str, Any]) -> int:
        before = reads()
        await handle(event={"type": kind, "object": obj}, memo=memo)
        return reads() - before

    assert await event("MODIFIED", body) == 1, "a status never seen: the asset hears of it"
    annotated = {**body, "metadata": {**body["metadata"], "annotations": {"kopf": "handled"}}}
    assert await event("MODIFIED", annotated) == 0, "only metadata changed"
    assert await event("MODIFIED", {**body, "status": {**body["status"],
                                                       "message": "attempt 2 running"}}) == 1
    finished = {**body, "status": {**body["status"], "phase": "Succeeded"}}
    assert await event("MODIFIED", finished) == 1
    assert pipeline.ctx.transcode_jobs_tracked == 0, "finished ones are not remembered"
    assert await event(None, body) == 0, "the initial listing after a restart reconciles nothing"
    assert pipeline.ctx.transcode_jobs_tracked == 1, "an unfinished one listed is remembered"
    assert await event(None, finished) == 0, "a watch's listing again, once it has finished"
    assert pipeline.ctx.transcode_jobs_tracked == 0
    assert await event("MODIFIED", body) == 1
    assert await event("DELETED", body) == 0
    assert pipeline.ctx.transcode_jobs_tracked == 0


async def test_the_reconcile_that_creates_a_transcode_job_makes_its_job_at_once() -> None:
    """The probe's Job comes from the reconcile that creates its TranscodeJob, with no read
    of the Job, the asset or the TranscodeJob between them; the TranscodeJob's creation event
    then leaves it alone (a second attempt would only meet a conflict)."""
    pipeline = Pipeline()
    pipeline.add_video()
    reads = pipeline.count_asset_reads()
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    probe = tj_of(pipeline, "probe")
    assert (pipeline.kube.count("Job"), probe.status.phase) == (1, TranscodePhase.PENDING)
    assert reads() == 1, "the reconcile's own read of the asset, no other"
    assert pipeline.ctx.jobs_made_by_creator == set(), "nothing left named once it is done"

    memo = kopf.Memo()
    memo.ctx = pipeline.ctx
    handle = cast("Callable[..., Awaitable[None]]", handlers.transcode_job_event)
    key = f"{TENANT}/{probe.name}"
    created = {**probe.to_body(), "status": {}}
    del pipeline.kube.jobs[(TENANT, probe.job_name)]
    pipeline.ctx.jobs_made_by_creator.add(key)
    await handle(event={"type": "ADDED", "object": created}, memo=memo)
    assert pipeline.kube.jobs == {}, "left to the reconcile that is making it"
    pipeline.ctx.jobs_made_by_creator.discard(key)
    await handle(event={"type": "ADDED", "object": created}, memo=memo)
    assert list(pipeline.kube.jobs) == [(TENANT, probe.job_name)], \
        "made by the event when nobody else makes it"


async def test_a_new_assets_first_reconcile_lists_no_children() -> None:
    """An asset never reconciled has none: its probe's Job comes without a list of them.
    The one case where it has one (a reconcile stopped between creating the probe's
    TranscodeJob and writing the status) is told by that create, and then they are listed."""
    pipeline = Pipeline()
    pipeline.add_video()
    pipeline.kube.failures.plan["transcode_jobs"] = 1  # would fail the reconcile if called
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    assert pipeline.kube.failures.plan["transcode_jobs"] == 1, "no list of the children"
    assert (pipeline.kube.count("TranscodeJob"), pipeline.kube.count("Job")) == (1, 1)
    assert pipeline.asset().status.conditions, "the status says where it stands"

    # An operator that stopped between the probe's Job and the status write; the probe's
    # pod ran meanwhile. The next reconcile meets the probe's create refused, lists, and
    # goes on from the probe's verdict at once.
    pipeline = Pipeline()
    pipeline.add_video()
    pipeline.kube.crash_after = 3  # the probe's TranscodeJob, its status, its Job
    with pytest.raises(SimulatedCrash):
        await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    pipeline.restart()
    probe = tj_of(pipeline, "probe")
    assert (TENANT, probe.job_name) in pipeline.kube.jobs
    assert not pipeline.asset().status.conditions
    pod = pipeline.kube.run_pod(TENANT, probe.job_name, PodPhase.SUCCEEDED,
                                pipeline.result_of(probe))
    await reconcile.sync_from_pod(pipeline.ctx, pod)
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    assert pipeline.kube.count("TranscodeJob") > 1, "the rest made from the probe's verdict"
    assert pipeline.asset().status.is_true(AssetCondition.PROBED)
    assert pipeline.kube.duplicates() == []
    asset = await pipeline.run()
    assert asset.status.is_true(AssetCondition.COMPLETE)
    assert pipeline.kube.duplicates() == []


async def test_a_jobs_first_status_brings_no_write() -> None:
    """The Job controller's first status for a new Job (no pod active yet, none failed) says
    what the write that made the Job said: the TranscodeJob's status is not written again."""
    pipeline = Pipeline()
    pipeline.add_video()
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    probe = tj_of(pipeline, "probe")
    assert probe.status.attempts == 0
    writes = pipeline.kube.writes
    job = pipeline.kube.set_job_status(TENANT, probe.job_name, {"active": 0})
    await reconcile.sync_from_job(pipeline.ctx, job)
    assert pipeline.kube.writes == writes, "nothing new to say"
    job = pipeline.kube.set_job_status(TENANT, probe.job_name, {"active": 1})
    await reconcile.sync_from_job(pipeline.ctx, job)
    assert tj_of(pipeline, "probe").status.phase is TranscodePhase.RUNNING


async def test_a_job_the_creating_reconcile_failed_to_make_comes_with_the_follow_up() -> None:
    """The API server refuses the Job the reconcile makes right after the TranscodeJob: the
    reconcile still writes the asset's status, and the follow-up visit makes the Job."""
    pipeline = Pipeline()
    pipeline.add_video()
    pipeline.kube.failures.plan["create_job"] = 1
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    assert pipeline.kube.count("Job") == 0
    assert pipeline.asset().status.phase is AssetPhase.PROCESSING
    await reconcile.resync_asset(pipeline.ctx, TENANT, pipeline.name)
    assert pipeline.kube.count("Job") == 1
    asset = await pipeline.run()
    assert asset.status.is_true(AssetCondition.COMPLETE)
    assert pipeline.kube.duplicates() == []
