"""Video rungs from one decode (`shareddecode`), over the in-memory Kube: one Job for the
rungs after the first wave, a TranscodeJob each that follows it, nothing lost or made twice
when the operator dies after any write, and each failed rung retried in a Job of its own."""

from __future__ import annotations

import asyncio
import json

from mediaplane.core import names
from mediaplane.core.ladder import Ladder
from mediaplane.core.podenv import LAUNCH_ENV, TASK_ENV
from mediaplane.core.resources import (
    MediaAsset,
    MediaAssetStatus,
    TranscodeJob,
    TranscodeJobStatus,
)
from mediaplane.core.states import (
    AssetCondition,
    AssetPhase,
    PodPhase,
    TranscodePhase,
    VariantState,
)
from mediaplane.core.tasks import (
    MediaKind,
    ProbeOutcome,
    ProbeResult,
    TaskType,
    VariantSpec,
    VariantType,
    WorkerTask,
)
from mediaplane.operator import reconcile, shareddecode
from mediaplane.operator.context import Context
from mediaplane.operator.settings import OperatorSettings
from tests.middle.test_reconcile import ASSET_ID, RUNG_POD, SOURCE, TENANT, Pipeline
from tests.middle.test_variant_retry import FlakyPipeline

PROBE_720 = ProbeResult(detected_mime="video/mp4", format_name="mov,mp4", width=1280,
                        height=720, duration_seconds=4.0, video_codec="h264",
                        audio_codec="aac", has_video=True, has_audio=True)
SHARED = ["360p", "480p", "720p", "storyboard"]


def hd(pipeline: Pipeline) -> Pipeline:
    pipeline.probe = PROBE_720
    pipeline.add_video()
    return pipeline


def tj(pipeline: Pipeline, variant: str) -> TranscodeJob:
    return pipeline.kube.transcode_job(TENANT, names.child_name(pipeline.name, variant))


async def test_the_rungs_after_the_first_wave_are_encoded_by_one_job() -> None:
    pipeline = hd(Pipeline())
    asset = await pipeline.run()
    assert asset.phase is AssetPhase.READY
    assert asset.status.is_true(AssetCondition.COMPLETE)
    assert asset.status.variant_summary == "7/7"
    assert asset.status.manifests is not None
    assert asset.status.manifests.variants == ["240p", "360p", "480p", "720p", "audio"]
    assert pipeline.kube.count("TranscodeJob") == 8, "the probe and one per variant"
    assert pipeline.kube.count("Job") == 4, "probe (with the 240p), audio, poster, shared"
    leader = tj(pipeline, "360p")
    assert [v.name for v in leader.spec.also_encodes or []] == SHARED[1:]
    owners = pipeline.kube.jobs[(TENANT, leader.name)]["metadata"]["ownerReferences"]
    assert [(o["name"], o["controller"]) for o in owners] == [
        (tj(pipeline, v).name, v == "360p") for v in SHARED], "each rung owns its Job"
    for variant in SHARED[1:]:
        follower = tj(pipeline, variant)
        assert follower.spec.encoded_by == leader.name
        assert (TENANT, follower.name) not in pipeline.kube.jobs, "no Job of its own"
        assert follower.phase is TranscodePhase.SUCCEEDED
        assert follower.status.job_name == leader.name
        assert follower.status.result is not None
        assert follower.status.result.output is not None
        assert follower.status.result.output.name == variant
    assert pipeline.kube.duplicates() == []


async def test_the_operator_killed_after_every_write_loses_and_duplicates_nothing() -> None:
    clean = hd(Pipeline())
    await clean.run()
    total = clean.kube.writes
    for crash_after in range(1, total + 1):
        pipeline = hd(Pipeline())
        pipeline.kube.crash_after = crash_after
        asset = await pipeline.run()
        where = f"killed after write {crash_after} of {total}"
        assert pipeline.restarts == 1, where
        assert asset.status.is_true(AssetCondition.COMPLETE), where
        assert asset.status.variant_summary == "7/7", where
        assert pipeline.kube.duplicates() == [], where
        assert pipeline.kube.count("Job") == 4, where
        assert all(tj(pipeline, v).phase is TranscodePhase.SUCCEEDED for v in SHARED), where


