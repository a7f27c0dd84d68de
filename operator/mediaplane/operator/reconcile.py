"""Level-based reconciles. Each reads the current state, decides with pure functions, and
writes only what differs, so any of them may run again at any time (after a restart, a
missed event, or concurrently with another trigger) without duplicating anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TypeVar

from pydantic import TypeAdapter, ValidationError

from mediaplane.core import keys, names
from mediaplane.core.ladder import first_wave, plan_variants, probe_audio, speculative_rung
from mediaplane.core.resources import (
    ManifestKeys,
    MediaAsset,
    MediaAssetStatus,
    TranscodeJob,
    TranscodeJobStatus,
    WorkerResultStatus,
    now_rfc3339,
    set_condition,
)
from mediaplane.core.states import (
    AssetCondition,
    ConditionStatus,
    EventType,
    JobCondition,
    PodPhase,
    TranscodePhase,
)
from mediaplane.core.tasks import (
    MediaKind,
    TaskType,
    VariantSpec,
    VariantType,
    Verdict,
    WorkerResult,
)
from mediaplane.operator import (
    assetstatus,
    builders,
    captions,
    chunks,
    generation,
    manifests,
    metrics,
    notify,
    shareddecode,
)
from mediaplane.operator.context import Context
from mediaplane.operator.workloads import BatchCondition, Job, Pod

log = logging.getLogger(__name__)
RESULT: TypeAdapter[WorkerResult] = TypeAdapter(WorkerResult)
T = TypeVar("T")
# Reads that fail for another reason than "not found" are retried this many times (with
# back-off) before the handler gives up; the asset's resync timer comes back later anyway.
READ_ATTEMPTS = 4
READ_BACKOFF = 0.25


# --- MediaAsset --------------------------------------------------------------------------

async def reconcile_asset(ctx: Context, namespace: str, name: str, *,
                          coalesce: bool = False) -> bool:
    """Brings one asset forward; True when it waits for its source object to appear (worth
    looking again later); an upload waiting for its finalize is False: it costs nothing.

    With `coalesce`, nothing is done when another reconcile of the asset is waiting to
    start: that one reads the state this caller was told about (the caller must not need
    the answer: False is returned)."""
    if coalesce and ctx.reconcile_waiting(namespace, name):
        return False
    lock = await ctx.acquire(namespace, name)
    try:
        return await _reconcile_asset(ctx, namespace, name)
    finally:
        lock.release()


async def _reconcile_asset(ctx: Context, namespace: str, name: str) -> bool:
    asset = await ctx.kube.get_asset(namespace, name)
    if asset is None or asset.deleting:
        return False
    if asset.generating:  # an AI asset whose source object is still being made
        await generation.reconcile(ctx, asset)
        return False
    # An upload waiting for its finalize has no children yet: no need to list them. Nor has
    # an asset never reconciled (`fresh`), unless a reconcile stopped between creating its
    # probe's TranscodeJob, always its first child, and writing its status: the probe's
    # create then says "exists", and the children are listed after all. That list was 10
    # to 20 ms of the way to the first pod: a consistent read waits for the API server's
    # cache to catch up.
    fresh = not asset.awaiting_finalize and not asset.status.conditions
    listed = not asset.awaiting_finalize and not fresh
    tjs = await ctx.kube.transcode_jobs(namespace, name) if listed else {}

    source = None
    if not asset.status.is_true(AssetCondition.UPLOADED):
        if asset.awaiting_finalize:
            source = assetstatus.SourceCheck(
                False, "AwaitingUpload",
                "waiting for the upload to be finalized (POST /api/v1/media/{id}/finalize)")
        else:
            source = await check_source(ctx, asset)
    uploaded = source.ok if source else True
    if fresh and not uploaded:
        tjs = await ctx.kube.transcode_jobs(namespace, name)  # no probe's create to tell

    probe_name = names.child_name(name, builders.PROBE)
    probe_tj = tjs.get(probe_name)
    if uploaded and probe_tj is None:
        probe_tj = builders.transcode_job(asset, None,
                                          also_encodes=beside_probe(ctx, asset) or None)
        with jobs_made_here(ctx, [probe_tj]):
            created = await ctx.kube.create_transcode_job(probe_tj)
            if created is not None:
                ctx.kube.post_event(asset, EventType.NORMAL, "Probing",
                                    "checking checksum, type and streams")
                await make_job_now(ctx, created, asset)
            elif fresh:  # made by a reconcile that stopped before its status write
                tjs = await ctx.kube.transcode_jobs(namespace, name)
                probe_tj = tjs.get(probe_name, probe_tj)

    planned, to_create = await ensure_variants(ctx, asset, probe_tj, tjs)
    if asset.spec.retries:
        tjs = await start_retries(ctx, asset, tjs)
    now = now_rfc3339()
    variant_tjs = {spec.name: tjs[names.child_name(name, spec.name)]
                   for spec in planned if names.child_name(name, spec.name) in tjs}
    if probe_tj is not None:
        # What the probe's pod made is done with its result: its TranscodeJobs (made below,
        # or made and not yet settled by their own handler) take that status from it
        # (`shareddecode.follow`). Counting it now makes this write the one that says
        # "playable", and the next one does not take it back.
        for tj in [*to_create, *variant_tjs.values()]:
            if (tj.spec.variant is not None and tj.spec.encoded_by == probe_tj.name
                    and shareddecode.follows(tj) and not tj.status.terminal):
                variant_tjs[tj.spec.variant.name] = tj.model_copy(update={
                    "status": shareddecode.follower_status(tj, probe_tj, now)})
    observed = assetstatus.Observed(asset=asset, source=source, probe_tj=probe_tj,
                                    planned=planned, variant_tjs=variant_tjs)
    status, events = assetstatus.compute(observed, now)
    if not asset.awaiting_finalize:
        events += await captions.reconcile(ctx, asset, tjs, status, now)
        # Webhook events go into the same status write as the transitions they announce.
        if ctx.settings.webhooks:
            status.notifications = notify.record(asset, status, now)
    await write_manifests(ctx, asset, status)
    if status != asset.status:
        await ctx.kube.patch_asset_status(namespace, name, status)
        metrics.observe_asset(asset, status, tjs)
    # After the status: the rest of the ladder is created by the reconcile that finds
    # the first wave done, whose status write is the one that says "playable".
    await create_transcode_jobs(ctx, asset, to_create)
    for event in events:
        ctx.kube.post_event(asset, event.type, event.reason, event.message)
    if status.pending_notifications:
        ctx.notify(namespace, name)
    return not uploaded and not asset.awaiting_finalize


def beside_probe(ctx: Context, asset: MediaAsset) -> list[VariantSpec]:
    """What a video's probe pod makes besides its verdict: the audio it copies
    (`ladder.probe_audio`), and the lowest rung it encodes while it checks the source
    (`OperatorSettings.probe_encodes_first_rung`)."""
    if asset.spec.kind is not MediaKind.VIDEO:
        return []
    made = []
    audio = probe_audio(ctx.ladder) if ctx.settings.shared_decode else None
    if audio is not None:
        made.append(audio)
    settings = ctx.settings
    if (settings.speculative_first_rung and settings.probe_encodes_first_rung
            and settings.playable_first):
        made.append(speculative_rung(ctx.ladder))
    return made


async def start_retries(ctx: Context, asset: MediaAsset,
                        tjs: Mapping[str, TranscodeJob]) -> dict[str, TranscodeJob]:
    """Runs again each failed variant whose retry was asked for (`spec.retries`): its
    TranscodeJob's status starts over at the new retry, whose Job has a new deterministic
    name (`<tj>-r<n>`), so the retry is one new Job however often this runs. The
    TranscodeJobs, with the ones that restarted as they are now."""
    current = dict(tjs)
    for variant, requested in asset.spec.retries.items():
        tj = current.get(names.child_name(asset.name, variant))
        if tj is None or tj.spec.variant is None:
            continue
        if (tj.status.retry or 0) < requested and tj.phase is TranscodePhase.FAILED:
            generation = tj.metadata.generation
            message = f"retry {requested} of {variant} asked for"
            status = TranscodeJobStatus(
                phase=TranscodePhase.PENDING, retry=requested, attempts=0,
                job_name=f"{tj.name}-r{requested}", message=message,
                observed_generation=generation,
                conditions=set_condition(tj.status.conditions, JobCondition.SUCCEEDED,
                                         ConditionStatus.UNKNOWN, "RetryRequested", message,
                                         generation, now_rfc3339()))
            await ctx.kube.replace_transcode_job_status(tj.namespace, tj.name, status)
            tj = current[tj.name] = tj.model_copy(update={"status": status})
            ctx.kube.post_event(asset, EventType.NORMAL, "VariantRetrying",
                                f"variant {variant}: retry {requested} in job {tj.job_name}")
        if (tj.status.retry or 0) == requested and tj.phase is TranscodePhase.PENDING:
            await ensure_job(ctx, tj)  # idempotent: the Job's name is the retry's
    return current


async def resync_asset(ctx: Context, namespace: str, name: str) -> None:
    """Catches up on whatever a lost watch event would have told: every unfinished
    TranscodeJob of the asset gets its Job (made if missing, its outcome read if it ended),
    then the asset is reconciled."""
    asset = await ctx.kube.get_asset(namespace, name)
    if asset is None or asset.deleting or asset.awaiting_finalize:
        return
    for tj in (await ctx.kube.transcode_jobs(namespace, name)).values():
        if tj.status.terminal:
            continue
        if tj.spec.task is TaskType.CAPTION:
            await captions.advance(ctx, tj)
            continue
        job = await ctx.kube.get_job(namespace, tj.job_name)
        if job is None:
            await ensure_job(ctx, tj)
        else:
            await sync_from_job(ctx, job)
    await reconcile_asset(ctx, namespace, name)


async def check_source(ctx: Context, asset: MediaAsset) -> assetstatus.SourceCheck:
    spec = asset.spec
    key = spec.source.key
    info = await asyncio.to_thread(ctx.storage.head, key)
    if info is None:
        return assetstatus.SourceCheck(False, "AwaitingUpload", f"no object at {key} yet")
    if info.size != spec.size_bytes:
        return assetstatus.SourceCheck(
            False, "SizeMismatch",
            f"the object has {info.size} bytes, {spec.size_bytes} were declared")
    etag = spec.source.etag
    if etag and etag.strip('"') != info.etag:
        return assetstatus.SourceCheck(False, "ETagMismatch",
                                       f"the object's ETag is {info.etag}, not {etag}")
    return assetstatus.SourceCheck(True, "Uploaded", f"{info.size} bytes at {key}")


async def ensure_variants(ctx: Context, asset: MediaAsset, probe_tj: TranscodeJob | None,
                          tjs: Mapping[str, TranscodeJob]
                          ) -> tuple[list[VariantSpec], list[TranscodeJob]]:
    """The variants the asset publishes (those already created, plus what the ladder adds),
    and the TranscodeJobs still to create for them (`create_transcode_jobs`).

    Before the probe accepts the source nothing is published (an empty list), though a
    video's lowest rung may already be running (`speculative_first_rung`); a source the
    probe refuses, or a speculative rung the plan does not want as it is, is stopped.
    """
    verdict = assetstatus.probe_verdict(probe_tj)
    if verdict is None:
        if probe_tj is not None and probe_tj.phase is TranscodePhase.FAILED:
            await refuse_speculative(ctx, asset, tjs)
        else:
            await start_speculative(ctx, asset, probe_tj, tjs)
        return [], []
    if verdict.verdict is not Verdict.ACCEPTED or verdict.probe is None:
        await refuse_speculative(ctx, asset, tjs)
        return [], []
    wanted = plan_variants(asset.spec.kind, ctx.ladder, verdict.probe)
    tjs = await discard_speculative(ctx, asset, tjs, wanted)
    made = shareddecode.made_by_probe(probe_tj, wanted, verdict.probe)
    await discard_unplanned(ctx, asset, probe_tj, made, tjs)
    existing = [tj.spec.variant for tj in tjs.values() if tj.spec.variant is not None]
    have = {spec.name for spec in existing}
    missing = [spec for spec in wanted if spec.name not in have]
    background: set[str] = set()
    if ctx.settings.playable_first:
        wave = first_wave(wanted)
        background = {spec.name for spec in wanted if spec.name not in wave}
        wave_tjs = {n: tjs.get(names.child_name(asset.name, n)) for n in wave}
        # Done: ended, or made by the probe's pod (its TranscodeJob, made or not yet, takes
        # that outcome from the probe's).
        if not all((tj is not None and tj.phase.terminal)
                   or (n in made and (tj is None or shareddecode.follows(tj)))
                   for n, tj in wave_tjs.items()):
            missing = [spec for spec in missing if spec.name in wave]
    to_create = shareddecode.plan_jobs(asset, wanted, missing, tjs,
                                       ctx.settings.shared_decode, background, made=made)
    known = {spec.name: spec for spec in [*existing, *wanted]}
    order = {spec.name: i for i, spec in enumerate(wanted)}
    return sorted(known.values(), key=lambda s: order.get(s.name, len(order))), to_create


async def create_transcode_jobs(ctx: Context, asset: MediaAsset,
                                to_create: Sequence[TranscodeJob]) -> None:
    """Creates the TranscodeJobs `ensure_variants` planned (those that exist already are
    left as they are). Those of what the probe's pod made go last: they start no work (the
    asset's status already counts them), and their handlers would otherwise queue in
    front of those that start the rest of the ladder's Jobs."""
    probe = names.child_name(asset.name, builders.PROBE)
    made = [tj for tj in to_create if tj.spec.encoded_by == probe]
    with jobs_made_here(ctx, to_create):
        created = await asyncio.gather(*(ctx.kube.create_transcode_job(tj)
                                         for tj in to_create if tj.spec.encoded_by != probe))
        created += await asyncio.gather(*(ctx.kube.create_transcode_job(tj) for tj in made))
        made_now = [tj for tj in created if tj is not None]
        if made_now:
            ctx.kube.post_event(asset, EventType.NORMAL, "Transcoding",
                                f"created {len(made_now)} transcode jobs for {asset.name}")
        # After all of them: a shared decode's Job waits for every rung's TranscodeJob, and
        # takes them from here (`made_with`). It goes first: it is the rest of the ladder's
        # longest path, and the Job controller, the scheduler and the node start pods in
        # the order their Jobs come (the poster's pod went first and started 40 ms sooner).
        shared = {tj.name for tj in made_now if shareddecode.shares_its_job(tj)}
        for first in (True, False):
            await asyncio.gather(*(make_job_now(ctx, tj, asset, made_now) for tj in made_now
                                   if (tj.name in shared) is first))


