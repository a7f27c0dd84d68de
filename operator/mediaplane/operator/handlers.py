"""kopf handlers: thin triggers for the reconciles in reconcile.py.

Three watches drive everything: MediaAssets (spec changes, deletion), TranscodeJobs (their
status feeds the owner asset) and the batch Jobs we created (their outcome feeds the
TranscodeJob). Worker pods are watched too, for their result as soon as they succeed.
One loop re-reconciles unfinished assets (and their TranscodeJobs) in case a watch event
was missed (`followups`).
Raw bodies become typed resources here, at the edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import aiohttp
import kopf

from mediaplane.core import logs, names
from mediaplane.core.resources import MediaAsset, TranscodeJob
from mediaplane.core.states import AssetCondition, AssetPhase, EventType, TranscodePhase
from mediaplane.operator import bucket, metrics, reconcile
from mediaplane.operator.context import Context
from mediaplane.operator.followups import Followups, follow_up_forever
from mediaplane.operator.sweeper import sweep_forever
from mediaplane.operator.webhooks import Dispatcher, has_pending
from mediaplane.operator.workloads import Job, Pod

ASSETS = (names.GROUP, names.VERSION, names.ASSET_PLURAL)
TRANSCODE_JOBS = (names.GROUP, names.VERSION, names.JOB_PLURAL)
MANAGED = {names.LABEL_MANAGED_BY: names.MANAGED_BY}
RESYNC_SECONDS = 30
LIST_CHUNK = 100
WORKER_IDLE_SECONDS = 0.2
_last_event = time.monotonic()


def _ctx(memo: kopf.Memo) -> Context:
    ctx: Context = memo.ctx
    return ctx


def _about(namespace: str | None,
           asset_name: str | None) -> contextlib.AbstractContextManager[None]:
    """Every line logged while handling binds the asset it is about."""
    asset_id = names.asset_id_from_name(asset_name) if asset_name else None
    return logs.bound(tenant=namespace, asset_id=asset_id)


def _seen() -> None:
    global _last_event
    _last_event = time.monotonic()


# kopf's own session opens a new TLS connection for every request in flight, without
# limit: at start-up over thousands of assets that meant thousands of connections whose
# buffers stayed with the process (hundreds of megabytes, outside Python's heap). The same
# credentials kopf would find, in a session that keeps a bounded pool.
API_CONNECTIONS = 16


@kopf.on.login()
async def login(settings: kopf.OperatorSettings, logger: kopf.Logger,
                **kwargs: Any) -> kopf.AiohttpSession | None:
    info = (kopf.login_with_service_account(settings=settings, logger=logger, **kwargs)
            or kopf.login_with_kubeconfig(settings=settings, logger=logger, **kwargs)
            or kopf.login_via_client(settings=settings, logger=logger, **kwargs))
    if info is None:
        return None
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=API_CONNECTIONS, ssl=info.as_ssl_context()),
        headers=info.as_http_headers())
    return kopf.AiohttpSession(aiohttp_session=session, server=info.server,
                               default_namespace=info.default_namespace,
                               expiration=info.expiration)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = names.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.GROUP, key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.execution.max_workers = 4
    # Memory over thousands of assets: kopf hands every listed object to a worker of its
    # own with no back-pressure, and each worker keeps its last body while it idles. List
    # pages and a short idle keep a few hundred bodies alive at once instead of all of
    # them, and the heap never shrank back from that peak. A restart over 3,000 finished
    # assets: the whole list at once left 200 MB of RSS, pages of 100 103 MB, pages of 20
    # 99 MB; the resync took 6 s in each case (docs/performance.md, "Many assets").
    settings.watching.chunk_size = LIST_CHUNK
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    memo.ctx = await Context.create()
    memo.followups = Followups(idle=RESYNC_SECONDS)
    metrics.serve(memo.ctx.settings.metrics_port, memo.ctx.settings.metrics_address)
    dispatcher = Dispatcher(memo.ctx)
    memo.dispatcher = dispatcher
    if memo.ctx.settings.webhooks:
        dispatcher.start()
        memo.ctx.notify = dispatcher.enqueue
    await bucket.apply_cors(memo.ctx)
    # Not a kopf timer: it is about objects no resource names. Replicas on standby sweep too;
    # each removal is idempotent, so two sweepers cost a listing, not a conflict.
    memo.sweeper = asyncio.create_task(sweep_forever(memo.ctx), name="sweep-uploads")
    ctx = memo.ctx
    memo.follower = asyncio.create_task(follow_up_forever(
        memo.followups, lambda namespace, name: asset_resync(ctx, namespace, name),
        lambda namespace, name: ctx.notify(namespace, name)), name="follow-up-assets")


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    for task in (getattr(memo, "sweeper", None), getattr(memo, "follower", None)):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    dispatcher = getattr(memo, "dispatcher", None)
    if dispatcher is not None:
        await dispatcher.close()
    if getattr(memo, "ctx", None) is not None:
        await _ctx(memo).close()


@kopf.on.probe(id="secondsSinceLastEvent")
def liveness(**_: Any) -> float:
    """kopf's own probe only proves the loop runs; a dead watch shows here as a growing age."""
    return round(time.monotonic() - _last_event, 1)


