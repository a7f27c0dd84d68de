"""Speech to text on the real environment: Piper speaks known sentences at known times,
the REST API asks for captions, caption Jobs (a plan Job and an Indexed Job) run
faster-whisper on the packaged Whisper base model, and the tests read what a user reads.

Accuracy is measured, not assumed: the word error rate of the track against what was said
(jiwer), and each sentence's cue start against where the sentence was placed.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import webvtt
from kubernetes import client as k8s

from mediaplane.core import keys, names
from mediaplane.devcluster.cluster import DevCluster
from tests.support.api import ApiUser
from tests.support.assets import Assets, condition
from tests.support.media import Media
from tests.support.speech import SpeechTrack, as_mp3, as_video, build_track, word_error_rate
from tests.support.wait import eventually

MAX_WER = 0.15
MAX_START_ERROR = 0.5  # seconds


@pytest.fixture(scope="session")
def speech(media_dir: Path) -> SpeechTrack:
    return build_track(media_dir / "speech.wav")


@pytest.fixture(scope="session")
def speech_mp3(speech: SpeechTrack, media_dir: Path) -> Media:
    return as_mp3(speech, media_dir / "speech.mp3")


@pytest.fixture(scope="session")
def speech_video(speech: SpeechTrack, media_dir: Path) -> Media:
    return as_video(speech, media_dir / "speech.mp4")


def generate(user: ApiUser, asset_id: str, language: str = "en-US", expect: int = 202,
             **extra: Any) -> dict[str, Any]:
    answer: dict[str, Any] = user.call("POST", "/api/v1/media/ai/generate-caption", expect=expect,
                                       json={"assetId": asset_id, "language": language, **extra})
    return answer["data"] if "data" in answer else answer


def caption_state(user: ApiUser, asset_id: str, language: str) -> dict[str, Any]:
    """The track's state as a repeated request answers it (also what a client polls)."""
    asset = user.get(asset_id)
    generated = [c for c in asset["captions"] if c["source"] == "generated"
                 and c["language"] == language]
    return {"asset": asset, "track": generated[0] if generated else None}


def wait_track(user: ApiUser, asset_id: str, language: str = "en-US",
               timeout: float = 300) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        state = caption_state(user, asset_id, language)
        return state["track"]  # type: ignore[no-any-return]

    track: dict[str, Any] = eventually(done, f"{language} captions of {asset_id}",
                                       timeout=timeout, interval=1.0)
    return track


def cues(url: str) -> list[webvtt.Caption]:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.text.startswith("WEBVTT")
    return list(webvtt.from_string(response.text).captions)


def seconds(timestamp: str) -> float:
    """A WebVTT timestamp in seconds, milliseconds included (webvtt-py rounds them off)."""
    hours, minutes, rest = timestamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def check_accuracy(speech: SpeechTrack, track_cues: list[webvtt.Caption], what: str) -> None:
    said = " ".join(c.text for c in track_cues)
    wer = word_error_rate(speech.text, said)
    starts = [seconds(c.start) for c in track_cues]
    errors = [min(abs(s - placed.start) for s in starts) for placed in speech.placed]
    print(f"\n{what}: WER {wer:.3f} over {len(speech.text.split())} words; cue start error "
          f"max {max(errors):.3f} s, mean {sum(errors) / len(errors):.3f} s")
    assert wer <= MAX_WER, f"WER {wer:.3f}: {said!r}"
    for placed, error in zip(speech.placed, errors, strict=True):
        assert error <= MAX_START_ERROR, f"{placed.text!r} placed at {placed.start} s: " \
            f"nearest cue start is {error:.2f} s away ({starts})"
    ends = [seconds(c.end) for c in track_cues]
    assert ends[-1] <= speech.duration + 0.01 and all(
        a <= b for a, b in zip(starts, starts[1:], strict=False)), "cues in order, in the track"


def test_captions_of_an_audio_upload_match_what_was_said(alice: ApiUser, speech: SpeechTrack,
                                                         speech_mp3: Media,
                                                         assets: Assets) -> None:
    asset_id = alice.upload(speech_mp3)
    alice.wait_status(asset_id, "ready")
    first = generate(alice, asset_id)
    assert first["state"] in ("pending", "running") and first["language"] == "en-US"
    assert first["model"] == "whisper-base"

    track = wait_track(alice, asset_id)
    assert track["approved"] is True and track["model"] == "whisper-base"
    check_accuracy(speech, cues(track["url"]), "audio (MP3)")

    # The contract's transcript: a signed link (15 minutes) and the text.
    transcript = alice.call("GET", f"/api/v1/media/{asset_id}/transcript",
                            params={"lang": "en-US"})["data"]
    assert word_error_rate(speech.text, transcript["text"]) <= MAX_WER
    assert httpx.get(transcript["url"], timeout=30).text == transcript["text"]
    segments = httpx.get(transcript["segmentsUrl"], timeout=30).json()
    assert segments["language"] == "en-US" and segments["detectedLanguage"] == "en"
    assert abs(segments["durationSeconds"] - speech.duration) < 0.1
    assert "X-Amz-Expires=900" in transcript["url"]
    asset = alice.get(asset_id)
    assert asset["transcript"]["language"] == "en-US"

    # Status, conditions and events on the MediaAsset (what kubectl describe shows).
    body = assets.get(alice.tenant, names.name_from_asset_id(asset_id))
    assert body is not None
    assert condition(body, "CaptionsReady") == "True"
    assert condition(body, "CaptionsGenerating") == "False"
    assert condition(body, "CaptionsFailed") == "False"
    (job,) = body["status"]["captionJobs"]
    assert (job["state"], job["chunks"], job["chunksDone"]) == ("succeeded", 2, 2)
    reasons = {r for r, _ in assets.events(alice.tenant, body["metadata"]["name"])}
    assert {"CaptionsGenerating", "CaptionsReady"} <= reasons
    # Two chunks: a plan Job cut the track at a silence, an Indexed Job transcribed both.
    (tj,) = [t for t in assets.transcode_jobs(alice.tenant, body["metadata"]["name"])
             if t["spec"]["task"] == "caption"]
    assert tj["status"]["phase"] == "Succeeded" and len(tj["status"]["speech"]["cuts"]) == 1
    jobs = {j.metadata.name: j for j in assets.jobs(alice.tenant, body["metadata"]["name"])}
    indexed = jobs[tj["metadata"]["name"]]
    assert indexed.spec.completion_mode == "Indexed" and indexed.spec.completions == 2
    assert tj["metadata"]["name"] + "-plan" in jobs

    # A repeat is the same piece of work.
    again = generate(alice, asset_id)
    assert again["state"] == "succeeded" and again["url"]
    assert len([t for t in assets.transcode_jobs(alice.tenant, body["metadata"]["name"])
                if t["spec"]["task"] == "caption"]) == 1


def test_captions_of_a_video_audio_track_match_what_was_said(alice: ApiUser,
                                                             speech: SpeechTrack,
                                                             speech_video: Media) -> None:
    asset_id = alice.upload(speech_video)
    alice.wait_status(asset_id, "ready")
    generate(alice, asset_id, "en")
    track = wait_track(alice, asset_id, "en")
    check_accuracy(speech, cues(track["url"]), "video (MP4, AAC track)")