def _makes_its_job_now(tj: TranscodeJob) -> bool:
    """Caption and generation TranscodeJobs, and the rungs another Job encodes, are left to
    their watch events (`ensure_job`)."""
    return tj.spec.task not in (TaskType.CAPTION, TaskType.GENERATE) and \
        not shareddecode.follows(tj)


@contextlib.contextmanager
def jobs_made_here(ctx: Context, tjs: Sequence[TranscodeJob]) -> Iterator[None]:
    """While TranscodeJobs are created and their Jobs made (`make_job_now`), their watch
    events leave the Jobs to this reconcile."""
    keys = {f"{tj.namespace}/{tj.name}" for tj in tjs if _makes_its_job_now(tj)}
    ctx.jobs_made_by_creator.update(keys)
    try:
        yield
    finally:
        ctx.jobs_made_by_creator.difference_update(keys)


async def make_job_now(ctx: Context, tj: TranscodeJob, asset: MediaAsset,
                       made_with: Sequence[TranscodeJob] = ()) -> None:
    """The Job of a TranscodeJob this reconcile has just made, without waiting for its watch
    event: one event and three reads (the Job, the asset, the TranscodeJob) fewer on the
    way to its pod. An attempt that fails is made again by the asset's follow-up visit
    (`ensure_job`, as for a failure in the event's handler). `made_with`: the TranscodeJobs
    made with it (`shareddecode.followers`)."""
    if not _makes_its_job_now(tj):
        return
    try:
        async with ctx.lock(tj.namespace, tj.name):
            await _make_job(ctx, tj, asset, made_with)
    except Exception as error:  # the follow-up visit comes back to it
        log.warning("the Job of %s was not made: %s", tj.name, error)