async def test_a_failed_shared_job_fails_its_rungs_and_each_is_retried_alone() -> None:
    pipeline = FlakyPipeline(set())
    pipeline.failing.add(names.child_name(pipeline.name, "360p"))
    hd(pipeline)
    asset = await pipeline.run()
    for variant in SHARED:
        state = asset.status.variant(variant)
        assert state is not None
        assert state.state is VariantState.FAILED, variant
        assert "BackoffLimitExceeded" in (state.message or ""), variant
    assert asset.phase is AssetPhase.READY, "playable on the first wave"
    assert asset.status.manifests is not None
    assert asset.status.manifests.variants == ["240p", "audio"]

    pipeline.ask_retry("720p", 1)
    asset = await pipeline.run()
    retried = asset.status.variant("720p")
    assert retried is not None
    assert (retried.state, retried.retries) == (VariantState.SUCCEEDED, 1)
    follower = tj(pipeline, "720p")
    assert follower.status.job_name == f"{follower.name}-r1"
    assert (TENANT, f"{follower.name}-r1") in pipeline.kube.jobs
    assert tj(pipeline, "480p").phase is TranscodePhase.FAILED, "not retried: still failed"

    pipeline.ask_retry("360p", 1)  # the leader's retry encodes its own rung only
    asset = await pipeline.run()
    assert asset.status.manifests is not None
    assert asset.status.manifests.variants == ["240p", "360p", "720p", "audio"]
    assert tj(pipeline, "480p").phase is TranscodePhase.FAILED
    assert tj(pipeline, "storyboard").phase is TranscodePhase.FAILED
    assert pipeline.kube.count("Job") == 6, "four first runs, two retries"
    assert pipeline.kube.duplicates() == []


def _asset() -> MediaAsset:
    asset = MediaAsset.new(TENANT, ASSET_ID, kind=MediaKind.VIDEO, mime="video/mp4",
                           sha256="a" * 64, size_bytes=len(SOURCE))
    return asset.model_copy(update={"metadata": asset.metadata.model_copy(
        update={"uid": "uid-1"})})


def _rungs() -> list[VariantSpec]:
    return [VariantSpec(name=f"{h}p", type=VariantType.VIDEO, height=h, video_bitrate_kbps=h * 3)
            for h in (240, 360, 480, 720)]


def test_rungs_made_before_the_grouping_keep_their_own_jobs() -> None:
    """An asset half-way through its ladder when the operator was upgraded: the rungs that
    exist run alone, so no rung is encoded by two Jobs."""
    asset = _asset()
    wanted = _rungs()
    old = shareddecode.plan_jobs(asset, wanted, wanted[2:3], {}, enabled=False)[0]
    made = shareddecode.plan_jobs(asset, wanted, [wanted[1], wanted[3]], {old.name: old},
                                  enabled=True)
    assert [(t.spec.also_encodes, t.spec.encoded_by) for t in made] == [(None, None)] * 2


def test_a_follower_made_after_its_leader_joins_the_leaders_job() -> None:
    asset = _asset()
    wanted = _rungs()
    group = shareddecode.plan_jobs(asset, wanted, wanted[1:], {}, enabled=True)
    leader = group[0]
    assert [v.name for v in leader.spec.also_encodes or []] == ["480p", "720p"]
    again = shareddecode.plan_jobs(asset, wanted, [wanted[3]], {leader.name: leader},
                                   enabled=True)
    assert again[0].spec.encoded_by == leader.name
    assert shareddecode.plan_jobs(asset, wanted[:2], wanted[1:2], {}, enabled=True)[0].spec \
        .also_encodes is None, "one rung after the first wave: nothing to share"


