"""The lifecycle rules: upload → probe → quarantine or variants → playable → complete."""

from __future__ import annotations

from typing import Any

from mediaplane.core.resources import (
    MediaAsset,
    MediaAssetStatus,
    TranscodeJob,
    TranscodeJobStatus,
    WorkerResultStatus,
)
from mediaplane.core.states import AssetCondition, AssetPhase, SourceOrigin, TranscodePhase
from mediaplane.core.tasks import MediaKind, VariantSpec, VariantType
from mediaplane.operator import assetstatus
from mediaplane.operator.assetstatus import Observed, SourceCheck

ASSET_ID = "mda_" + "0123456789abcdefghjkmnpqrs"
NOW = "2026-11-28T12:00:00Z"
LATER = "2026-11-28T12:05:00Z"
PLAN = [VariantSpec(name="240p", type=VariantType.VIDEO, height=240),
        VariantSpec(name="360p", type=VariantType.VIDEO, height=360),
        VariantSpec(name="audio", type=VariantType.AUDIO, audio_codec="aac"),
        VariantSpec(name="poster", type=VariantType.POSTER)]


def asset(status: MediaAssetStatus | None = None) -> MediaAsset:
    made = MediaAsset.new("acme", ASSET_ID, kind=MediaKind.VIDEO, mime="video/mp4",
                          sha256="a" * 64, size_bytes=10)
    made.metadata.generation = 2
    if status is not None:
        made.status = status
    return made


def tj(phase: TranscodePhase, result: dict[str, Any] | None = None,
       message: str | None = None) -> TranscodeJob:
    return TranscodeJob.model_validate({
        "metadata": {"name": "x", "namespace": "acme"},
        "spec": {"assetRef": {"name": asset().name}, "task": "video",
                 "input": {"key": "k"}},
        "status": TranscodeJobStatus(
            phase=phase, message=message,
            result=WorkerResultStatus.model_validate(result) if result else None).to_body()})


UP = SourceCheck(True, "Uploaded", "ok")
ACCEPTED = tj(TranscodePhase.SUCCEEDED, {"verdict": "accepted", "probe": {
    "detectedMime": "video/mp4", "formatName": "mov", "width": 640, "height": 360}})


def output(name: str, **extra: Any) -> TranscodeJob:
    return tj(TranscodePhase.SUCCEEDED, {"output": {
        "name": name, "files": 3, "bytes": 100, "playlist": "media_0.m3u8",
        "mpd": "manifest.mpd", **extra}})


def condition(status: MediaAssetStatus, type_: str) -> tuple[str, str]:
    found = next((c for c in status.conditions if c.type == type_), None)
    assert found is not None, type_
    return found.status.value, found.reason


def test_missing_source_waits_for_upload() -> None:
    status, events = assetstatus.compute(
        Observed(asset(), SourceCheck(False, "AwaitingUpload", "no object"), None, []), NOW)
    assert status.phase is AssetPhase.PENDING
    assert condition(status, "Ready") == ("False", "AwaitingUpload")
    assert condition(status, "Uploaded") == ("False", "AwaitingUpload")
    assert status.observed_generation == 2
    assert events == []


def test_quarantine_is_final_and_explained() -> None:
    probe = tj(TranscodePhase.SUCCEEDED, {"verdict": "quarantined",
                                          "reason": "ChecksumMismatch",
                                          "message": "sha256 differs"})
    status, events = assetstatus.compute(Observed(asset(), UP, probe, []), NOW)
    assert status.phase is AssetPhase.QUARANTINED
    assert condition(status, "Quarantined") == ("True", "ChecksumMismatch")
    assert condition(status, "Ready") == ("False", "Quarantined")
    assert status.quarantine is not None
    assert (status.quarantine.reason, status.quarantine.message) == ("ChecksumMismatch",
                                                                     "sha256 differs")
    assert [(e.type, e.reason) for e in events] == [("Warning", "Quarantined")]