async def start_speculative(ctx: Context, asset: MediaAsset, probe_tj: TranscodeJob | None,
                            tjs: Mapping[str, TranscodeJob]) -> None:
    """Starts a video's lowest rung beside its probe, once the source is in storage.

    The worker is the same locked-down one, reading the same presigned URL with the same
    demuxer allow-list as the probe's ffprobe; what it writes stays unpublished until the
    probe accepts the bytes, and is stopped if it does not.
    """
    if (probe_tj is None or asset.spec.kind is not MediaKind.VIDEO
            or not ctx.settings.speculative_first_rung):
        return
    rung = speculative_rung(ctx.ladder)
    if names.child_name(asset.name, rung.name) in tjs or any(
            spec.type is VariantType.VIDEO for spec in probe_tj.spec.also_encodes or []):
        return  # the probe's own pod encodes the first rung (that of its ladder)
    if await ctx.kube.create_transcode_job(builders.transcode_job(asset, rung, speculative=True)):
        ctx.kube.post_event(asset, EventType.NORMAL, "Transcoding",
                            f"started {rung.name} while the source is being probed")


async def refuse_speculative(ctx: Context, asset: MediaAsset,
                             tjs: Mapping[str, TranscodeJob]) -> None:
    """A source the probe refused keeps nothing made from it: the speculative rung is
    stopped and, once no pod of it is left, whatever it wrote is removed.

    Its TranscodeJob goes first, but its pod dies a little later (garbage collection, then
    the node): a worker that finished in that gap has uploaded its files. The deletion of
    that pod brings the asset back here (`pod_event`), so the files go whenever it ends.
    """
    kept = await discard_speculative(ctx, asset, tjs, wanted=[])
    if asset.spec.kind is not MediaKind.VIDEO or not ctx.settings.speculative_first_rung:
        return
    rung = speculative_rung(ctx.ladder)
    if names.child_name(asset.name, rung.name) in kept:
        return
    pods = await ctx.kube.job_pods(asset.tenant, names.child_name(asset.name, rung.name))
    if not all(pod.ended for pod in pods):
        return
    await discard_files(ctx, asset, rung.name,
                        f"removed what {rung.name} wrote before the probe refused the source")