class SoloPipeline(Pipeline):
    """The operator with `MEDIAPLANE_SHARED_DECODE=false`."""

    def restart(self) -> Context:
        self.ctx = Context(kube=self.kube, storage=self.objects,
                           settings=OperatorSettings(shared_decode=False), ladder=Ladder())
        return self.ctx


async def test_turned_off_every_rung_has_its_own_job() -> None:
    pipeline = hd(SoloPipeline())
    asset = await pipeline.run()
    assert asset.status.variant_summary == "7/7"
    assert pipeline.kube.count("Job") == 7, "the probe's pod still encodes the 240p"
    assert all(tj(pipeline, v).spec.encoded_by is None for v in SHARED)


def test_a_follower_whose_leader_no_longer_lists_it_fails_and_can_be_retried() -> None:
    """A leader deleted by hand comes back without its group (the rungs that exist run
    alone): its former followers fail instead of waiting for a Job that never comes."""
    asset = _asset()
    wanted = _rungs()
    leader, follower, _ = shareddecode.plan_jobs(asset, wanted, wanted[1:], {}, enabled=True)
    alone = shareddecode.plan_jobs(asset, wanted, wanted[1:2], {follower.name: follower},
                                   enabled=True)[0]
    assert alone.spec.also_encodes is None
    status = shareddecode.follower_status(follower, alone, "2026-12-03T00:00:00Z")
    assert status.phase is TranscodePhase.FAILED
    assert status.conditions[-1].reason == "SharedEncodeGone"
    assert shareddecode.follower_status(follower, leader, "2026-12-03T00:00:00Z").phase \
        is TranscodePhase.PENDING


async def test_a_follower_reads_its_leader_only_in_its_own_tenant() -> None:
    """`encodedBy` is a name, looked up in the follower's namespace: a TranscodeJob of
    another tenant naming this tenant's leader learns nothing from it and gets no Job."""
    pipeline = hd(Pipeline())
    await pipeline.run()
    leader = tj(pipeline, "360p")
    stranger = tj(pipeline, "480p").model_copy(deep=True)
    stranger.metadata.namespace, stranger.metadata.uid = "globex", None
    stranger.status = TranscodeJobStatus()
    await pipeline.kube.create_transcode_job(stranger)
    copied = pipeline.kube.transcode_job("globex", stranger.name)
    assert copied.spec.encoded_by == leader.name
    await reconcile.ensure_job(pipeline.ctx, copied)
    after = pipeline.kube.transcode_job("globex", stranger.name)
    assert after.status.result is None, "the other tenant's output is not handed over"
    assert after.phase is TranscodePhase.PENDING
    assert not [key for key in pipeline.kube.jobs if key[0] == "globex"]


PROBE_COPYABLE = PROBE_720.model_copy(update={
    "audio_profile": "LC", "audio_channels": 2, "audio_sample_rate": 48000,
    "audio_bitrate": 128_000})


class AudioCopyFails(Pipeline):
    """A probe whose pod could not copy the audio: its result names no audio."""

    def result_of(self, tj: TranscodeJob) -> str:
        text = super().result_of(tj)
        if tj.spec.task is TaskType.PROBE:
            return ProbeOutcome.model_validate_json(text).model_copy(
                update={"also": None}).model_dump_json()
        return text


def made_by_the_probe(pipeline: Pipeline, variant: str) -> None:
    """`variant` was made by the probe's pod: its TranscodeJob follows the probe's, with its
    output from the probe's result, and has no Job of its own."""
    made = tj(pipeline, variant)
    assert made.spec.encoded_by == tj(pipeline, "probe").name
    assert made.phase is TranscodePhase.SUCCEEDED
    assert made.status.result is not None
    assert made.status.result.output is not None
    assert made.status.result.output.name == variant
    assert (TENANT, made.name) not in pipeline.kube.jobs, "no Job of its own"