def test_playable_early_with_one_rung_and_audio_then_complete() -> None:
    tjs = {"240p": output("240p", bandwidth=400_000), "audio": output("audio"),
           "360p": tj(TranscodePhase.RUNNING), "poster": tj(TranscodePhase.PENDING)}
    status, events = assetstatus.compute(Observed(asset(), UP, ACCEPTED, PLAN, tjs), NOW)
    assert status.phase is AssetPhase.READY
    assert status.playable is True
    assert status.variant_summary == "2/4"
    assert condition(status, "Ready") == ("True", "Playable")
    assert condition(status, "Complete") == ("False", "Transcoding")
    assert "PlayableEarly" in [e.reason for e in events]
    v240 = status.variant("240p")
    assert v240 is not None
    assert v240.playlist == f"tenants/acme/assets/{ASSET_ID}/variants/240p/media_0.m3u8"
    assert v240.streamable

    done = {**tjs, "360p": output("360p"),
            "poster": tj(TranscodePhase.SUCCEEDED, {"output": {
                "name": "poster", "files": 1, "bytes": 5, "file": "poster.jpg"}})}
    final, events = assetstatus.compute(Observed(asset(status), None, ACCEPTED, PLAN, done),
                                        LATER)
    assert condition(final, "Complete") == ("True", "AllVariantsSucceeded")
    assert final.variant_summary == "4/4"
    ready = final.condition(AssetCondition.READY)
    assert ready is not None
    assert ready.last_transition_time == NOW, "Ready did not flip, so its time must not move"
    assert "Complete" in [e.reason for e in events]
    assert "PlayableEarly" not in [e.reason for e in events]


def test_video_without_its_audio_is_not_playable() -> None:
    tjs = {"240p": output("240p"), "audio": tj(TranscodePhase.RUNNING)}
    status, _ = assetstatus.compute(Observed(asset(), UP, ACCEPTED, PLAN, tjs), NOW)
    assert status.playable is False
    assert status.phase is AssetPhase.PROCESSING


def test_failed_variant_is_reported_and_others_still_serve() -> None:
    tjs = {"240p": output("240p"), "audio": output("audio"),
           "360p": tj(TranscodePhase.FAILED, message="BackoffLimitExceeded"),
           "poster": output("poster")}
    status, events = assetstatus.compute(Observed(asset(), UP, ACCEPTED, PLAN, tjs), NOW)
    assert status.phase is AssetPhase.READY
    assert condition(status, "Complete") == ("True", "SomeVariantsFailed")
    failed = status.variant("360p")
    assert failed is not None
    assert failed.message == "BackoffLimitExceeded"
    assert ("Warning", "VariantFailed") in [(e.type, e.reason) for e in events]


def test_every_video_rung_failing_fails_the_asset() -> None:
    tjs = {name: tj(TranscodePhase.FAILED) for name in ("240p", "360p")}
    tjs |= {"audio": output("audio"), "poster": output("poster")}
    status, _ = assetstatus.compute(Observed(asset(), UP, ACCEPTED, PLAN, tjs), NOW)
    assert status.phase is AssetPhase.FAILED
    assert condition(status, "Ready") == ("False", "VariantsFailed")


def test_only_unfinalized_uploads_wait_for_finalize() -> None:
    upload = MediaAsset.new("acme", ASSET_ID, kind=MediaKind.VIDEO, mime="video/mp4",
                            sha256="a" * 64, size_bytes=10, origin=SourceOrigin.UPLOAD)
    assert upload.awaiting_finalize
    upload.spec.source.etag = "abc"
    assert not upload.awaiting_finalize
    assert not asset().awaiting_finalize


def test_probe_failure_fails_the_asset_with_its_message() -> None:
    probe = tj(TranscodePhase.FAILED, message="DeadlineExceeded")
    status, events = assetstatus.compute(Observed(asset(), UP, probe, []), NOW)
    assert status.phase is AssetPhase.FAILED
    assert condition(status, "Ready") == ("False", "ProbeFailed")
    assert [e.reason for e in events] == ["Failed"]


def test_status_keeps_what_earlier_reconciles_learnt() -> None:
    earlier = MediaAssetStatus.model_validate({"probe": {
        "detectedMime": "video/mp4", "formatName": "mov", "durationSeconds": 3.5}})
    status, _ = assetstatus.compute(Observed(asset(earlier), UP, None, []), NOW)
    assert status.probe is not None
    assert status.probe.duration_seconds == 3.5