async def discard_files(ctx: Context, asset: MediaAsset, variant: str, message: str) -> None:
    """Deletes what is stored under a variant's prefix; an event says so if there was any."""
    prefix = keys.variant_prefix(asset.tenant, asset.asset_id, variant)
    if await asyncio.to_thread(ctx.storage.delete_prefix, prefix):
        ctx.kube.post_event(asset, EventType.NORMAL, "SpeculationDiscarded", message)


async def discard_speculative(ctx: Context, asset: MediaAsset,
                              tjs: Mapping[str, TranscodeJob],
                              wanted: Sequence[VariantSpec]) -> dict[str, TranscodeJob]:
    """Deletes speculative TranscodeJobs the plan does not want exactly as they are (their
    Jobs and pods go with them; their files, never published, go with the asset's prefix);
    the TranscodeJobs that remain."""
    plan = {spec.name: spec for spec in wanted}
    kept = dict(tjs)
    for name, tj in tjs.items():
        variant = tj.spec.variant
        if tj.metadata.labels.get(names.LABEL_SPECULATIVE) != "true" or variant is None:
            continue
        if plan.get(variant.name) == variant:
            continue
        await ctx.kube.delete_transcode_job(tj.namespace, name)
        del kept[name]
        if tj.phase.terminal and tj.spec.output_prefix:
            # It finished before the probe decided, so its worker is gone and its files
            # are all there: derivatives of a source that is refused (or re-planned) are
            # not kept, even unpublished. (A running one is stopped before it uploads.)
            await asyncio.to_thread(ctx.storage.delete_prefix, tj.spec.output_prefix)
        ctx.kube.post_event(asset, EventType.NORMAL, "SpeculationDiscarded",
                            f"stopped {variant.name}, started before the probe: "
                            "the probe's plan does not include it")
    return kept


