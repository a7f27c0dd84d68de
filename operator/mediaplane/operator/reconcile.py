"""Level-based reconciles. Each reads the current state, decides with pure functions, and
writes only what differs, so any of them may run again at any time (after a restart, a
missed event, or concurrently with another trigger) without duplicating anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf
from pydantic import TypeAdapter, ValidationError

from mediaplane.core import keys, names
from mediaplane.core.ladder import first_wave, plan_variants
from mediaplane.core.tasks import MediaKind, ProbeResult, VariantSpec, WorkerResult
from mediaplane.operator import assetstatus, builders, manifests
from mediaplane.operator.conditions import get_condition, is_true, now_rfc3339, set_condition
from mediaplane.operator.context import Context

log = logging.getLogger(__name__)
RESULT = TypeAdapter[Any](WorkerResult)


def post_event(obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """A Kubernetes Event on `obj` (kopf posts it in the background)."""
    kopf.event(cast("kopf.Body", obj), type=type_, reason=reason, message=message[:1024])


# --- MediaAsset --------------------------------------------------------------------------

def awaiting_finalize(asset: Mapping[str, Any]) -> bool:
    """An API upload not finalized yet: nothing to look for in storage until the client's
    finalize sets spec.source.etag, and that spec change brings the asset back."""
    source = asset.get("spec", {}).get("source") or {}
    return source.get("origin") == "upload" and not source.get("etag")


async def reconcile_asset(ctx: Context, namespace: str, name: str) -> bool:
    """Brings one asset forward; True when it waits for its source object to appear (worth
    looking again later); an upload waiting for its finalize is False: it costs nothing."""
    async with ctx.lock(namespace, name):
        asset = await ctx.kube.get_asset(namespace, name)
        if asset is None or asset["metadata"].get("deletionTimestamp"):
            return False
        # An upload waiting for its finalize has no children yet: no need to list them.
        tjs = {} if awaiting_finalize(asset) else await ctx.kube.transcode_jobs(namespace, name)
        old_status = asset.get("status") or {}

        source = None
        if not is_true(old_status.get("conditions"), assetstatus.UPLOADED):
            if awaiting_finalize(asset):
                source = assetstatus.SourceCheck(
                    False, "AwaitingUpload",
                    "waiting for the upload to be finalized (POST /api/v1/media/{id}/finalize)")
            else:
                source = await check_source(ctx, asset)
        uploaded = source.ok if source else True

        probe_name = names.child_name(name, builders.PROBE)
        probe_tj = tjs.get(probe_name)
        if uploaded and probe_tj is None:
            probe_tj = builders.transcode_job(asset, None)
            if await ctx.kube.create_transcode_job(probe_tj):
                post_event(asset, "Normal", "Probing", "checking checksum, type and streams")

        planned = await ensure_variants(ctx, asset, probe_tj, tjs)
        observed = assetstatus.Observed(
            asset=asset, source=source, probe_tj=probe_tj, planned=planned,
            variant_tjs={spec.name: tjs[names.child_name(name, spec.name)]
                         for spec in planned if names.child_name(name, spec.name) in tjs})
        status, events = assetstatus.compute(observed, now_rfc3339())
        await write_manifests(ctx, asset, status)
        if _differs(old_status, status):
            await ctx.kube.patch_status(names.ASSET_PLURAL, namespace, name, status)
        for event in events:
            post_event(asset, event.type, event.reason, event.message)
        return not uploaded and not awaiting_finalize(asset)


async def check_source(ctx: Context, asset: Mapping[str, Any]) -> assetstatus.SourceCheck:
    spec = asset["spec"]
    key = spec["source"]["key"]
    info = await asyncio.to_thread(ctx.storage.head, key)
    if info is None:
        return assetstatus.SourceCheck(False, "AwaitingUpload", f"no object at {key} yet")
    if info.size != spec["sizeBytes"]:
        return assetstatus.SourceCheck(
            False, "SizeMismatch",
            f"the object has {info.size} bytes, {spec['sizeBytes']} were declared")
    etag = spec["source"].get("etag")
    if etag and etag.strip('"') != info.etag:
        return assetstatus.SourceCheck(False, "ETagMismatch",
                                       f"the object's ETag is {info.etag}, not {etag}")
    return assetstatus.SourceCheck(True, "Uploaded", f"{info.size} bytes at {key}")


async def ensure_variants(ctx: Context, asset: Mapping[str, Any],
                          probe_tj: Mapping[str, Any] | None,
                          tjs: Mapping[str, Mapping[str, Any]]) -> list[VariantSpec]:
    """The variants of the asset: those already created, plus what the ladder adds."""
    name = asset["metadata"]["name"]
    existing = [VariantSpec.model_validate(tj["spec"]["variant"])
                for tj in tjs.values() if tj["spec"].get("variant")]
    verdict = assetstatus.probe_verdict(probe_tj)
    if verdict is None or verdict.get("verdict") != "accepted" or not verdict.get("probe"):
        return existing
    probe = ProbeResult.model_validate(verdict["probe"])
    wanted = plan_variants(MediaKind(asset["spec"]["kind"]), ctx.ladder, probe)
    have = {spec.name for spec in existing}
    missing = [spec for spec in wanted if spec.name not in have]
    if ctx.settings.playable_first:
        wave = first_wave(wanted)
        wave_done = all(assetstatus.tj_phase(tjs.get(names.child_name(name, n)))
                        in ("Succeeded", "Failed") for n in wave)
        if not wave_done:
            missing = [spec for spec in missing if spec.name in wave]
    created = await asyncio.gather(*(
        ctx.kube.create_transcode_job(builders.transcode_job(asset, spec)) for spec in missing))
    if any(created):
        post_event(asset, "Normal", "Transcoding",
                   f"created {sum(created)} transcode jobs for {name}")
    known = {spec.name: spec for spec in [*existing, *wanted]}
    order = {spec.name: i for i, spec in enumerate(wanted)}
    return sorted(known.values(), key=lambda s: order.get(s.name, len(order)))


async def write_manifests(ctx: Context, asset: Mapping[str, Any], status: dict[str, Any]) -> None:
    """Rewrites the master playlist and MPD when the set of done renditions changed."""
    variants = status.get("variants") or []
    ready = [v["name"] for v in manifests.streamable(variants)]
    previous = (asset.get("status") or {}).get("manifests") or {}
    if not ready or previous.get("variants") == ready:
        return
    tenant, asset_id = builders.asset_tenant_and_id(asset)
    prefix = keys.asset_prefix(tenant, asset_id)
    streamed = manifests.streamable(variants)
    texts = await asyncio.gather(*(asyncio.to_thread(ctx.storage.get_text, v["mpd"])
                                   for v in streamed))
    mpd = manifests.dash_mpd(variants, {v["name"]: t for v, t in zip(streamed, texts, strict=True)},
                             prefix)
    master = manifests.hls_master(variants, prefix)
    hls_key, dash_key = keys.hls_master_key(tenant, asset_id), keys.dash_manifest_key(tenant,
                                                                                        asset_id)
    await asyncio.gather(
        asyncio.to_thread(ctx.storage.put_text, dash_key, mpd, "application/dash+xml"),
        asyncio.to_thread(ctx.storage.put_text, hls_key, master,
                          "application/vnd.apple.mpegurl"))
    status["manifests"] = {"hls": hls_key, "dash": dash_key, "variants": ready}


def _differs(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return any(old.get(key) != value for key, value in new.items())


async def delete_asset_objects(ctx: Context, asset: Mapping[str, Any]) -> int:
    """Deletes the asset's objects once none of its workers can still write any.

    A worker holds a presigned POST that cannot be revoked, so its pods must be gone first:
    the Jobs are deleted (the pods with them) and this raises TemporaryError until then.
    """
    meta = asset["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    selector = f"{names.LABEL_ASSET}={name}"
    await ctx.kube.batch.delete_collection_namespaced_job(
        namespace, label_selector=selector, propagation_policy="Background")
    pods = await ctx.kube.core.list_namespaced_pod(namespace, label_selector=selector)
    running = [p.metadata.name for p in pods.items
               if p.status.phase not in ("Succeeded", "Failed")]
    if running:
        raise kopf.TemporaryError(f"waiting for workers to stop: {', '.join(running)}", delay=2)
    tenant, asset_id = builders.asset_tenant_and_id(asset)
    count = await asyncio.to_thread(ctx.storage.delete_prefix,
                                    keys.asset_prefix(tenant, asset_id))
    ctx.forget(namespace, name)
    return count


# --- TranscodeJob ------------------------------------------------------------------------

async def ensure_job(ctx: Context, tj: Mapping[str, Any]) -> None:
    """Creates the TranscodeJob's batch Job unless the work is already decided or running."""
    meta, status = tj["metadata"], tj.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return
    namespace, name = meta["namespace"], meta["name"]
    if await ctx.kube.job_exists(namespace, name):
        return
    asset = await ctx.kube.get_asset(namespace, tj["spec"]["assetRef"]["name"])
    if asset is None or asset["metadata"].get("deletionTimestamp"):
        return
    seconds = builders.presign_seconds(ctx.settings)
    input_url = ctx.storage.presign_get(tj["spec"]["input"]["key"], seconds)
    output = None
    if tj["spec"].get("outputPrefix"):
        output = ctx.storage.presign_post_prefix(tj["spec"]["outputPrefix"], seconds,
                                                 ctx.settings.max_variant_bytes)
    task = builders.worker_task(tj, asset, input_url, output)
    await ensure_worker_service_account(ctx, namespace)
    if await ctx.kube.create_job(builders.worker_job(tj, task, ctx.settings)):
        now = now_rfc3339()
        conditions = set_condition(status.get("conditions", []), "Succeeded", "Unknown",
                                   "JobCreated", f"job {name} created",
                                   meta.get("generation"), now)
        await ctx.kube.patch_status(names.JOB_PLURAL, namespace, name,
                                    {"phase": "Pending", "jobName": name,
                                     "conditions": conditions,
                                     "observedGeneration": meta.get("generation")})


