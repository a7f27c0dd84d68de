"""Several video rungs (and the storyboard) from one decode: one Job, a TranscodeJob each.

The variants `ladder.shared_decode` picks keep a TranscodeJob each (their status, events,
retries and the asset's per-variant view are unchanged), but only the first of them, the
leader, gets a Job: its spec lists the others (`alsoEncodes`), its worker encodes them all
with one ffmpeg, and its result carries their outputs. Each follower names its leader
(`encodedBy`) and takes its status from the leader's: pending and running with it, then
succeeded with its own output from the leader's result, or failed with it. A follower's
retry (and the leader's) runs alone, in a Job of its own, like any other retry.

Every rung's TranscodeJob owns the Job that encodes it (the leader as its controller, the
followers as co-owners), so the Job is made once all of them exist: by whichever of their
reconciles comes last. The followers are settled whenever the leader's status is written,
and again from the follower's own reconcile (created, resumed, resynced), so a restart
between two writes loses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence, Set

from mediaplane.core import keys, names
from mediaplane.core.ladder import audio_beside_probe, probe_rung_limit, shared_decode
from mediaplane.core.resources import (
    MediaAsset,
    TranscodeJob,
    TranscodeJobStatus,
    WorkerResultStatus,
    now_rfc3339,
    set_condition,
)
from mediaplane.core.states import ConditionStatus, JobCondition, TranscodePhase
from mediaplane.core.tasks import (
    ProbeResult,
    SharedOutput,
    TaskType,
    VariantOutput,
    VariantSpec,
    VariantType,
)
from mediaplane.operator import builders
from mediaplane.operator.context import Context


def plan_jobs(asset: MediaAsset, wanted: Sequence[VariantSpec],
              missing: Sequence[VariantSpec], existing: Mapping[str, TranscodeJob],
              enabled: bool, background: Set[str] = frozenset(),
              made: Mapping[str, str] | None = None) -> list[TranscodeJob]:
    """The TranscodeJobs to create for `missing`, the rungs that share a decode marked,
    those named in `background` as such (`builders.transcode_job`), and those `made`
    already by another TranscodeJob's Job (`made_by_probe`) following it.

    A group is formed only when none of it exists yet, or from its leader's own list once
    the leader exists (a follower made after a restart joins the Job that already encodes
    it); rungs made before (without the grouping) keep their own Jobs."""
    group = shared_decode(list(wanted)) if enabled else []
    followers: list[VariantSpec] = []
    if group:
        leader = existing.get(names.child_name(asset.name, group[0].name))
        if leader is not None:
            followers = list(leader.spec.also_encodes or [])
        elif not any(names.child_name(asset.name, spec.name) in existing for spec in group):
            followers = group[1:]
    leader_name = names.child_name(asset.name, group[0].name) if followers else None
    follower_names = {spec.name for spec in followers}
    made = made or {}
    return [builders.transcode_job(
        asset, spec,
        also_encodes=followers if leader_name and spec.name == group[0].name else None,
        encoded_by=made.get(spec.name) or (
            leader_name if spec.name in follower_names else None),
        background=spec.name in background) for spec in missing]


def made_by_probe(probe_tj: TranscodeJob | None, wanted: Sequence[VariantSpec],
                  probe: ProbeResult) -> dict[str, str]:
    """The planned variants the probe's pod has made ({variant: the probe's TranscodeJob}):
    what it was asked for (`ladder.probe_audio`, the lowest rung: `ladder.rung_beside_probe`),
    exactly as the plan wants it, and found in its result. Such a variant's TranscodeJob
    follows the probe's and has no Job (nor owns the probe's, which has ended); its retry
    runs in a Job of its own."""
    if probe_tj is None or probe_tj.status.result is None:
        return {}
    outputs = {o.name for o in probe_tj.status.result.also or []}
    plan = {spec.name: spec for spec in wanted}
    return {spec.name: probe_tj.name for spec in probe_tj.spec.also_encodes or []
            if spec.name in outputs and plan.get(spec.name) == spec
            and (spec.type is not VariantType.AUDIO or audio_beside_probe(spec, probe))}


def unplanned_by_probe(probe_tj: TranscodeJob | None, made: Mapping[str, str]
                       ) -> list[VariantOutput]:
    """What the probe's pod stored that the plan does not take as it is (a ladder changed
    while it ran): files under a variant's prefix that nothing publishes."""
    if probe_tj is None or probe_tj.status.result is None:
        return []
    return [o for o in probe_tj.status.result.also or [] if o.name not in made]


def leads(tj: TranscodeJob) -> bool:
    """`tj` runs a shared Job now (its first run: a retry encodes its own rung only)."""
    return bool(tj.spec.also_encodes) and not tj.status.retry


def shares_its_job(tj: TranscodeJob) -> bool:
    """`tj` leads followers made with it: its Job waits for all of them (each co-owns it)
    and each of its status writes settles them. A probe's followers (`made_by_probe`) are
    made only once it has ended, and settle themselves from its result when made."""
    return leads(tj) and tj.spec.task is not TaskType.PROBE


def follows(tj: TranscodeJob) -> bool:
    """`tj` is encoded by another TranscodeJob's Job now (not in a retry of its own)."""
    return tj.spec.encoded_by is not None and not tj.status.retry