async def discard_unplanned(ctx: Context, asset: MediaAsset, probe_tj: TranscodeJob | None,
                            made: Mapping[str, str], tjs: Mapping[str, TranscodeJob]) -> None:
    """Removes what the probe's pod stored that the plan does not take as it is (the ladder
    changed while it ran), before the variant's own TranscodeJob, which writes under the
    same prefix, is made. (A variant the new plan has no TranscodeJob for is looked at again
    by each reconcile: one listing, for a case as rare as a ladder changed mid-probe.)"""
    for output in shareddecode.unplanned_by_probe(probe_tj, made):
        if names.child_name(asset.name, output.name) not in tjs:
            await discard_files(ctx, asset, output.name,
                                f"removed {output.name}, made beside the probe: the plan "
                                "does not include it as it was made")


async def write_manifests(ctx: Context, asset: MediaAsset, status: MediaAssetStatus) -> None:
    """Rewrites the master playlist and MPD when the set of done renditions changed."""
    streamed = [v for v in status.variants if v.streamable]
    ready = [v.name for v in streamed]
    previous = asset.status.manifests
    if not ready or (previous is not None and previous.variants == ready):
        return
    prefix = asset.prefix
    texts = await asyncio.gather(*(asyncio.to_thread(ctx.storage.get_text, v.mpd or "")
                                   for v in streamed))
    mpd = manifests.dash_mpd(status.variants,
                             {v.name: t for v, t in zip(streamed, texts, strict=True)}, prefix)
    master = manifests.hls_master(status.variants, prefix)
    hls_key = keys.hls_master_key(asset.tenant, asset.asset_id)
    dash_key = keys.dash_manifest_key(asset.tenant, asset.asset_id)
    await asyncio.gather(
        asyncio.to_thread(ctx.storage.put_text, dash_key, mpd, "application/dash+xml"),
        asyncio.to_thread(ctx.storage.put_text, hls_key, master,
                          "application/vnd.apple.mpegurl"))
    status.manifests = ManifestKeys(hls=hls_key, dash=dash_key, variants=ready)


async def delete_asset_objects(ctx: Context, asset: MediaAsset) -> int:
    """Deletes the asset's objects once none of its workers can still write any.

    A worker holds a presigned POST that cannot be revoked, so its pods must be gone first:
    the Jobs are deleted (the pods with them) and this raises `WorkersStillRunning` until
    then.
    """
    namespace, name = asset.tenant, asset.name
    await ctx.kube.delete_jobs(namespace, name)
    running = await ctx.kube.live_pods(namespace, name)
    if running:
        raise WorkersStillRunningError(running)
    return await asyncio.to_thread(ctx.storage.delete_prefix, asset.prefix)


class WorkersStillRunningError(Exception):
    def __init__(self, pods: list[str]) -> None:
        super().__init__(f"waiting for workers to stop: {', '.join(pods)}")
        self.pods = pods


# --- TranscodeJob ------------------------------------------------------------------------

