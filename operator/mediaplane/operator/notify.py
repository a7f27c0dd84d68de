"""Which webhook events an asset's new status deserves, and what they say. Pure functions.

Level-based like the rest of the operator: an event is due when the status shows what it
announces and the status does not record it yet. It is recorded (pending) in the same status
write as the transition itself, so an operator that dies before delivering it finds it again
after a restart; the dispatcher (`webhooks.py`) marks it done once delivered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from mediaplane.core.resources import MediaAsset, MediaAssetStatus, Notification
from mediaplane.core.states import AssetCondition, AssetPhase, ConditionStatus, WebhookEvent


def message_id(uid: str, event: WebhookEvent, language: str | None = None) -> str:
    """The webhook-id: one per (asset, event[, language]), so a repeat is recognisable."""
    seed = f"{uid}/{event.value}/{(language or '').lower()}"
    return "msg_" + hashlib.sha256(seed.encode()).hexdigest()[:32]


def _complete(status: MediaAssetStatus) -> bool:
    complete = status.condition(AssetCondition.COMPLETE)
    return complete is not None and complete.status is ConditionStatus.TRUE


def due(asset: MediaAsset, status: MediaAssetStatus) -> list[tuple[WebhookEvent, str | None]]:
    """Every (event, language) the status announces, in the order they happen."""
    events: list[tuple[WebhookEvent, str | None]] = [(WebhookEvent.ASSET_CREATED, None)]
    if status.phase is AssetPhase.QUARANTINED:
        events.append((WebhookEvent.ASSET_QUARANTINED, None))
    if status.playable and status.phase not in (AssetPhase.QUARANTINED, AssetPhase.FAILED):
        events.append((WebhookEvent.ASSET_PLAYABLE, None))
    if status.phase is AssetPhase.FAILED:
        events.append((WebhookEvent.ASSET_FAILED, None))
    elif _complete(status) and status.phase is AssetPhase.READY:
        events.append((WebhookEvent.ASSET_READY, None))
    languages = [t.language for t in asset.spec.captions] + [t.language for t in status.captions]
    seen: set[str] = set()
    for language in languages:
        if language.lower() not in seen:
            seen.add(language.lower())
            events.append((WebhookEvent.CAPTION_READY, language))
    return events


def record(asset: MediaAsset, status: MediaAssetStatus, now: str) -> list[Notification]:
    """The status's notifications: the ones already recorded, plus those now due."""
    uid = asset.metadata.uid or asset.name
    kept = list(asset.status.notifications)
    known = {n.id for n in kept}
    for event, language in due(asset, status):
        nid = message_id(uid, event, language)
        if nid not in known:
            kept.append(Notification(id=nid, type=event, at=now, language=language))
            known.add(nid)
    return kept


def deleted(asset: MediaAsset, now: str) -> Notification:
    uid = asset.metadata.uid or asset.name
    return Notification(id=message_id(uid, WebhookEvent.ASSET_DELETED),
                        type=WebhookEvent.ASSET_DELETED, at=now)


def payload(asset: MediaAsset, notification: Notification) -> dict[str, Any]:
    """The Standard Webhooks body: `type`, `timestamp`, `data`. No links: they are signed for
    a user and expire; the receiver reads the asset through the API with its own token."""
    status = asset.status
    variants = status.variants
    data: dict[str, Any] = {
        "id": asset.asset_id, "tenant": asset.tenant, "kind": asset.spec.kind.value,
        "source": asset.spec.source.origin.value,
        "status": (AssetPhase.READY if notification.type is WebhookEvent.ASSET_PLAYABLE
                   else asset.phase).value,
        "playable": asset.playable, "filename": asset.spec.filename,
        "variants": {"done": sum(v.state.value == "succeeded" for v in variants),
                     "failed": sum(v.state.value == "failed" for v in variants),
                     "total": len(variants)},
    }
    if notification.type is WebhookEvent.ASSET_QUARANTINED and status.quarantine is not None:
        data["quarantine"] = {"reason": status.quarantine.reason}
    if notification.type is WebhookEvent.ASSET_DELETED:
        data["status"] = "deleted"
    if notification.language is not None:
        data["language"] = notification.language
    return {"type": notification.type.value, "timestamp": notification.at, "data": data}


def mark_done(notifications: Sequence[Notification], done: set[str]) -> list[Notification]:
    from mediaplane.core.states import NotificationState

    return [n.model_copy(update={"state": NotificationState.DONE}) if n.id in done else n
            for n in notifications]