def _asset_needs_work(body: kopf.Body, **_: Any) -> bool:
    """Settled assets are left alone: not even a handler call when the operator restarts."""
    return not MediaAsset.model_validate(body).settled


@kopf.on.resume(*ASSETS, when=_asset_needs_work)
@kopf.on.create(*ASSETS, when=_asset_needs_work)
@kopf.on.update(*ASSETS, field="spec")
async def asset_changed(namespace: str | None, name: str, retry: int, memo: kopf.Memo,
                        **_: Any) -> None:
    assert namespace is not None  # MediaAsset is namespaced
    _seen()
    with _about(namespace, name), metrics.reconciling("asset"):
        waiting = await reconcile.reconcile_asset(_ctx(memo), namespace, name)
    if waiting:
        # Backs off to a minute: an abandoned upload must not cost a HEAD every few seconds.
        # Finalizing an upload (spec.source.etag) or the timer brings it back sooner.
        raise kopf.TemporaryError("the source object is not in storage yet",
                                  delay=min(60.0, 2.0 ** min(retry + 1, 6)))


def _asset_unfinished(asset: MediaAsset) -> bool:
    """Unfinished (or generating captions), and not an upload still waiting for its
    finalize (that wakes it)."""
    if asset.status.is_true(AssetCondition.CAPTIONS_GENERATING):
        return True
    if asset.phase is AssetPhase.READY and not asset.status.is_true(AssetCondition.COMPLETE):
        # Playable early, the rest of the ladder still running: a TranscodeJob event lost
        # while the API server restarted would otherwise leave it short of Complete.
        return True
    return asset.phase in (AssetPhase.GENERATING, AssetPhase.PENDING,
                           AssetPhase.PROCESSING) and \
        not asset.awaiting_finalize


async def asset_resync(ctx: Context, namespace: str, name: str) -> None:
    """The level-based fallback for a missed event: each unfinished TranscodeJob's Job is
    read again (and made if missing), then the asset is reconciled. Called by the
    follow-up loop (`followups`), not a kopf timer: see there why."""
    with _about(namespace, name), metrics.reconciling("resync"):
        await reconcile.resync_asset(ctx, namespace, name)


def _notifications_pending(body: kopf.Body, **_: Any) -> bool:
    return has_pending(MediaAsset.model_validate(body))


@kopf.on.resume(*ASSETS, when=_notifications_pending)
async def asset_notifications(namespace: str | None, name: str, memo: kopf.Memo,
                              **_: Any) -> None:
    """Webhook events still to deliver after a restart; the follow-up loop queues them
    again if a delivery round ends without marking them. Queuing twice is harmless: the
    queue holds an asset once, and a delivered event is marked done."""
    assert namespace is not None
    _ctx(memo).notify(namespace, name)