async def ensure_job(ctx: Context, tj: TranscodeJob) -> None:
    """Creates the TranscodeJob's batch Job unless the work is already decided or running."""
    if tj.status.terminal:
        return
    if tj.spec.task is TaskType.CAPTION:
        await captions.advance(ctx, tj)
        return
    if shareddecode.follows(tj):  # its leader's Job encodes it
        leader = await shareddecode.follow(ctx, tj)
        if leader is not None and shareddecode.leads(leader) and not leader.status.job_name:
            await ensure_job(ctx, leader)  # the last of the group made starts the Job
        return
    # One attempt at a time per TranscodeJob: a leader's Job is asked for by its own
    # creation and by each follower's; the second finds the Job instead of a conflict.
    async with ctx.lock(tj.namespace, tj.name):
        if await ctx.kube.get_job(tj.namespace, tj.job_name) is not None:
            # Ours, or an earlier TranscodeJob's of the same name that the garbage collector
            # is removing: its deletion event brings us back here (`job_gone`).
            return
        asset = await ctx.kube.get_asset(tj.namespace, tj.spec.asset_ref.name)
        if asset is None or asset.deleting or not await _still_wanted(ctx, tj):
            return
        await _make_job(ctx, tj, asset)


async def _make_job(ctx: Context, tj: TranscodeJob, asset: MediaAsset,
                    made_with: Sequence[TranscodeJob] = ()) -> None:
    """Creates the Job of `tj`, as it is now, for `asset` (a Job of that name that exists
    already is left as it is: the creation's conflict says so)."""
    namespace, name = tj.namespace, tj.job_name
    if tj.spec.task is TaskType.GENERATE:
        job = await generation.job(ctx, tj, asset)
        if job is None:
            return
    else:
        seconds = builders.variant_presign_seconds(tj, ctx.settings)
        input_url = ctx.storage.presign_get(tj.spec.input.key, seconds)
        output = None
        if tj.spec.output_prefix:
            output = ctx.storage.presign_post_prefix(tj.spec.output_prefix, seconds,
                                                     ctx.settings.max_variant_bytes)
        co_owners: list[TranscodeJob] = []
        if shareddecode.shares_its_job(tj):
            # Every rung's TranscodeJob owns the Job that encodes it: wait for all of them.
            followers = await shareddecode.followers(ctx, tj, made_with)
            if followers is None:
                return
            co_owners = followers
        also = shareddecode.shared_outputs(ctx, tj, asset, seconds)
        job = builders.variant_job(
            tj, builders.worker_task(tj, asset, input_url, output, also,
                                     stream_segments=ctx.settings.stream_segments),
            ctx.settings, co_owners)
    if ctx.settings.worker_service_account:
        # A pod can only use a ServiceAccount of its own namespace: the tenant's gets one.
        # Not cached: a tenant namespace can be deleted and made again under the same name.
        await ctx.kube.ensure_service_account(namespace, ctx.settings.worker_service_account)
    if await ctx.kube.create_job(job):
        observed = tj.metadata.generation
        conditions = set_condition(tj.status.conditions, JobCondition.SUCCEEDED,
                                   ConditionStatus.UNKNOWN, "JobCreated",
                                   f"job {name} created", observed, now_rfc3339())
        # `attempts` as the Job's first status will say (none failed): the write that
        # status brings (`job_outcome`) then finds nothing to change.
        await _write_status(ctx, tj, TranscodeJobStatus(
            phase=TranscodePhase.PENDING, job_name=name, retry=tj.status.retry, attempts=0,
            conditions=conditions, observed_generation=observed))


async def _write_status(ctx: Context, tj: TranscodeJob, status: TranscodeJobStatus) -> None:
    """Merge-patches `tj`'s status; the rungs its Job encodes beside its own follow it."""
    await ctx.kube.patch_transcode_job_status(tj.namespace, tj.name, status)
    if shareddecode.shares_its_job(tj):
        # What the API server now holds: a merge patch sets what `status` says.
        merged = TranscodeJobStatus.model_validate(
            {**tj.status.to_body(), **status.to_body()})
        await shareddecode.settle(ctx, tj.model_copy(update={"status": merged}))


async def _still_wanted(ctx: Context, tj: TranscodeJob) -> bool:
    """The TranscodeJob `tj` as read now still exists, is the same object, is not being
    deleted and has not ended. A handler may run on an old body: kopf retries a create
    handler that failed while the API server was away with the body it had, by which time
    the TranscodeJob may have been discarded (a speculative rung the plan did not want)
    or finished, and its Job collected; making that Job again would run the work twice."""
    current = await ctx.kube.get_transcode_job(tj.namespace, tj.name)
    return (current is not None and current.metadata.deletion_timestamp is None
            and current.metadata.uid == tj.metadata.uid and not current.status.terminal)


