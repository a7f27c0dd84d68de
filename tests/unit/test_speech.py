"""Speech to text, the pure parts: languages, chunking, cut placement, cue timing, merge,
the caption Jobs' manifests, and the caption status rules (auto-captions, review)."""

from __future__ import annotations

import json

import pytest

from mediaplane.core import commands, keys, names
from mediaplane.core.resources import (
    AutoCaptions,
    CaptionRequest,
    MediaAsset,
    TranscodeJob,
    TranscodeJobStatus,
)
from mediaplane.core.speech import (
    WHISPER_LANGUAGES,
    ChunkTranscript,
    Cue,
    LanguageError,
    chunk_bounds,
    chunk_count,
    merge,
    normalise_tag,
    place_cuts,
    whisper_language,
)
from mediaplane.core.states import (
    AssetCondition,
    AssetPhase,
    CaptionReview,
    ConditionStatus,
    TranscodePhase,
    VariantState,
)
from mediaplane.core.tasks import MediaKind, ProbeResult, TaskType, WorkerTask
from mediaplane.operator import captionjobs, captions, captionstatus
from mediaplane.operator.settings import OperatorSettings
from mediaplane.worker.speech import Segment as Seg
from mediaplane.worker.speech import Word, cues_of, parse_silences, snap_start, split_words

TENANT, ASSET_ID = "acme", "mda_0123456789abcdefghjkmnpqrs"
NOW = "2026-12-02T00:00:00Z"


# --- languages --------------------------------------------------------------------------------

def test_the_language_list_is_whisper_s_own() -> None:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    assert frozenset(_LANGUAGE_CODES) == WHISPER_LANGUAGES


@pytest.mark.parametrize(("tag", "canonical", "code"), [
    ("en-US", "en-US", "en"), ("en-us", "en-US", "en"), ("EN", "en", "en"), ("iw", "he", "he"),
    ("zh-Hant-TW", "zh-Hant-TW", "zh"), ("jv", "jv", "jw"), ("nb-NO", "nb-NO", "no"),
    ("yue", "yue", "yue"),
])
def test_tags_are_normalised_and_mapped_to_whisper(tag: str, canonical: str, code: str) -> None:
    assert normalise_tag(tag) == canonical
    assert whisper_language(tag) == code


@pytest.mark.parametrize("tag", ["", "english", "xx", "zz-ZZ", "en US", "x" * 40, "tlh", "und"])
def test_invalid_or_unknown_languages_are_refused(tag: str) -> None:
    with pytest.raises(LanguageError):
        whisper_language(tag)


# --- chunking ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("duration", "parallelism", "expected"), [
    (20, 4, 1),        # shorter than a minimum chunk
    (45, 2, 2),        # the tests' track: two chunks (30 s is the shortest)
    (600, 1, 1),       # one worker, one chunk of 10 min
    (601, 1, 2),       # past the longest chunk
    (600, 2, 2),
    (3600, 4, 8),      # two balanced rounds of 7.5 min
    (3600, 8, 8),
    (3600, 20, 20),    # one round of 3 min
    (3600, 200, 120),  # never under 30 s a chunk
    (0, 4, 1),
])
def test_chunk_count_follows_duration_and_parallelism(duration: float, parallelism: int,
                                                      expected: int) -> None:
    assert chunk_count(duration, parallelism, 30, 600) == expected


def test_cuts_go_to_the_middle_of_the_nearest_silence() -> None:
    silences = [(9.0, 9.4), (14.2, 15.0), (31.0, 31.5)]
    assert place_cuts(30.0, 2, silences) == [14.6]  # ideal 15, within 3.75 s
    assert place_cuts(30.0, 2, [(1.0, 2.0)]) == [15.0]  # nothing near: the even split
    cuts = place_cuts(100.0, 4, [(24.0, 26.0), (49.0, 51.0), (74.5, 75.5)])
    assert cuts == [25.0, 50.0, 75.0]
    assert chunk_bounds(100.0, cuts) == [(0.0, 25.0), (25.0, 50.0), (50.0, 75.0), (75.0, 100.0)]
    assert place_cuts(30.0, 1, silences) == []


def test_silences_are_read_from_the_ametadata_report() -> None:
    report = ("frame:0    pts:0       pts_time:0\nlavfi.silence_start=0\n"
              "frame:40   pts:20480   pts_time:1.28\nlavfi.silence_end=1.28\n"
              "lavfi.silence_duration=1.28\nframe:90 pts:1 pts_time:3.1\n"
              "lavfi.silence_start=3.1\n")
    assert parse_silences(report, 5.0) == [(0.0, 1.28), (3.1, 5.0)]


# --- cue timing and the merge -----------------------------------------------------------------

def test_a_cue_starts_where_speech_begins_when_an_onset_is_near_the_first_word() -> None:
    word = Word(start=4.55, end=4.9, text=" Please")
    assert snap_start(word, [0.77, 4.9, 9.03], floor=0.0) == 4.55  # 4.9: after the word ended
    assert snap_start(word, [0.77, 4.84, 9.03], floor=0.0) == 4.84
    assert snap_start(word, [0.77, 9.03], floor=0.0) == 4.55  # none near: Whisper's start
    assert snap_start(word, [4.1], floor=4.3) == 4.3  # never before the previous cue's end


