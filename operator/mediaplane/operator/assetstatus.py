"""The MediaAsset status as a pure function of what the operator observed.

Reconcile reads the asset, the stored source object and the TranscodeJobs, and this module
says what the status is and which events the change deserves. Being pure and total, it is
where the lifecycle rules live and what the unit tests exercise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mediaplane.core import keys
from mediaplane.core.resources import (
    ConditionWriter,
    MediaAsset,
    MediaAssetStatus,
    Quarantine,
    TranscodeJob,
    VariantStatus,
    WorkerResultStatus,
)
from mediaplane.core.states import (
    AssetCondition,
    AssetPhase,
    ConditionStatus,
    EventType,
    TranscodePhase,
    VariantState,
)
from mediaplane.core.tasks import MediaKind, VariantSpec, VariantType, Verdict

TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
MAX_MESSAGE = 1024
_SetCondition = Callable[[str, ConditionStatus, str, str], None]


@dataclass(frozen=True)
class SourceCheck:
    """The outcome of HEAD on the source object against the declared size and ETag."""

    ok: bool
    reason: str
    message: str


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str


@dataclass
class Observed:
    asset: MediaAsset
    source: SourceCheck | None
    probe_tj: TranscodeJob | None
    planned: Sequence[VariantSpec]
    variant_tjs: Mapping[str, TranscodeJob] = field(default_factory=dict)


def probe_verdict(probe_tj: TranscodeJob | None) -> WorkerResultStatus | None:
    """The probe's result once its TranscodeJob succeeded, else None."""
    return probe_tj.probe_verdict if probe_tj is not None else None


def variant_entry(spec: VariantSpec, tj: TranscodeJob | None, tenant: str,
                  asset_id: str) -> VariantStatus:
    state = VariantState.of(tj.status.phase if tj is not None else None)
    entry = VariantStatus(name=spec.name, type=spec.type, state=state,
                          transcode_job=tj.name if tj is not None else None,
                          retries=tj.status.retry if tj is not None else None)
    if tj is None:
        return entry
    if state is VariantState.FAILED and tj.status.message:
        entry.message = tj.status.message[:MAX_MESSAGE]
    output = tj.status.result.output if tj.status.result is not None else None
    if state is VariantState.SUCCEEDED and output is not None:
        prefix = keys.variant_prefix(tenant, asset_id, spec.name)
        entry.width, entry.height = output.width, output.height
        entry.bandwidth, entry.codecs = output.bandwidth, output.codecs
        entry.duration_seconds, entry.bytes = output.duration_seconds, output.bytes
        entry.playlist = prefix + output.playlist if output.playlist else None
        entry.mpd = prefix + output.mpd if output.mpd else None
        entry.file = prefix + output.file if output.file else None
    return entry


def is_playable(kind: MediaKind, variants: Sequence[VariantStatus]) -> bool:
    """Video: a video rung and the audio (if planned) are done. Others: any rendition."""
    done = {v.type for v in variants if v.state is VariantState.SUCCEEDED}
    if kind is MediaKind.VIDEO:
        audio_planned = any(v.type is VariantType.AUDIO for v in variants)
        return VariantType.VIDEO in done and (not audio_planned or VariantType.AUDIO in done)
    wanted = VariantType.IMAGE if kind is MediaKind.IMAGE else VariantType.AUDIO
    return wanted in done


