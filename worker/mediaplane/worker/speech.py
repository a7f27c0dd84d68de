"""Speech to text in a caption job's pods: plan the chunks, or transcribe one chunk.

The plan pod decodes the audio once with ffmpeg's silencedetect and places the cuts between
chunks in pauses (so no word is cut in two). Each pod of the Indexed Job takes its own
chunk (`JOB_COMPLETION_INDEX`), decodes just that range with ffmpeg (the same demuxer and
protocol allow-lists as every other input: faster-whisper's own decoder never sees the
hostile file), and transcribes it with faster-whisper on the model directory mounted into
the pod. The transcript goes to storage as JSON through the job's presigned POST, timed on
the whole track, for the operator to merge.

Cue starts: Whisper's word timings run a few tenths of a second early or late, so each cue
starts where the voice-activity detector (Silero, shipped with faster-whisper) hears speech
begin, when such an onset lies between shortly before the first word and that word's end.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediaplane.core import commands
from mediaplane.core.speech import (
    ENGLISH,
    ChunkTranscript,
    Cue,
    chunk_bounds,
    chunk_file,
    place_cuts,
)
from mediaplane.core.tasks import (
    COMPLETION_INDEX_ENV,
    SPEECH_MODEL_ENV,
    SpeechChunkOutcome,
    SpeechPlanOutcome,
    SpeechTask,
    TaskType,
)
from mediaplane.worker import process
from mediaplane.worker.errors import (
    EXIT_INVALID_TASK,
    EXIT_LANGUAGE,
    EXIT_TRANSCODE,
    InfraError,
)
from mediaplane.worker.upload import upload_all

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from faster_whisper import WhisperModel

    from mediaplane.core.tasks import WorkerTask

log = logging.getLogger(__name__)

PLAN_TIMEOUT = 3600.0
DECODE_TIMEOUT = 1800.0
INPUT_ERRORS = ("Stream ends prematurely", "Input/output error", "Server returned",
                "Connection reset", "Connection refused", "Connection timed out",
                "Operation timed out")
# Detection this sure of another language than the requested one is a mismatch.
MISMATCH_CONFIDENCE = 0.5
# Onsets: speech probability from Silero, kept tight (no padding) to find where words begin.
ONSET_SILENCE_MS = 250
ONSET_PAD_MS = 30
ONSET_BEFORE = 0.6  # seconds before Whisper's first word an onset may be
# Long cues are split at word boundaries (captions are read, not scrolled).
MAX_CUE_SECONDS = 7.0
MAX_CUE_CHARS = 84


def _invalid(message: str) -> InfraError:
    return InfraError("InvalidTask", message, exit_code=EXIT_INVALID_TASK)


def _failed(what: str, done: process.Completed) -> InfraError:
    status = ("timed out" if done.timed_out else f"input error {done.flagged!r}"
              if done.flagged else f"exit {done.returncode}")
    return InfraError("TranscodeFailed", f"{what} ({status}): {done.stderr_tail[-400:]}",
                      exit_code=EXIT_TRANSCODE)


def _speech(task: WorkerTask) -> SpeechTask:
    if task.speech is None:
        raise _invalid(f"a {task.type} task needs `speech`")
    return task.speech


# --- the plan ---------------------------------------------------------------------------------

def parse_silences(report: str, duration: float) -> list[tuple[float, float]]:
    """(start, end) of each silence in an ametadata report of silencedetect; a silence still
    open at the end of the track ends with it."""
    silences: list[tuple[float, float]] = []
    start: float | None = None
    for line in report.splitlines():
        key, _, value = line.partition("=")
        if key == "lavfi.silence_start":
            start = max(0.0, float(value))
        elif key == "lavfi.silence_end" and start is not None:
            silences.append((start, float(value)))
            start = None
    if start is not None and start < duration:
        silences.append((start, duration))
    return silences


def run_plan(task: WorkerTask, scratch: Path) -> SpeechPlanOutcome:
    speech = _speech(task)
    report = scratch / "silences.txt"
    report.touch()
    done = process.run(commands.silence_command(task.input_url, report), timeout=PLAN_TIMEOUT,
                       workdir=str(scratch), watch=INPUT_ERRORS)
    if not done.ok:
        raise _failed("silence detection failed", done)
    silences = parse_silences(report.read_text(), speech.duration_seconds)
    cuts = place_cuts(speech.duration_seconds, speech.chunks, silences)
    log.info("%d silences, %d chunks", len(silences), len(cuts) + 1)
    return SpeechPlanOutcome(duration_seconds=speech.duration_seconds, cuts=cuts,
                             silences=len(silences))


# --- one chunk --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...]


def snap_start(first: Word, onsets: Sequence[float], floor: float) -> float:
    """Where the cue starts: the speech onset nearest to the first word's start, if one lies
    in [start - ONSET_BEFORE, the word's end), else the word's start; never before `floor`
    (the end of the previous cue)."""
    near = [o for o in onsets if first.start - ONSET_BEFORE <= o < first.end]
    start = min(near, key=lambda o: abs(o - first.start)) if near else first.start
    return max(start, floor)


def split_words(words: Sequence[Word]) -> list[list[Word]]:
    """Words grouped into cues no longer than MAX_CUE_SECONDS or MAX_CUE_CHARS, cut after
    punctuation where the group is long enough to need cutting."""
    groups: list[list[Word]] = [[]]
    for word in words:
        group = groups[-1]
        if group:
            chars = len("".join(w.text for w in group).strip()) + len(word.text)
            seconds = word.end - group[0].start
            ends_phrase = group[-1].text.rstrip()[-1:] in ".?!,;:"
            if chars > MAX_CUE_CHARS or seconds > MAX_CUE_SECONDS or (
                    ends_phrase and (chars > MAX_CUE_CHARS / 2 or seconds > MAX_CUE_SECONDS / 2)):
                groups.append([])
        groups[-1].append(word)
    return [g for g in groups if g]


def cues_of(segments: Iterable[Segment], onsets: Sequence[float], offset: float,
            limit: float) -> list[Cue]:
    """The chunk's cues on the whole track's clock (`offset` is the chunk's start)."""
    cues: list[Cue] = []
    for segment in segments:
        groups = split_words(segment.words) if segment.words else []
        if not groups:
            text = segment.text.strip()
            if text:
                cues.append(Cue(start=round(offset + segment.start, 3),
                                end=round(offset + min(segment.end, limit), 3), text=text))
            continue
        for group in groups:
            floor = cues[-1].end - offset if cues else 0.0
            start = snap_start(group[0], onsets, floor)
            end = max(group[-1].end, start + 0.2)
            text = "".join(w.text for w in group).strip()
            if text:
                cues.append(Cue(start=round(offset + start, 3),
                                end=round(offset + min(end, limit), 3), text=text))
    return cues


def load_model(directory: str | None, threads: int) -> WhisperModel:
    """faster-whisper on a directory of the pod's file system, never anything else."""
    if not directory or not (Path(directory) / "model.bin").is_file():
        raise InfraError("ModelMissing", f"no CTranslate2 Whisper model at {directory!r} "
                         f"({SPEECH_MODEL_ENV}): mount one (see the chart's speech.model)",
                         exit_code=EXIT_INVALID_TASK)
    os.environ["HF_HUB_OFFLINE"] = "1"  # belt and braces: a local path never asks a hub
    from faster_whisper import WhisperModel

    return WhisperModel(directory, device="cpu", compute_type="int8", cpu_threads=threads,
                        local_files_only=True)


def _segments(raw: Iterable[Any]) -> list[Segment]:
    return [Segment(start=s.start, end=s.end, text=s.text,
                    words=tuple(Word(w.start, w.end, w.word) for w in (s.words or ())))
            for s in raw]


TRANSCRIBE_OPTIONS: dict[str, Any] = {
    "vad_filter": True,  # silence is skipped, not decoded (and not hallucinated over)
    "word_timestamps": True,
    "condition_on_previous_text": False,  # a chunk has no previous text anyway
}


def transcribe(model: WhisperModel, audio: Any, speech: SpeechTask
               ) -> tuple[list[Segment], str | None, float | None, str]:
    """(segments, detected language, its probability, task) for the requested language.

    Speech in the requested language is transcribed; speech in another language is
    translated when English was requested (the only language Whisper translates into), and
    refused otherwise (LanguageMismatch: retrying cannot help)."""
    wanted = speech.whisper_language
    options = {**TRANSCRIBE_OPTIONS, "beam_size": speech.beam_size}
    if not model.model.is_multilingual:
        if wanted != ENGLISH:
            raise InfraError("LanguageMismatch", f"the speech model is English-only; it "
                             f"cannot make {speech.language} captions", exit_code=EXIT_LANGUAGE)
        segments, info = model.transcribe(audio, language=ENGLISH, **options)
        return _segments(segments), ENGLISH, None, "transcribe"
    segments, info = model.transcribe(audio, language=None, **options)
    detected, probability = info.language, info.language_probability
    if detected == wanted or probability < MISMATCH_CONFIDENCE:
        if detected != wanted:  # unsure: decode in the language asked for
            segments, info = model.transcribe(audio, language=wanted, **options)
        return _segments(segments), detected, probability, "transcribe"
    if wanted != ENGLISH:
        raise InfraError("LanguageMismatch", f"the speech is in {detected!r} (p={probability:.2f}),"
                         f" not {speech.language}: Whisper translates into English only",
                         exit_code=EXIT_LANGUAGE)
    log.info("speech in %s: translating into English", detected)
    segments, info = model.transcribe(audio, language=detected, task="translate", **options)
    return _segments(segments), detected, probability, "translate"


def _index(environ: Mapping[str, str], chunks: int) -> int:
    raw = environ.get(COMPLETION_INDEX_ENV, "")
    if not raw.isdigit() or int(raw) >= chunks:
        raise _invalid(f"{COMPLETION_INDEX_ENV}={raw!r} is not a chunk of {chunks}")
    return int(raw)


def decode(task: WorkerTask, start: float, seconds: float, scratch: Path) -> Any:
    import numpy as np

    pcm = scratch / "chunk.pcm"
    done = process.run(commands.speech_pcm_command(task.input_url, start, seconds, pcm),
                       timeout=DECODE_TIMEOUT, workdir=str(scratch), watch=INPUT_ERRORS)
    if not done.ok or not pcm.is_file():
        raise _failed("decoding the chunk failed", done)
    return np.fromfile(pcm, dtype=np.int16).astype(np.float32) / 32768.0


def speech_onsets(audio: Any) -> list[float]:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    spans = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=ONSET_SILENCE_MS,
                                                    speech_pad_ms=ONSET_PAD_MS))
    return [span["start"] / commands.SPEECH_RATE for span in spans]