def test_long_segments_are_split_into_readable_cues() -> None:
    words = [Word(i * 0.5, i * 0.5 + 0.4, f" word{i}" + ("." if i == 9 else ""))
             for i in range(30)]
    groups = split_words(words)
    assert sum(len(g) for g in groups) == 30
    assert all(g[-1].end - g[0].start <= 7.0 for g in groups)
    assert groups[0][-1].text.endswith(".")  # cut after the sentence once long enough


def test_chunk_cues_are_on_the_track_s_clock() -> None:
    segment = Seg(start=0.4, end=3.2, text=" Hello there.",
                  words=(Word(0.4, 0.9, " Hello"), Word(1.0, 3.2, " there.")))
    (cue,) = cues_of([segment], onsets=[0.62], offset=100.0, limit=30.0)
    assert (cue.start, cue.end, cue.text) == (100.62, 103.2, "Hello there.")


def test_merge_orders_chunks_clips_to_each_chunk_and_drops_empty_cues() -> None:
    first = ChunkTranscript(index=0, start=0, end=10, language="en", cues=[
        Cue(start=1, end=4, text="One."), Cue(start=8, end=11, text="Two spills over.")])
    second = ChunkTranscript(index=1, start=10, end=20, language="en", cues=[
        Cue(start=10.5, end=12, text="  Three.  "), Cue(start=15, end=16, text="   ")])
    merged = merge([second, first], language="en-US", model="whisper-base", duration=20)
    assert [(c.start, c.end, c.text) for c in merged.cues] == [
        (1, 4, "One."), (8, 10, "Two spills over."), (10.5, 12, "Three.")]
    assert merged.detected_language == "en"
    assert merged.text == "One.\n\nTwo spills over. Three.\n"
    assert merged.words == 5


def test_webvtt_of_a_transcript_escapes_cue_text() -> None:
    transcript = merge([ChunkTranscript(index=0, start=0, end=4000, cues=[
        Cue(start=1.25, end=3661.5, text="a < b & c")])], language="en", model="m",
        duration=4000)
    text = captions.webvtt_text(transcript)
    assert text.startswith("WEBVTT")
    assert "00:00:01.250 --> 01:01:01.500" in text
    assert "a &lt; b &amp; c" in text


# --- the Jobs ---------------------------------------------------------------------------------

def playable_audio(**spec: object) -> MediaAsset:
    asset = MediaAsset.new(TENANT, ASSET_ID, kind=MediaKind.AUDIO, mime="audio/mpeg",
                           sha256="a" * 64, size_bytes=100)
    asset.metadata.uid = "uid-1"
    for field, value in spec.items():
        setattr(asset.spec, field, value)
    asset.status.phase, asset.status.playable = AssetPhase.READY, True
    asset.status.probe = ProbeResult(detected_mime="audio/mpeg", format_name="mp3",
                                     duration_seconds=3600.0, has_audio=True)
    return asset


def caption_tj(settings: OperatorSettings) -> TranscodeJob:
    tj = captionjobs.caption_transcode_job(playable_audio(), "en-US", "en", "whisper-base",
                                           settings)
    tj.metadata.uid = "uid-2"
    return tj


def test_a_caption_job_is_named_after_language_and_model_within_pod_name_limits() -> None:
    name = captionjobs.caption_job_name("mda-0123456789abcdefghjkmnpqrs", "zh-Hant-TW-x-private",
                                        "whisper-large-v3")
    assert len(name) <= 56, "room for -plan and for an Indexed pod's -<index> hostname"
    assert name != captionjobs.caption_job_name("mda-0123456789abcdefghjkmnpqrs",
                                                "zh-Hant-TW-x-private", "whisper-base")
    tj = caption_tj(OperatorSettings(caption_parallelism=4))
    assert tj.spec.task is TaskType.CAPTION
    assert tj.spec.caption is not None
    assert (tj.spec.caption.chunks, tj.spec.caption.parallelism) == (8, 4)
    assert tj.spec.output_prefix == keys.speech_prefix(TENANT, ASSET_ID, tj.name)