def follower_status(follower: TranscodeJob, leader: TranscodeJob,
                    now: str) -> TranscodeJobStatus:
    """The follower's status, from its leader's."""
    old, shared = follower.status, leader.status
    variant = follower.spec.variant.name if follower.spec.variant else follower.name
    generation = follower.metadata.generation
    job = shared.job_name or leader.job_name
    shared_message = f"encoded with {leader.name} in job {job}"
    new = TranscodeJobStatus(
        phase=shared.phase or TranscodePhase.PENDING, job_name=job,
        attempts=shared.attempts, start_time=shared.start_time,
        completion_time=shared.completion_time, observed_generation=generation,
        message=shared_message, conditions=old.conditions)

    def condition(value: ConditionStatus, reason: str, message: str) -> None:
        new.conditions = set_condition(old.conditions, JobCondition.SUCCEEDED, value,
                                       reason, message, generation, now)

    if variant not in {spec.name for spec in leader.spec.also_encodes or []}:
        # The leader was deleted and made again without this rung (by hand: the operator
        # never does): nothing will encode it but a retry of its own.
        new.phase, new.completion_time = TranscodePhase.FAILED, new.completion_time or now
        new.message = f"{leader.name} no longer encodes {variant}"
        condition(ConditionStatus.FALSE, "SharedEncodeGone", new.message)
    elif shared.retry:
        # The leader runs again alone: the shared run failed, and this rung with it.
        new.phase, new.completion_time = TranscodePhase.FAILED, new.completion_time or now
        new.message = f"the shared encode in job {leader.name} failed"
        condition(ConditionStatus.FALSE, "SharedEncodeFailed", new.message)
    elif shared.phase is TranscodePhase.SUCCEEDED:
        output = next((o for o in (shared.result.also or []) if o.name == variant), None
                      ) if shared.result else None
        if output is None:
            new.phase = TranscodePhase.FAILED
            new.message = f"job {job} finished without {variant}"
            condition(ConditionStatus.FALSE, "NotInSharedEncode", new.message)
        else:
            new.message = "done"
            new.result = WorkerResultStatus(output=output)
            condition(ConditionStatus.TRUE, "Completed", f"encoded in job {job}")
    elif shared.phase is TranscodePhase.FAILED:
        new.message = f"the shared encode failed: {shared.message or ''}".strip()
        condition(ConditionStatus.FALSE, "SharedEncodeFailed", new.message)
    elif shared.phase is TranscodePhase.RUNNING:
        condition(ConditionStatus.UNKNOWN, "Running", shared_message)
    elif shared.job_name:
        condition(ConditionStatus.UNKNOWN, "JobCreated", shared_message)
    return new


async def follow(ctx: Context, tj: TranscodeJob) -> TranscodeJob | None:
    """Brings one follower up to its leader; the leader (None while it is not made)."""
    if tj.spec.encoded_by is None:
        return None
    leader = await ctx.kube.get_transcode_job(tj.namespace, tj.spec.encoded_by)
    if leader is not None:
        await _settle(ctx, tj, leader)
    return leader


async def followers(ctx: Context, leader: TranscodeJob,
                    made_with: Sequence[TranscodeJob] = ()) -> list[TranscodeJob] | None:
    """The TranscodeJobs of the rungs `leader`'s Job encodes beside its own, in its order;
    None while one of them is not made yet (its creation comes back here). When the
    reconcile that made the leader made all of them too (`made_with`, as the API server
    stored them), they are not listed again: that list was on the way from the first
    wave's end to the rest of the ladder's pod."""
    return _followers_among(leader, made_with) or _followers_among(
        leader, (await ctx.kube.transcode_jobs(leader.namespace,
                                                leader.spec.asset_ref.name)).values())


def _followers_among(leader: TranscodeJob, tjs: Iterable[TranscodeJob]
                     ) -> list[TranscodeJob] | None:
    mine = {tj.spec.variant.name: tj for tj in tjs
            if tj.spec.encoded_by == leader.name and tj.spec.variant is not None}
    wanted = [spec.name for spec in leader.spec.also_encodes or []]
    if not all(name in mine for name in wanted):
        return None
    return [mine[name] for name in wanted]


async def settle(ctx: Context, leader: TranscodeJob) -> None:
    """Brings every follower of `leader` (as just written) up to it."""
    if not leads(leader):
        return
    asset = leader.spec.asset_ref.name
    tjs = await ctx.kube.transcode_jobs(leader.namespace, asset)
    await asyncio.gather(*(_settle(ctx, tj, leader) for tj in tjs.values()
                           if tj.spec.encoded_by == leader.name))


async def _settle(ctx: Context, follower: TranscodeJob, leader: TranscodeJob) -> None:
    if not follows(follower) or follower.status.terminal:
        return
    new = follower_status(follower, leader, now_rfc3339())
    if new != follower.status:  # a condition's time moves only with its status
        await ctx.kube.patch_transcode_job_status(follower.namespace, follower.name, new)


def shared_outputs(ctx: Context, tj: TranscodeJob, asset: MediaAsset,
                   seconds: int) -> list[SharedOutput] | None:
    """What the leader's worker needs for the rungs it encodes beside its own: each one's
    spec and a POST policy for that rung's own prefix."""
    if not leads(tj):
        return None
    probe = tj.spec.task is TaskType.PROBE
    return [SharedOutput(
        variant=spec,
        output=ctx.storage.presign_post_prefix(
            keys.variant_prefix(asset.tenant, asset.asset_id, spec.name), seconds,
            ctx.settings.max_variant_bytes),
        max_source_seconds=probe_rung_limit(ctx.ladder)
        if probe and spec.type is VariantType.VIDEO else None)
        for spec in tj.spec.also_encodes or []]
