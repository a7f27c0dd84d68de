"""The lifecycle rules: upload → probe → quarantine or variants → playable → complete."""

from __future__ import annotations

from typing import Any

from mediaplane.core.tasks import TaskType, VariantSpec
from mediaplane.operator import assetstatus
from mediaplane.operator.assetstatus import Observed, SourceCheck
from mediaplane.operator.conditions import get_condition

ASSET_ID = "mda_" + "0123456789abcdefghjkmnpqrs"
NAME = "mda-" + "0123456789abcdefghjkmnpqrs"
NOW = "2026-11-28T12:00:00Z"
LATER = "2026-11-28T12:05:00Z"
PLAN = [VariantSpec(name="240p", type=TaskType.VIDEO, height=240),
        VariantSpec(name="360p", type=TaskType.VIDEO, height=360),
        VariantSpec(name="audio", type=TaskType.AUDIO, audio_codec="aac"),
        VariantSpec(name="poster", type=TaskType.POSTER)]


def asset(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": NAME, "namespace": "acme", "generation": 2},
            "spec": {"kind": "video"}, "status": status or {}}


def tj(phase: str, result: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "x"}, "status": {"phase": phase, "result": result or {}}}


UP = SourceCheck(True, "Uploaded", "ok")
ACCEPTED = tj("Succeeded", {"verdict": "accepted", "probe": {"width": 640, "height": 360}})


def output(name: str, **extra: Any) -> dict[str, Any]:
    return tj("Succeeded", {"output": {"name": name, "playlist": "media_0.m3u8",
                                       "mpd": "manifest.mpd", **extra}})


def condition(status: dict[str, Any], type_: str) -> tuple[str, str]:
    found = get_condition(status["conditions"], type_)
    assert found is not None, type_
    return found["status"], found["reason"]


def test_missing_source_waits_for_upload() -> None:
    status, events = assetstatus.compute(
        Observed(asset(), SourceCheck(False, "AwaitingUpload", "no object"), None, []), NOW)
    assert status["phase"] == "pending"
    assert condition(status, "Ready") == ("False", "AwaitingUpload")
    assert condition(status, "Uploaded") == ("False", "AwaitingUpload")
    assert status["observedGeneration"] == 2
    assert events == []


def test_quarantine_is_final_and_explained() -> None:
    probe = tj("Succeeded", {"verdict": "quarantined", "reason": "ChecksumMismatch",
                             "message": "sha256 differs"})
    status, events = assetstatus.compute(
        Observed(asset(), SourceCheck(True, "Uploaded", "ok"), probe, []), NOW)
    assert status["phase"] == "quarantined"
    assert condition(status, "Quarantined") == ("True", "ChecksumMismatch")
    assert condition(status, "Ready") == ("False", "Quarantined")
    assert status["quarantine"] == {"reason": "ChecksumMismatch", "message": "sha256 differs"}
    assert [(e.type, e.reason) for e in events] == [("Warning", "Quarantined")]


def test_playable_early_with_one_rung_and_audio_then_complete() -> None:
    tjs = {"240p": output("240p", bandwidth=400_000), "audio": output("audio"),
           "360p": tj("Running"), "poster": tj("Pending")}
    status, events = assetstatus.compute(
        Observed(asset(), UP, ACCEPTED, PLAN, tjs), NOW)
    assert status["phase"] == "ready"
    assert status["playable"] is True
    assert status["variantSummary"] == "2/4"
    assert condition(status, "Ready") == ("True", "Playable")
    assert condition(status, "Complete") == ("False", "Transcoding")
    assert "PlayableEarly" in [e.reason for e in events]
    v240 = next(v for v in status["variants"] if v["name"] == "240p")
    assert v240["playlist"] == f"tenants/acme/assets/{ASSET_ID}/variants/240p/media_0.m3u8"

    done = {**tjs, "360p": output("360p"),
            "poster": tj("Succeeded", {"output": {"name": "poster", "file": "poster.jpg"}})}
    final, events = assetstatus.compute(Observed(asset(status), None, ACCEPTED, PLAN, done), LATER)
    assert condition(final, "Complete") == ("True", "AllVariantsSucceeded")
    assert final["variantSummary"] == "4/4"
    ready = get_condition(final["conditions"], "Ready")
    assert ready is not None
    assert ready["lastTransitionTime"] == NOW, "Ready did not flip, so its time must not move"
    assert "Complete" in [e.reason for e in events]
    assert "PlayableEarly" not in [e.reason for e in events]


def test_video_without_its_audio_is_not_playable() -> None:
    tjs = {"240p": output("240p"), "audio": tj("Running")}
    status, _ = assetstatus.compute(Observed(asset(), UP, ACCEPTED, PLAN, tjs), NOW)
    assert status["playable"] is False
    assert status["phase"] == "processing"


def test_failed_variant_is_reported_and_others_still_serve() -> None:
    failed = tj("Failed")
    failed["status"]["message"] = "BackoffLimitExceeded"
    tjs = {"240p": output("240p"), "audio": output("audio"), "360p": failed,
           "poster": output("poster")}
    status, events = assetstatus.compute(Observed(asset(), UP, ACCEPTED, PLAN, tjs), NOW)
    assert status["phase"] == "ready"
    assert condition(status, "Complete") == ("True", "SomeVariantsFailed")
    assert ("Warning", "VariantFailed") in [(e.type, e.reason) for e in events]


def test_every_video_rung_failing_fails_the_asset() -> None:
    tjs = {name: tj("Failed") for name in ("240p", "360p")}
    tjs |= {"audio": output("audio"), "poster": output("poster")}
    status, _ = assetstatus.compute(Observed(asset(), UP, ACCEPTED, PLAN, tjs), NOW)
    assert status["phase"] == "failed"
    assert condition(status, "Ready") == ("False", "VariantsFailed")


def test_only_unfinalized_uploads_wait_for_finalize() -> None:
    from mediaplane.operator.reconcile import awaiting_finalize

    assert awaiting_finalize({"spec": {"source": {"origin": "upload", "key": "k"}}})
    assert not awaiting_finalize({"spec": {"source": {"origin": "upload", "key": "k",
                                                      "etag": "abc"}}})
    assert not awaiting_finalize({"spec": {"source": {"origin": "object", "key": "k"}}})
