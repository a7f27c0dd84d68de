"""The MediaAsset status as a pure function of what the operator observed.

Reconcile reads the asset, the stored source object and the TranscodeJobs, and this module
says what the status is and which events the change deserves. Being pure and total, it is
where the lifecycle rules live and what the unit tests exercise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mediaplane.core import keys
from mediaplane.core.tasks import MediaKind, TaskType, VariantSpec
from mediaplane.operator.conditions import Status, get_condition, set_condition

READY = "Ready"
UPLOADED = "Uploaded"
PROBED = "Probed"
QUARANTINED = "Quarantined"
COMPLETE = "Complete"


@dataclass(frozen=True)
class SourceCheck:
    """The outcome of HEAD on the source object against the declared size and ETag."""

    ok: bool
    reason: str
    message: str


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Observed:
    asset: Mapping[str, Any]
    source: SourceCheck | None
    probe_tj: Mapping[str, Any] | None
    planned: Sequence[VariantSpec]
    variant_tjs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def tj_phase(tj: Mapping[str, Any] | None) -> str:
    if tj is None:
        return "Pending"
    return str(tj.get("status", {}).get("phase") or "Pending")


def probe_verdict(probe_tj: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The probe's result once its TranscodeJob succeeded, else None."""
    if tj_phase(probe_tj) != "Succeeded" or probe_tj is None:
        return None
    result = probe_tj.get("status", {}).get("result")
    return result if isinstance(result, Mapping) else None


def variant_entry(spec: VariantSpec, tj: Mapping[str, Any] | None, tenant: str,
                  asset_id: str) -> dict[str, Any]:
    state = tj_phase(tj).lower()
    entry: dict[str, Any] = {"name": spec.name, "type": spec.type.value, "state": state}
    if tj is not None:
        entry["transcodeJob"] = tj["metadata"]["name"]
    status = tj.get("status", {}) if tj is not None else {}
    if state == "failed" and status.get("message"):
        entry["message"] = str(status["message"])[:1024]
    output = status.get("result", {}).get("output") if state == "succeeded" else None
    if isinstance(output, Mapping):
        prefix = keys.variant_prefix(tenant, asset_id, spec.name)
        for key in ("width", "height", "bandwidth", "codecs", "durationSeconds", "bytes"):
            if output.get(key) is not None:
                entry[key] = output[key]
        for key in ("playlist", "mpd", "file"):
            if output.get(key):
                entry[key] = prefix + str(output[key])
    return entry


def is_playable(kind: MediaKind, variants: Sequence[Mapping[str, Any]]) -> bool:
    """Video: a video rung and the audio (if planned) are done. Others: any rendition."""
    done = {v["type"] for v in variants if v["state"] == "succeeded"}
    if kind is MediaKind.VIDEO:
        audio_planned = any(v["type"] == TaskType.AUDIO.value for v in variants)
        return TaskType.VIDEO.value in done and (not audio_planned or TaskType.AUDIO.value in done)
    wanted = TaskType.IMAGE.value if kind is MediaKind.IMAGE else TaskType.AUDIO.value
    return wanted in done


