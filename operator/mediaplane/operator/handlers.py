"""kopf handlers: thin triggers for the reconciles in reconcile.py.

Three watches drive everything: MediaAssets (spec changes, deletion), TranscodeJobs (their
status feeds the owner asset) and the batch Jobs we created (their outcome feeds the
TranscodeJob). Worker pods are watched too, for their result as soon as they succeed.
A timer re-reconciles unfinished assets (and their TranscodeJobs) in case a watch event was missed.
Raw bodies become typed resources here, at the edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import aiohttp
import kopf

from mediaplane.core import names
from mediaplane.core.resources import MediaAsset, TranscodeJob
from mediaplane.core.states import AssetCondition, AssetPhase, EventType
from mediaplane.operator import bucket, reconcile
from mediaplane.operator.context import Context
from mediaplane.operator.sweeper import sweep_forever
from mediaplane.operator.workloads import Job, Pod

ASSETS = (names.GROUP, names.VERSION, names.ASSET_PLURAL)
TRANSCODE_JOBS = (names.GROUP, names.VERSION, names.JOB_PLURAL)
MANAGED = {names.LABEL_MANAGED_BY: names.MANAGED_BY}
RESYNC_SECONDS = 30
_last_event = time.monotonic()


def _ctx(memo: kopf.Memo) -> Context:
    ctx: Context = memo.ctx
    return ctx


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
    # Events of one object are coalesced for this long before handling; every hop of the
    # asset → probe → variants chain pays it once.
    settings.batching.batch_window = 0.05
    memo.ctx = await Context.create()
    await bucket.apply_cors(memo.ctx)
    # Not a kopf timer: it is about objects no resource names. Replicas on standby sweep too;
    # each removal is idempotent, so two sweepers cost a listing, not a conflict.
    memo.sweeper = asyncio.create_task(sweep_forever(memo.ctx), name="sweep-uploads")


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    sweeper = getattr(memo, "sweeper", None)
    if sweeper is not None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
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
    if await reconcile.reconcile_asset(_ctx(memo), namespace, name):
        # Backs off to a minute: an abandoned upload must not cost a HEAD every few seconds.
        # Finalizing an upload (spec.source.etag) or the timer brings it back sooner.
        raise kopf.TemporaryError("the source object is not in storage yet",
                                  delay=min(60.0, 2.0 ** min(retry + 1, 6)))


def _asset_unfinished(body: kopf.Body, **_: Any) -> bool:
    """Unfinished (or generating captions), and not an upload still waiting for its
    finalize (that wakes it)."""
    asset = MediaAsset.model_validate(body)
    if asset.status.is_true(AssetCondition.CAPTIONS_GENERATING):
        return True
    if asset.phase is AssetPhase.READY and not asset.status.is_true(AssetCondition.COMPLETE):
        # Playable early, the rest of the ladder still running: a TranscodeJob event lost
        # while the API server restarted would otherwise leave it short of Complete.
        return True
    return asset.phase in (AssetPhase.GENERATING, AssetPhase.PENDING,
                           AssetPhase.PROCESSING) and \
        not asset.awaiting_finalize


@kopf.timer(*ASSETS, interval=RESYNC_SECONDS, idle=RESYNC_SECONDS, when=_asset_unfinished)
async def asset_resync(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    """The level-based fallback for a missed event: each unfinished TranscodeJob's Job is
    read again (and made if missing), then the asset is reconciled. A timer on the
    TranscodeJobs themselves would make kopf put a finalizer on each of them."""
    assert namespace is not None
    await reconcile.resync_asset(_ctx(memo), namespace, name)


@kopf.on.delete(*ASSETS)
async def asset_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _seen()
    ctx = _ctx(memo)
    asset = MediaAsset.model_validate(body)
    try:
        count = await reconcile.delete_asset_objects(ctx, asset)
    except reconcile.WorkersStillRunningError as waiting:
        raise kopf.TemporaryError(str(waiting), delay=2) from None
    ctx.kube.post_event(asset, EventType.NORMAL, "ObjectsDeleted",
                        f"deleted {count} objects under the asset's prefix")


@kopf.on.resume(*TRANSCODE_JOBS)
@kopf.on.create(*TRANSCODE_JOBS)
async def transcode_job_created(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _seen()
    await reconcile.ensure_job(_ctx(memo), TranscodeJob.model_validate(body))


@kopf.on.event(*TRANSCODE_JOBS)
async def transcode_job_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A TranscodeJob's status moved: let its asset take the news into account."""
    if event["type"] in (None, "ADDED", "DELETED"):
        return
    tj = TranscodeJob.model_validate(event["object"])
    if tj.status.phase is None:
        return
    _seen()
    await reconcile.reconcile_asset(_ctx(memo), tj.namespace, tj.spec.asset_ref.name)


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
    await reconcile.sync_from_pod(_ctx(memo), pod)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def job_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    if event["type"] == "DELETED":
        return
    _seen()
    await reconcile.sync_from_job(_ctx(memo), Job.model_validate(event["object"]))