async def _with_retries(read: Callable[[], Awaitable[T]]) -> T:
    """`read()`, retried with back-off: a 404 is an answer (None), a 5xx or a dropped
    connection is not, and must not be taken for one."""
    for attempt in range(READ_ATTEMPTS - 1):
        try:
            return await read()
        except Exception as error:  # anything but "not found" (that is a value): retry
            log.warning("read failed (attempt %d): %s", attempt + 1, error)
            await asyncio.sleep(READ_BACKOFF * 2**attempt)
    return await read()


async def _owning_transcode_job(ctx: Context, namespace: str, name: str,
                                about: Job | Pod) -> TranscodeJob | None:
    try:
        return await _with_retries(lambda: ctx.kube.get_transcode_job(namespace, name))
    except Exception as error:
        ctx.kube.post_event(about, EventType.WARNING, "TranscodeJobUnreadable",
                            f"cannot read TranscodeJob {name} to record this outcome: {error}")
        raise


async def sync_from_job(ctx: Context, job: Job) -> None:
    """Copies a Job's progress and, once it ends, the worker's result to its TranscodeJob."""
    tj_name = job.transcode_job
    namespace = job.metadata.namespace
    if not tj_name or namespace is None:
        return
    tj = await _owning_transcode_job(ctx, namespace, tj_name, job)
    if tj is None or tj.status.terminal or not job.made_for(tj.metadata.uid):
        return
    if tj.spec.task is TaskType.CAPTION:
        await captions.advance(ctx, tj)
        return
    if job.metadata.name != tj.job_name:
        return  # a Job of an earlier run of a retried variant: its outcome is history
    new = await job_outcome(ctx, tj, job)
    if new != tj.status:
        await _write_status(ctx, tj, new)
        if new.phase is TranscodePhase.FAILED:
            ctx.kube.post_event(tj, EventType.WARNING, "JobFailed", new.message or "")


async def job_gone(ctx: Context, job: Job) -> None:
    """A Job was deleted: if it was an earlier TranscodeJob's of the same name (a discarded
    speculative rung), the TranscodeJob of that name now gets its own."""
    tj_name, namespace = job.transcode_job, job.metadata.namespace
    if not tj_name or namespace is None:
        return
    tj = await ctx.kube.get_transcode_job(namespace, tj_name)
    if tj is not None and not tj.status.terminal and not job.made_for(tj.metadata.uid):
        await ensure_job(ctx, tj)


async def sync_from_pod(ctx: Context, pod: Pod) -> None:
    """Takes a worker's result from its Succeeded pod, without waiting for the Job.

    With completions 1 a Succeeded pod is final, but the Job controller batches pod updates
    for about a second before it marks the Job Complete: reading the pod saves that second
    at every step of the asset's chain. Failures still come from the Job, which retries.
    """
    tj_name, namespace, terminated = pod.transcode_job, pod.metadata.namespace, pod.terminated
    if not tj_name or namespace is None or terminated is None or not pod.succeeded:
        return
    tj = await _owning_transcode_job(ctx, namespace, tj_name, pod)
    if tj is None or tj.status.terminal or not pod.made_for(tj.metadata.uid):
        return
    if tj.spec.task is TaskType.CAPTION:  # a plan or chunk pod: one step, not the outcome
        await captions.advance(ctx, tj)
        return
    if pod.metadata.labels.get(names.BATCH_JOB_NAME_LABEL, tj.job_name) != tj.job_name:
        return  # a pod of an earlier run of a retried variant
    if chunks.is_chunked(tj):  # one chunk of a rendition: the last one completes it
        await _chunk_done(ctx, tj, terminated.started_at)
        return
    old = tj.status
    base = TranscodeJobStatus(job_name=tj.job_name, attempts=old.attempts or 0,
                              retry=old.retry,
                              start_time=old.start_time or terminated.started_at,
                              completion_time=terminated.finished_at or now_rfc3339())
    await _write_status(ctx, tj, _succeeded(tj, terminated.message or "", base))


async def _chunk_done(ctx: Context, tj: TranscodeJob, started: str | None) -> None:
    """Records a segment-parallel rung's progress; joins it once every chunk is in."""
    async with ctx.lock(tj.namespace, tj.name):
        current = await ctx.kube.get_transcode_job(tj.namespace, tj.name)
        if current is None or current.status.terminal:
            return
        variant = current.spec.variant
        pods = [p for p in await ctx.kube.job_pods(tj.namespace, current.job_name)
                if p.made_for(current.metadata.uid)]
        done = chunks.chunks_done(current, pods)
        old = current.status
        if variant is None or len(done) < (variant.chunks or 1):
            new = old.model_copy(update={
                "phase": TranscodePhase.RUNNING, "job_name": current.job_name,
                "start_time": old.start_time or started,
                "message": chunks.progress_message(current, len(done))})
            if new != old:
                await ctx.kube.patch_transcode_job_status(tj.namespace, tj.name, new)
            return
        base = TranscodeJobStatus(job_name=current.job_name, attempts=old.attempts or 0,
                                  retry=old.retry, start_time=old.start_time or started,
                                  completion_time=now_rfc3339())
        new = await _joined(ctx, current, base)
        await ctx.kube.patch_transcode_job_status(tj.namespace, tj.name, new)
        if new.phase is TranscodePhase.FAILED:
            ctx.kube.post_event(current, EventType.WARNING, "JoinFailed", new.message or "")