def compute(observed: Observed, now: str) -> tuple[dict[str, Any], list[Event]]:
    """The whole new status of the asset and the events its transitions deserve."""
    asset = observed.asset
    meta, spec = asset["metadata"], asset["spec"]
    old: Mapping[str, Any] = asset.get("status") or {}
    generation = meta.get("generation")
    tenant, asset_id = meta["namespace"], meta["name"].replace("-", "_", 1)
    kind = MediaKind(spec["kind"])
    conditions: list[dict[str, Any]] = [dict(c) for c in old.get("conditions", [])]
    status: dict[str, Any] = {"observedGeneration": generation}

    def cond(type_: str, value: Status, reason: str, message: str) -> None:
        nonlocal conditions
        conditions = set_condition(conditions, type_, value, reason, message, generation, now)

    # Keep what earlier reconciles learnt that this one did not look at again.
    for key in ("probe", "quarantine", "manifests"):
        if key in old:
            status[key] = old[key]

    uploaded = observed.source is not None and observed.source.ok
    if observed.source is not None:
        cond(UPLOADED, "True" if uploaded else "False", observed.source.reason,
             observed.source.message)
    elif get_condition(conditions, UPLOADED) is None:
        cond(UPLOADED, "Unknown", "Checking", "checking the source object")
    uploaded = uploaded or _true(conditions, UPLOADED)

    verdict = probe_verdict(observed.probe_tj)
    variants = [variant_entry(v, observed.variant_tjs.get(v.name), tenant, asset_id)
                for v in observed.planned]
    if variants:
        status["variants"] = variants
        done = sum(v["state"] == "succeeded" for v in variants)
        status["variantSummary"] = f"{done}/{len(variants)}"

    phase, playable = "pending", False
    if not uploaded:
        source = observed.source
        reason = source.reason if source else "AwaitingUpload"
        cond(READY, "False", reason, source.message if source else "waiting for the source")
    elif tj_phase(observed.probe_tj) == "Failed":
        phase = "failed"
        message = str((observed.probe_tj or {}).get("status", {}).get("message", ""))
        cond(PROBED, "False", "ProbeFailed", message or "the probe job failed")
        cond(READY, "False", "ProbeFailed", message or "the probe job failed")
    elif verdict is None:
        phase = "processing"
        cond(PROBED, "Unknown", "Probing", "checking checksum, type and streams")
        cond(READY, "False", "Probing", "the source is being probed")
    elif verdict.get("verdict") == "quarantined":
        phase = "quarantined"
        reason = str(verdict.get("reason") or "Quarantined")
        message = str(verdict.get("message") or "the source failed the ingest checks")
        status["quarantine"] = {"reason": reason, "message": message}
        cond(PROBED, "True", "Probed", "probe finished")
        cond(QUARANTINED, "True", reason, message)
        cond(READY, "False", "Quarantined", message)
    else:
        if isinstance(verdict.get("probe"), Mapping):
            status["probe"] = dict(verdict["probe"])
        cond(PROBED, "True", "Probed", "checksum, type and streams verified")
        cond(QUARANTINED, "False", "Clean", "the source passed the ingest checks")
        playable = is_playable(kind, variants)
        terminal = all(v["state"] in ("succeeded", "failed") for v in variants)
        failed = [v["name"] for v in variants if v["state"] == "failed"]
        if playable:
            phase = "ready"
            cond(READY, "True", "Playable", f"{status['variantSummary']} variants ready")
        elif terminal and variants:
            phase = "failed"
            cond(READY, "False", "VariantsFailed", f"failed variants: {', '.join(failed)}")
        else:
            phase = "processing"
            cond(READY, "False", "Transcoding", "waiting for the first playable variants")
        if not variants:
            cond(COMPLETE, "False", "Planning", "planning variants")
        elif not terminal:
            cond(COMPLETE, "False", "Transcoding", f"{status['variantSummary']} variants done")
        elif failed:
            cond(COMPLETE, "True", "SomeVariantsFailed", f"failed variants: {', '.join(failed)}")
        else:
            cond(COMPLETE, "True", "AllVariantsSucceeded", "every variant is done")

    status.update(phase=phase, playable=playable, conditions=conditions)
    return status, _events(old, status, variants)


def _true(conditions: Sequence[Mapping[str, Any]], type_: str) -> bool:
    condition = get_condition(conditions, type_)
    return condition is not None and condition.get("status") == "True"


def _events(old: Mapping[str, Any], new: Mapping[str, Any],
            variants: Sequence[Mapping[str, Any]]) -> list[Event]:
    events: list[Event] = []
    old_states = {v["name"]: v["state"] for v in old.get("variants", [])}
    for v in variants:
        if v["state"] == old_states.get(v["name"]):
            continue
        if v["state"] == "failed":
            events.append(Event("Warning", "VariantFailed",
                                f"variant {v['name']} failed: {v.get('message', '')}".strip()))
        elif v["state"] == "succeeded":
            events.append(Event("Normal", "VariantReady", f"variant {v['name']} is done"))
    old_phase, phase = old.get("phase"), new["phase"]
    if phase != old_phase:
        if phase == "quarantined":
            q = new.get("quarantine", {})
            events.append(Event("Warning", "Quarantined", f"{q.get('reason')}: {q.get('message')}"))
        elif phase == "failed":
            events.append(Event("Warning", "Failed", _ready_message(new)))
    if new.get("playable") and not old.get("playable"):
        complete = all(v["state"] == "succeeded" for v in variants)
        events.append(Event("Normal", "Playable" if complete else "PlayableEarly",
                            f"playable with {new.get('variantSummary')} variants"))
    old_complete = get_condition(old.get("conditions"), COMPLETE)
    new_complete = get_condition(new["conditions"], COMPLETE)
    if new_complete and new_complete["status"] == "True" and (
            old_complete is None or old_complete.get("status") != "True"):
        events.append(Event("Normal", "Complete", new_complete["message"]))
    return events


def _ready_message(status: Mapping[str, Any]) -> str:
    ready = get_condition(status.get("conditions"), READY)
    return str(ready.get("message", "")) if ready else ""