def compute(observed: Observed, now: str) -> tuple[MediaAssetStatus, list[Event]]:
    """The whole new status of the asset and the events its transitions deserve."""
    asset = observed.asset
    old = asset.status
    generation = asset.metadata.generation
    conditions = ConditionWriter(old.conditions, generation, now)
    cond = conditions.set

    # Keep what earlier reconciles learnt that this one did not look at again.
    status = MediaAssetStatus(observed_generation=generation, probe=old.probe,
                              quarantine=old.quarantine, manifests=old.manifests,
                              captions=old.captions, transcripts=old.transcripts,
                              caption_jobs=old.caption_jobs, auto_captions=old.auto_captions,
                              generation=old.generation)

    uploaded = observed.source is not None and observed.source.ok
    if observed.source is not None:
        cond(AssetCondition.UPLOADED, TRUE if uploaded else FALSE, observed.source.reason,
             observed.source.message)
    elif conditions.find(AssetCondition.UPLOADED) is None:
        cond(AssetCondition.UPLOADED, UNKNOWN, "Checking", "checking the source object")
    uploaded = uploaded or conditions.is_true(AssetCondition.UPLOADED)

    verdict = probe_verdict(observed.probe_tj)
    variants = [variant_entry(v, observed.variant_tjs.get(v.name), asset.tenant,
                              asset.asset_id) for v in observed.planned]
    if variants:
        status.variants = variants
        done = sum(v.state is VariantState.SUCCEEDED for v in variants)
        status.variant_summary = f"{done}/{len(variants)}"

    phase, playable = AssetPhase.PENDING, False
    probe_phase = observed.probe_tj.phase if observed.probe_tj is not None else None
    if not uploaded:
        source = observed.source
        reason = source.reason if source else "AwaitingUpload"
        cond(AssetCondition.READY, FALSE, reason,
             source.message if source else "waiting for the source")
    elif probe_phase is TranscodePhase.FAILED:
        phase = AssetPhase.FAILED
        message = (observed.probe_tj.status.message if observed.probe_tj else None) or \
            "the probe job failed"
        cond(AssetCondition.PROBED, FALSE, "ProbeFailed", message)
        cond(AssetCondition.READY, FALSE, "ProbeFailed", message)
    elif verdict is None:
        phase = AssetPhase.PROCESSING
        cond(AssetCondition.PROBED, UNKNOWN, "Probing", "checking checksum, type and streams")
        cond(AssetCondition.READY, FALSE, "Probing", "the source is being probed")
    elif verdict.verdict is Verdict.QUARANTINED:
        phase = AssetPhase.QUARANTINED
        reason = verdict.reason or "Quarantined"
        message = verdict.message or "the source failed the ingest checks"
        status.quarantine = Quarantine(reason=reason, message=message)
        cond(AssetCondition.PROBED, TRUE, "Probed", "probe finished")
        cond(AssetCondition.QUARANTINED, TRUE, reason, message)
        cond(AssetCondition.READY, FALSE, "Quarantined", message)
    else:
        if verdict.probe is not None:
            status.probe = verdict.probe
        cond(AssetCondition.PROBED, TRUE, "Probed", "checksum, type and streams verified")
        cond(AssetCondition.QUARANTINED, FALSE, "Clean", "the source passed the ingest checks")
        phase, playable = _transcoding(asset.spec.kind, variants, status, cond)

    status.phase, status.playable, status.conditions = phase, playable, conditions.items
    return status, _events(old, status)


def _transcoding(kind: MediaKind, variants: Sequence[VariantStatus], status: MediaAssetStatus,
                 cond: _SetCondition) -> tuple[AssetPhase, bool]:
    playable = is_playable(kind, variants)
    terminal = all(v.state.terminal for v in variants)
    failed = ", ".join(v.name for v in variants if v.state is VariantState.FAILED)
    summary = status.variant_summary
    if playable:
        phase = AssetPhase.READY
        cond(AssetCondition.READY, TRUE, "Playable", f"{summary} variants ready")
    elif terminal and variants:
        phase = AssetPhase.FAILED
        cond(AssetCondition.READY, FALSE, "VariantsFailed", f"failed variants: {failed}")
    else:
        phase = AssetPhase.PROCESSING
        cond(AssetCondition.READY, FALSE, "Transcoding", "waiting for the first playable variants")
    if not variants:
        cond(AssetCondition.COMPLETE, FALSE, "Planning", "planning variants")
    elif not terminal:
        cond(AssetCondition.COMPLETE, FALSE, "Transcoding", f"{summary} variants done")
    elif failed:
        cond(AssetCondition.COMPLETE, TRUE, "SomeVariantsFailed", f"failed variants: {failed}")
    else:
        cond(AssetCondition.COMPLETE, TRUE, "AllVariantsSucceeded", "every variant is done")
    return phase, playable


def _events(old: MediaAssetStatus, new: MediaAssetStatus) -> list[Event]:
    events: list[Event] = []
    old_states = {v.name: v.state for v in old.variants}
    for v in new.variants:
        if v.state == old_states.get(v.name):
            continue
        if v.state is VariantState.FAILED:
            events.append(Event(EventType.WARNING, "VariantFailed",
                                f"variant {v.name} failed: {v.message or ''}".strip()))
        elif v.state is VariantState.SUCCEEDED:
            events.append(Event(EventType.NORMAL, "VariantReady", f"variant {v.name} is done"))
    if new.phase != old.phase:
        if new.phase is AssetPhase.QUARANTINED and new.quarantine is not None:
            events.append(Event(EventType.WARNING, "Quarantined",
                                f"{new.quarantine.reason}: {new.quarantine.message}"))
        elif new.phase is AssetPhase.FAILED:
            ready = new.condition(AssetCondition.READY)
            events.append(Event(EventType.WARNING, "Failed", ready.message if ready else ""))
    if new.playable and not old.playable:
        complete = all(v.state is VariantState.SUCCEEDED for v in new.variants)
        events.append(Event(EventType.NORMAL, "Playable" if complete else "PlayableEarly",
                            f"playable with {new.variant_summary} variants"))
    old_complete, new_complete = (old.condition(AssetCondition.COMPLETE),
                                  new.condition(AssetCondition.COMPLETE))
    if new_complete is not None and new_complete.status is TRUE and (
            old_complete is None or old_complete.status is not TRUE):
        events.append(Event(EventType.NORMAL, "Complete", new_complete.message))
    return events