async def _joined(ctx: Context, tj: TranscodeJob, base: TranscodeJobStatus
                  ) -> TranscodeJobStatus:
    """The TranscodeJob's final status once all its chunks succeeded: joined, or failed."""
    try:
        outcome = await chunks.join(ctx, tj)
    except chunks.JoinError as error:
        generation = tj.metadata.generation
        return base.model_copy(update={
            "phase": TranscodePhase.FAILED, "message": f"cannot join the chunks: {error}",
            "observed_generation": generation,
            "conditions": set_condition(tj.status.conditions, JobCondition.SUCCEEDED,
                                        ConditionStatus.FALSE, "JoinFailed", str(error),
                                        generation, now_rfc3339())})
    return _succeeded(tj, outcome.model_dump_json(exclude_none=True), base)


def _succeeded(tj: TranscodeJob, message: str, base: TranscodeJobStatus) -> TranscodeJobStatus:
    """The TranscodeJob status for a finished worker, from its result message."""
    generation = tj.metadata.generation
    new = base.model_copy(update={"observed_generation": generation})
    try:
        result = RESULT.validate_json(message)
    except ValidationError as error:
        new.phase = TranscodePhase.FAILED
        new.message = f"unreadable worker result: {error.errors()[:1]}"
        new.conditions = set_condition(tj.status.conditions, JobCondition.SUCCEEDED,
                                       ConditionStatus.FALSE, "InvalidResult", new.message,
                                       generation, now_rfc3339())
        return new
    new.phase, new.message = TranscodePhase.SUCCEEDED, "done"
    new.result = WorkerResultStatus.model_validate(
        result.model_dump(mode="json", exclude_none=True, exclude={"kind"}))
    new.conditions = set_condition(tj.status.conditions, JobCondition.SUCCEEDED,
                                   ConditionStatus.TRUE, "Completed", "the worker finished",
                                   generation, now_rfc3339())
    return new


async def job_outcome(ctx: Context, tj: TranscodeJob, job: Job) -> TranscodeJobStatus:
    old = tj.status
    generation = tj.metadata.generation
    new = TranscodeJobStatus(job_name=job.metadata.name, attempts=job.status.failed or 0,
                             retry=old.retry, observed_generation=generation,
                             start_time=job.status.start_time)
    now = now_rfc3339()

    def condition(value: ConditionStatus, reason: str, message: str) -> None:
        new.conditions = set_condition(old.conditions, JobCondition.SUCCEEDED, value, reason,
                                       message, generation, now)

    complete, failed = job.condition(BatchCondition.COMPLETE), job.condition(BatchCondition.FAILED)
    namespace = job.metadata.namespace or tj.namespace
    if complete is not None and chunks.is_chunked(tj):
        new.completion_time = job.status.completion_time or now
        return await _joined(ctx, tj, new)
    if complete is not None:
        pods = await ctx.kube.job_pods(namespace, job.metadata.name)
        succeeded = [p.terminated.message or "" for p in pods
                     if p.status.phase is PodPhase.SUCCEEDED and p.terminated is not None]
        new.completion_time = job.status.completion_time or now
        return _succeeded(tj, succeeded[-1] if succeeded else "", new)
    if failed is not None:
        pods = await ctx.kube.job_pods(namespace, job.metadata.name)
        messages = [p.terminated.message for p in pods
                    if p.terminated is not None and p.terminated.message]
        last = messages[-1] if messages else ""
        reason = failed.reason or "JobFailed"
        new.phase, new.completion_time = TranscodePhase.FAILED, now
        new.message = f"{reason}: {failed.message or reason}; last error: {last[-800:]}".strip()
        condition(ConditionStatus.FALSE, reason, new.message)
    elif (job.status.active or 0) > 0:
        new.phase = TranscodePhase.RUNNING
        running = (chunks.progress_message(tj, job.status.succeeded or 0)
                   if chunks.is_chunked(tj) else f"attempt {(new.attempts or 0) + 1} running")
        condition(ConditionStatus.UNKNOWN, "Running", running)
    else:
        new.phase = old.phase or TranscodePhase.PENDING
        new.conditions = old.conditions
    return new