def test_the_transcription_job_is_indexed_retried_per_chunk_and_mounts_the_model() -> None:
    settings = OperatorSettings(
        caption_parallelism=4, caption_cpu_threads=2,
        speech_model_volume={"persistentVolumeClaim": {"claimName": "whisper", "readOnly": True}})
    tj = caption_tj(settings)
    task = captionjobs.speech_task(tj, settings, captionjobs.TRANSCRIBE, "https://in",
                                   cuts=[450.0, 900.0])
    job = captionjobs.speech_job(tj, task, settings, captionjobs.TRANSCRIBE, chunks=3)
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 3, 3)
    assert spec["backoffLimitPerIndex"] == settings.job_backoff_limit
    assert "backoffLimit" not in spec
    assert spec["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [2, 6]
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MEDIAPLANE_SPEECH_MODEL_DIR"] == "/models/speech"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert WorkerTask.model_validate_json(env["MEDIAPLANE_TASK"]).speech is not None
    assert {"name": "speech-model", "mountPath": "/models/speech", "readOnly": True} in \
        container["volumeMounts"]
    assert {"name": "speech-model", "persistentVolumeClaim": {
        "claimName": "whisper", "readOnly": True}} in pod["volumes"]
    assert job["metadata"]["labels"][names.LABEL_STEP] == "transcribe"
    assert job["metadata"]["name"] == tj.name
    plan = captionjobs.speech_job(tj, captionjobs.speech_task(tj, settings, captionjobs.PLAN,
                                                              "https://in"),
                                  settings, captionjobs.PLAN)
    assert plan["metadata"]["name"] == tj.name + "-plan"
    assert "completionMode" not in plan["spec"]
    assert json.loads(plan["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"])[
        "type"] == "speech-plan"


def test_worker_commands_keep_the_allow_lists() -> None:
    from pathlib import Path

    for argv in (commands.silence_command("https://in", Path("/s/silences.txt")),
                 commands.speech_pcm_command("https://in", 12.5, 30.0, Path("/s/c.pcm"))):
        assert argv[argv.index("-protocol_whitelist") + 1] == "http,https,tcp,tls"
        assert "hls" not in argv[argv.index("-format_whitelist") + 1].split(",")
    pcm = commands.speech_pcm_command("https://in", 12.5, 30.0, Path("/s/c.pcm"))
    assert pcm.index("-ss") < pcm.index("-i"), "a ranged read of just this chunk"


# --- the caption status -----------------------------------------------------------------------

ANNOTATION, REVIEW = names.AUTO_CAPTIONS_ANNOTATION, names.AUTO_CAPTIONS_REVIEW_ANNOTATION


@pytest.mark.parametrize(("own", "annotations", "install", "expected"), [
    (None, {}, "off", None),
    (None, {}, "en", "en"),
    (None, {ANNOTATION: "fr-FR"}, "off", "fr-FR"),
    (None, {ANNOTATION: "off"}, "en", None),
    (None, {ANNOTATION: "true"}, "de", "de"),
    (AutoCaptions(enabled=False), {ANNOTATION: "fr"}, "en", None),
    (AutoCaptions(language="es"), {ANNOTATION: "fr"}, "en", "es"),
    (AutoCaptions(enabled=True), {}, "off", "en"),
])
def test_auto_captions_asset_over_tenant_over_install(own: AutoCaptions | None,
                                                       annotations: dict[str, str],
                                                       install: str,
                                                       expected: str | None) -> None:
    asset = playable_audio(auto_captions=own)
    setting = captionstatus.auto_setting(asset, annotations, install, False, ANNOTATION, REVIEW)
    assert setting.language == expected


def test_review_keeps_a_generated_track_unapproved_until_a_verdict() -> None:
    settings = OperatorSettings()
    asset = playable_audio(caption_requests={"en-us": CaptionRequest(review_required=True)})
    wanted = captionstatus.wanted_tracks(asset, settings.speech_model)
    assert [(w.language, w.whisper_language, w.review_required) for w in wanted] == [
        ("en-US", "en", True)]
    tj = caption_tj(settings)
    tj.status = TranscodeJobStatus(phase=TranscodePhase.SUCCEEDED)
    status = asset.status.model_copy(deep=True)
    events = captionstatus.apply(asset, wanted, {tj.name: tj}, status, NOW)
    (track,) = status.captions
    assert (track.language, track.approved) == ("en-US", False)
    assert status.is_true(AssetCondition.CAPTIONS_READY)
    assert not status.is_true(AssetCondition.CAPTIONS_GENERATING)
    assert [e.reason for e in events] == ["CaptionsReady"]
    assert status.transcripts[0].key == keys.transcript_key(TENANT, ASSET_ID, "en-US", "txt")

    reviewed = asset.model_copy(update={"status": status}, deep=True)
    reviewed.spec.caption_review = {"en-US": CaptionReview.APPROVED}
    assert [t.language for t in reviewed.caption_tracks()] == ["en-US"]
    again = status.model_copy(deep=True)
    events = captionstatus.apply(reviewed, wanted, {tj.name: tj}, again, NOW)
    assert again.captions[0].approved is True
    assert [e.reason for e in events] == ["CaptionApproved"]


def test_a_request_for_an_asset_without_audio_fails_with_a_reason() -> None:
    asset = playable_audio(caption_requests={"en": CaptionRequest()})
    assert asset.status.probe is not None
    asset.status.probe = asset.status.probe.model_copy(update={"has_audio": False})
    ready, why = captionstatus.can_caption(asset)
    assert not ready
    wanted = captionstatus.wanted_tracks(asset, "whisper-base")
    status = asset.status.model_copy(deep=True)
    captionstatus.apply(asset, wanted, {}, status, NOW, why)
    (job,) = status.caption_jobs
    assert (job.state, job.message) == (VariantState.FAILED, "the asset has no audio stream")
    failed = status.condition(AssetCondition.CAPTIONS_FAILED)
    assert failed is not None
    assert failed.status is ConditionStatus.TRUE