async def ensure_worker_service_account(ctx: Context, namespace: str) -> None:
    """A pod can only use a ServiceAccount of its own namespace: the tenant's gets one.

    Not cached: a tenant namespace can be deleted and made again under the same name.
    """
    if ctx.settings.worker_service_account:
        await ctx.kube.ensure_service_account(namespace, ctx.settings.worker_service_account)


async def sync_from_job(ctx: Context, job: Mapping[str, Any]) -> None:
    """Copies a Job's progress and, once it ends, the worker's result to its TranscodeJob."""
    meta = job["metadata"]
    tj_name = (meta.get("labels") or {}).get(names.LABEL_TRANSCODE_JOB)
    if not tj_name:
        return
    namespace = meta["namespace"]
    try:
        tj = await ctx.kube.custom.get_namespaced_custom_object(
            names.GROUP, names.VERSION, namespace, names.JOB_PLURAL, tj_name)
    except Exception as error:
        log.debug("transcodejob %s/%s not readable: %s", namespace, tj_name, error)
        return
    old = tj.get("status") or {}
    if old.get("phase") in ("Succeeded", "Failed"):
        return
    new = await job_outcome(ctx, tj, job)
    if _differs(old, new):
        await ctx.kube.patch_status(names.JOB_PLURAL, namespace, tj_name, new)
        if new["phase"] == "Failed":
            post_event(tj, "Warning", "JobFailed", str(new.get("message", "")))