async def test_the_probes_pod_copies_the_audio_and_its_transcode_job_follows() -> None:
    pipeline = Pipeline(probe=PROBE_COPYABLE)
    pipeline.add_video()
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    probe = tj(pipeline, "probe")
    assert [(v.name, v.audio_copy) for v in probe.spec.also_encodes or []] == [
        ("audio", True), ("240p", False)]
    asset = await pipeline.run()
    assert asset.status.is_true(AssetCondition.COMPLETE)
    assert asset.status.variant_summary == "7/7"
    assert asset.status.manifests is not None
    assert "audio" in asset.status.manifests.variants
    made_by_the_probe(pipeline, "audio")
    assert pipeline.kube.count("Job") == 3, "probe (with the audio and 240p), poster, shared"
    assert pipeline.kube.duplicates() == []


async def test_playable_needs_only_the_lowest_rung_once_the_probe_copied_the_audio() -> None:
    pipeline = Pipeline(probe=PROBE_COPYABLE, settings=RUNG_POD)
    pipeline.add_video()

    async def finish(task: str) -> None:
        job = tj(pipeline, task)
        await reconcile.ensure_job(pipeline.ctx, job)
        pod = pipeline.kube.run_pod(TENANT, job.name, PodPhase.SUCCEEDED,
                                    pipeline.result_of(job))
        await reconcile.sync_from_pod(pipeline.ctx, pod)
        await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)

    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    await finish("probe")
    await reconcile.ensure_job(pipeline.ctx, tj(pipeline, "audio"))  # its creation event
    assert tj(pipeline, "audio").phase is TranscodePhase.SUCCEEDED
    await reconcile.reconcile_asset(pipeline.ctx, TENANT, pipeline.name)
    assert not pipeline.asset().playable, "the lowest rung is still encoding"
    await finish("240p")
    assert pipeline.asset().playable


async def test_an_audio_the_probe_could_not_copy_gets_a_pod_of_its_own() -> None:
    pipeline = AudioCopyFails(probe=PROBE_COPYABLE)
    pipeline.add_video()
    asset = await pipeline.run()
    assert asset.status.is_true(AssetCondition.COMPLETE)
    audio = tj(pipeline, "audio")
    assert audio.spec.encoded_by is None
    assert (TENANT, audio.name) in pipeline.kube.jobs
    assert pipeline.kube.count("Job") == 5, "its copy and the 240p failed: a pod each"


async def test_sound_that_must_be_encoded_gets_a_pod_of_its_own() -> None:
    pipeline = Pipeline(probe=PROBE_720)  # AAC of unknown bitrate: not copied
    pipeline.add_video()
    asset = await pipeline.run()
    assert asset.status.is_true(AssetCondition.COMPLETE)
    audio = tj(pipeline, "audio")
    assert audio.spec.encoded_by is None
    assert audio.spec.variant is not None
    assert audio.spec.variant.audio_copy is False
    assert (TENANT, audio.name) in pipeline.kube.jobs


async def test_the_probe_copies_nothing_with_shared_decode_off() -> None:
    pipeline = Pipeline(probe=PROBE_COPYABLE,
                        settings=OperatorSettings(shared_decode=False))
    pipeline.add_video()
    await pipeline.run()
    assert [v.name for v in tj(pipeline, "probe").spec.also_encodes or []] == ["240p"]
    assert (TENANT, tj(pipeline, "audio").name) in pipeline.kube.jobs


async def test_killed_after_every_write_with_the_audio_beside_the_probe() -> None:
    clean = Pipeline(probe=PROBE_COPYABLE)
    clean.add_video()
    await clean.run()
    total = clean.kube.writes
    for crash_after in range(1, total + 1):
        pipeline = Pipeline(probe=PROBE_COPYABLE)
        pipeline.add_video()
        pipeline.kube.crash_after = crash_after
        asset = await pipeline.run()
        where = f"killed after write {crash_after} of {total}"
        assert pipeline.restarts == 1, where
        assert asset.status.is_true(AssetCondition.COMPLETE), where
        assert pipeline.kube.duplicates() == [], where
        assert pipeline.kube.count("Job") == 3, where
        assert tj(pipeline, "audio").spec.encoded_by == tj(pipeline, "probe").name, where