@kopf.on.event(*ASSETS)
async def asset_seen(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Assets by phase for the metrics, and the unsettled ones for the follow-up loop,
    from the watch kopf keeps anyway (the initial listing included)."""
    body = event["object"]
    namespace, name = body["metadata"].get("namespace") or "", body["metadata"]["name"]
    key = f"{namespace}/{name}"
    followups: Followups = memo.followups
    if event["type"] == "DELETED":
        metrics.ASSET_PHASES.seen(key, None)
        followups.gone((namespace, name))
        return
    phase = (body.get("status") or {}).get("phase") or AssetPhase.PENDING.value
    metrics.ASSET_PHASES.seen(key, phase)
    asset = MediaAsset.model_validate(body)
    followups.seen((namespace, name), unfinished=_asset_unfinished(asset),
                   pending=has_pending(asset))


@kopf.on.delete(*ASSETS)
async def asset_deleted(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    _seen()
    ctx = _ctx(memo)
    asset = MediaAsset.model_validate(body)
    logs.bind(tenant=asset.tenant, asset_id=asset.asset_id)
    try:
        count = await reconcile.delete_asset_objects(ctx, asset)
    except reconcile.WorkersStillRunningError as waiting:
        raise kopf.TemporaryError(str(waiting), delay=2) from None
    if count or not retry:  # a retry for the webhook below finds nothing left to delete
        ctx.kube.post_event(asset, EventType.NORMAL, "ObjectsDeleted",
                            f"deleted {count} objects under the asset's prefix")
    # asset.deleted goes out before the finalizer lets the asset go: retried by kopf (its
    # count survives a restart, in the asset's annotations) with the webhooks' back-off.
    dispatcher: Dispatcher = memo.dispatcher
    if ctx.settings.webhooks and not await dispatcher.announce_deleted(asset, retry):
        raise kopf.TemporaryError("a webhook endpoint did not take asset.deleted yet",
                                  delay=dispatcher.delay(retry))


@kopf.on.event(*TRANSCODE_JOBS)
async def transcode_job_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A TranscodeJob made, or listed at start-up: its Job. Its status moved: let its asset
    take the news into account.

    Not kopf's creation and resume handlers: kopf records each object it handled that way
    in an annotation (a copy of its spec), one more write per TranscodeJob, and one more
    watch event, while the first pods start. `ensure_job` is idempotent (the Job's name is
    the TranscodeJob's), and a failed attempt is made again by the asset's follow-up visit
    (`followups`, every 30 s while the asset is unfinished), as kopf's retry would have.
    The reconcile that creates a TranscodeJob makes its Job itself, at once
    (`reconcile.make_job_now`): then the event leaves it alone."""
    tj = TranscodeJob.model_validate(event["object"])
    ctx = _ctx(memo)
    key = f"{tj.namespace}/{tj.name}"
    if event["type"] in ("ADDED", None) and not tj.status.terminal and \
            key not in ctx.jobs_made_by_creator:  # the creating reconcile makes that Job
        _seen()
        await reconcile.ensure_job(ctx, tj)
    if event["type"] == "ADDED":
        return
    if event["type"] == "DELETED":
        metrics.JOB_PHASES.seen(key, None)
        ctx.transcode_job_gone(key)
        return
    if tj.status.phase is None:
        return
    if event["type"] is None and tj.status.terminal:
        # A (re)listing of a finished one, as most are after a restart: nothing to keep,
        # and no status to serialise.
        ctx.transcode_job_gone(key)
    else:
        status = json.dumps(event["object"].get("status"), sort_keys=True)
        if not ctx.transcode_job_news(key, status, finished=tj.status.terminal):
            return  # metadata only (a label, an annotation): the asset has seen this status
    # Failures counted as they happen (not those of the initial listing after a restart).
    if event["type"] is not None and tj.status.phase is TranscodePhase.FAILED and \
            metrics.JOB_PHASES.phases.get(key) != TranscodePhase.FAILED.value:
        metrics.JOBS_FAILED.inc()
    metrics.JOB_PHASES.seen(key, tj.status.phase.value)
    if event["type"] is None:  # the initial listing: nothing moved
        return
    _seen()
    with _about(tj.namespace, tj.spec.asset_ref.name), metrics.reconciling("transcode_job"):
        await reconcile.reconcile_asset(ctx, tj.namespace, tj.spec.asset_ref.name,
                                        coalesce=True)


@kopf.on.event("", "v1", "pods", labels=MANAGED)
async def pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A worker finished: its result is final before the Job controller says so. A
    speculative pod gone: what it wrote may have to go too (`reconcile.refuse_speculative`)."""
    pod = Pod.model_validate(event["object"])
    if event["type"] == "DELETED":
        asset = pod.metadata.labels.get(names.LABEL_ASSET)
        if pod.metadata.labels.get(names.LABEL_SPECULATIVE) == "true" and asset and \
                pod.metadata.namespace:
            _seen()
            await reconcile.reconcile_asset(_ctx(memo), pod.metadata.namespace, asset)
        return
    if not pod.succeeded:
        return
    _seen()
    with _about(pod.metadata.namespace, pod.metadata.labels.get(names.LABEL_ASSET)):
        await reconcile.sync_from_pod(_ctx(memo), pod)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def job_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _seen()
    job = Job.model_validate(event["object"])
    with _about(job.metadata.namespace, job.metadata.labels.get(names.LABEL_ASSET)):
        if event["type"] == "DELETED":
            await reconcile.job_gone(_ctx(memo), job)
            return
        await reconcile.sync_from_job(_ctx(memo), job)