async def sync_from_pod(ctx: Context, pod: Mapping[str, Any]) -> None:
    """Takes a worker's result from its Succeeded pod, without waiting for the Job.

    With completions 1 a Succeeded pod is final, but the Job controller batches pod updates
    for about a second before it marks the Job Complete: reading the pod saves that second
    at every step of the asset's chain. Failures still come from the Job, which retries.
    """
    meta = pod["metadata"]
    tj_name = (meta.get("labels") or {}).get(names.LABEL_TRANSCODE_JOB)
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    terminated = (statuses[0].get("state") or {}).get("terminated") if statuses else None
    if not tj_name or not terminated or terminated.get("exitCode") != 0:
        return
    namespace = meta["namespace"]
    try:
        tj = await ctx.kube.custom.get_namespaced_custom_object(
            names.GROUP, names.VERSION, namespace, names.JOB_PLURAL, tj_name)
    except Exception as error:  # a vanished TranscodeJob needs no status
        log.debug("transcodejob %s/%s not readable: %s", namespace, tj_name, error)
        return
    old = tj.get("status") or {}
    if old.get("phase") in ("Succeeded", "Failed"):
        return
    new = _succeeded(tj, str(terminated.get("message") or ""),
                     {"jobName": tj_name, "attempts": old.get("attempts", 0),
                      "startTime": old.get("startTime") or terminated.get("startedAt"),
                      "completionTime": terminated.get("finishedAt") or now_rfc3339()})
    await ctx.kube.patch_status(names.JOB_PLURAL, namespace, tj_name, new)