async def test_the_probes_pod_is_the_whole_first_wave_and_its_result_makes_it_playable() -> None:
    """With the audio copied and the lowest rung encoded in the probe's pod, the first wave
    is that one pod: the asset's status write that follows its result says playable, before
    any other TranscodeJob is made, and later writes never take it back."""
    pipeline = Pipeline(probe=PROBE_COPYABLE)
    pipeline.add_video()
    writes: list[tuple[bool, list[str]]] = []
    write_status = pipeline.kube.patch_asset_status

    async def recording(namespace: str, name: str, status: MediaAssetStatus) -> None:
        writes.append((bool(status.playable), sorted(
            n.rsplit("-", 1)[-1] for _, n in pipeline.kube.transcode_jobs_)))
        await write_status(namespace, name, status)

    pipeline.kube.patch_asset_status = recording  # type: ignore[method-assign]
    asset = await pipeline.run()
    assert asset.status.is_true(AssetCondition.COMPLETE)
    first = next(i for i, (playable, _) in enumerate(writes) if playable)
    assert writes[first][1] == ["probe"], "playable with the probe's own result"
    assert all(playable for playable, _ in writes[first:]), "never taken back"
    probe = tj(pipeline, "probe")
    made_by_the_probe(pipeline, "240p")
    env = {e["name"]: e["value"] for e in pipeline.kube.jobs[(TENANT, probe.job_name)]
           ["spec"]["template"]["spec"]["containers"][0]["env"]}
    launch = json.loads(env[LAUNCH_ENV])
    assert launch["dirs"] == ["out", "out-audio"], \
        "the probe's pod starts with the rung's encode, which copies the audio too"
    task = WorkerTask.model_validate_json(env[TASK_ENV])
    assert [(a.variant.name, a.max_source_seconds) for a in task.also or []] == [
        ("audio", None), ("240p", 300.0)], "kept only below the ladder's chunking"
    assert asset.status.manifests is not None
    assert asset.status.manifests.variants == ["240p", "360p", "480p", "720p", "audio"]
    assert pipeline.kube.duplicates() == []


async def test_the_shared_job_goes_first_and_takes_the_rungs_made_with_it_unlisted() -> None:
    """The reconcile that makes the rest of the ladder's TranscodeJobs makes the shared
    decode's Job before the poster's (the Job controller, the scheduler and the node take
    the pods in that order), from the follower TranscodeJobs it has just made: they are not
    listed again on the way to that Job."""
    pipeline = hd(Pipeline())
    list_children = pipeline.kube.transcode_jobs

    async def consistent_list(namespace: str, asset: str) -> dict[str, TranscodeJob]:
        await asyncio.sleep(0.01)  # a list waits for the API server's cache to catch up
        return await list_children(namespace, asset)

    pipeline.kube.transcode_jobs = consistent_list  # type: ignore[method-assign]
    asset = await pipeline.run()
    assert asset.status.is_true(AssetCondition.COMPLETE)
    pipeline.kube.transcode_jobs = list_children  # type: ignore[method-assign]
    made = [name.rsplit("-", 1)[-1] for _, name in pipeline.kube.jobs]
    assert made.index("360p") < made.index("poster"), made

    leader = tj(pipeline, "360p")
    followers = [tj(pipeline, v) for v in SHARED[1:]]
    pipeline.kube.failures.plan["transcode_jobs"] = 1  # a list would raise
    found = await shareddecode.followers(pipeline.ctx, leader, [leader, *followers])
    assert found == followers
    assert pipeline.kube.failures.plan["transcode_jobs"] == 1, "nothing listed"
    # One of them not made with it (an operator restarted between the creations): listed.
    pipeline.kube.failures.plan["transcode_jobs"] = 0
    assert await shareddecode.followers(pipeline.ctx, leader, followers[:1]) == followers