def run_chunk(task: WorkerTask, scratch: Path, environ: Mapping[str, str]) -> SpeechChunkOutcome:
    speech, post = _speech(task), task.output
    if post is None:
        raise _invalid("a speech-chunk task needs `output`")
    index = _index(environ, max(speech.chunks, len(speech.cuts) + 1))
    start, end = chunk_bounds(speech.duration_seconds, speech.cuts)[index]
    started = time.monotonic()
    audio = decode(task, start, end - start, scratch)
    onsets = speech_onsets(audio)
    cues: list[Cue] = []
    detected: str | None = None
    probability: float | None = None
    mode = "transcribe"
    if onsets:  # a chunk without speech has nothing to say (and no language to detect)
        model = load_model(environ.get(SPEECH_MODEL_ENV), speech.cpu_threads)
        segments, detected, probability, mode = transcribe(model, audio, speech)
        cues = cues_of(segments, onsets, start, end - start)
    seconds = round(time.monotonic() - started, 2)
    log.info("chunk %d [%.1f, %.1f]: %d cues (%s, %s) in %.1f s", index, start, end, len(cues),
             detected, mode, seconds)
    name = chunk_file(index)
    out_dir = scratch / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    transcript = ChunkTranscript(index=index, start=start, end=end, language=detected,
                                 language_probability=probability,
                                 task="translate" if mode == "translate" else "transcribe",
                                 cues=cues)
    (out_dir / name).write_text(transcript.model_dump_json())
    upload_all(post, out_dir, [name])
    return SpeechChunkOutcome(index=index, file=name, cues=len(cues), language=detected,
                              translated=mode == "translate", seconds=seconds)


def run_speech(task: WorkerTask, scratch: Path,
               environ: Mapping[str, str]) -> SpeechPlanOutcome | SpeechChunkOutcome:
    if task.type is TaskType.SPEECH_PLAN:
        return run_plan(task, scratch)
    return run_chunk(task, scratch, environ)