def _succeeded(tj: Mapping[str, Any], message: str, base: dict[str, Any]) -> dict[str, Any]:
    """The TranscodeJob status for a finished worker, from its result message."""
    old = tj.get("status") or {}
    generation = tj["metadata"].get("generation")
    new: dict[str, Any] = {**{k: v for k, v in base.items() if v is not None},
                           "observedGeneration": generation}
    try:
        result = RESULT.validate_json(message)
    except ValidationError as error:
        new.update(phase="Failed", message=f"unreadable worker result: {error.errors()[:1]}")
        conditions = set_condition(old.get("conditions", []), "Succeeded", "False",
                                   "InvalidResult", new["message"], generation, now_rfc3339())
    else:
        new.update(phase="Succeeded", result=_result_status(result), message="done")
        conditions = set_condition(old.get("conditions", []), "Succeeded", "True", "Completed",
                                   "the worker finished", generation, now_rfc3339())
    new["conditions"] = conditions
    return new


async def job_outcome(ctx: Context, tj: Mapping[str, Any],
                      job: Mapping[str, Any]) -> dict[str, Any]:
    job_status = job.get("status") or {}
    job_conditions = job_status.get("conditions") or []
    complete = get_condition(job_conditions, "Complete")
    failed = get_condition(job_conditions, "Failed")
    old = tj.get("status") or {}
    generation = tj["metadata"].get("generation")
    new: dict[str, Any] = {"jobName": job["metadata"]["name"],
                           "attempts": job_status.get("failed") or 0,
                           "observedGeneration": generation}
    if job_status.get("startTime"):
        new["startTime"] = job_status["startTime"]
    now = now_rfc3339()

    def condition(value: Any, reason: str, message: str) -> None:
        new["conditions"] = set_condition(old.get("conditions", []), "Succeeded", value, reason,
                                          message, generation, now)

    if complete is not None and complete.get("status") == "True":
        messages = await ctx.kube.termination_messages(job["metadata"]["namespace"],
                                                       job["metadata"]["name"])
        succeeded = [m for phase, m in messages if phase == "Succeeded"]
        new["completionTime"] = job_status.get("completionTime") or now
        return _succeeded(tj, succeeded[-1] if succeeded else "", new)
    if failed is not None and failed.get("status") == "True":
        messages = await ctx.kube.termination_messages(job["metadata"]["namespace"],
                                                       job["metadata"]["name"])
        last = next((m for _, m in reversed(messages) if m), "")
        reason = str(failed.get("reason") or "JobFailed")
        new.update(phase="Failed", completionTime=now,
                   message=f"{failed.get('message', reason)}; last error: {last[-800:]}".strip())
        condition("False", reason, new["message"])
    elif (job_status.get("active") or 0) > 0:
        new["phase"] = "Running"
        condition("Unknown", "Running", f"attempt {new['attempts'] + 1} running")
    else:
        new["phase"] = old.get("phase") or "Pending"
    return new


def _result_status(result: Any) -> dict[str, Any]:
    """The worker result as the TranscodeJob status stores it (camelCase, no nulls)."""
    body: dict[str, Any] = result.model_dump(mode="json", exclude_none=True)
    body.pop("kind", None)
    return body
