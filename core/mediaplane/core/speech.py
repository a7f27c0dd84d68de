"""Speech to text, the parts every component shares: languages, chunking, chunk files, merge.

Pure functions. The API validates a requested language here, the operator decides how many
chunks a caption job has and merges what the chunk workers wrote, the worker places the
cuts at silences. Keeping them here makes the rules one rule and lets unit tests pin them.

Language: a caption request names a BCP 47 tag (`en-US`); Whisper knows languages by
their ISO 639 code (`en`), so a tag is supported when its language subtag is one Whisper
knows. Whisper transcribes speech in the language spoken; it can also *translate* speech
into English, and into no other language. So a request for English over speech in another
language gets an English translation, and a request for another language over speech that
is not in that language fails (`LanguageMismatch`) rather than produce a wrong track.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import langcodes
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# The languages of the Whisper models (faster_whisper.tokenizer._LANGUAGE_CODES; a unit test
# holds this copy to it, so the API, which does not carry faster-whisper, agrees with it).
WHISPER_LANGUAGES = frozenset({
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy",
    "da", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw",
    "he", "hi", "hr", "ht", "hu", "hy", "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn",
    "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt",
    "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si",
    "sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl",
    "tr", "tt", "uk", "ur", "uz", "vi", "yi", "yo", "yue", "zh",
})
# ISO 639 codes Whisper spells differently (Javanese) or folds into another (Bokmål).
_WHISPER_ALIASES = {"jv": "jw", "nb": "no"}
ENGLISH = "en"
MAX_TAG = 35


class LanguageError(ValueError):
    """The tag is not BCP 47, or names a language the speech model does not know."""


def normalise_tag(tag: str) -> str:
    """The canonical spelling of a BCP 47 tag (`en-us` → `en-US`, `iw` → `he`)."""
    if not tag or len(tag) > MAX_TAG or not langcodes.tag_is_valid(tag):
        raise LanguageError(f"{tag!r} is not a valid BCP 47 language tag")
    return str(langcodes.standardize_tag(tag))


def whisper_language(tag: str) -> str:
    """The Whisper language code of a BCP 47 tag; LanguageError if Whisper lacks it."""
    language = langcodes.Language.get(normalise_tag(tag)).language
    code = _WHISPER_ALIASES.get(language or "", language)
    if code not in WHISPER_LANGUAGES:
        raise LanguageError(f"{tag!r}: speech to text does not know this language")
    return str(code)


# --- chunking ------------------------------------------------------------------------------

def chunk_count(duration: float, parallelism: int, min_seconds: float,
                max_seconds: float) -> int:
    """How many chunks a track of `duration` seconds is cut into.

    As many as the workers that may run at once (`parallelism`), times as many rounds as
    keep each chunk under `max_seconds`, so the rounds stay balanced; never chunks shorter
    than `min_seconds` (a pod's start and model load would dominate them).
    """
    if duration <= 0:
        return 1
    parallelism = max(1, parallelism)
    rounds = math.ceil(duration / (parallelism * max_seconds))
    return max(1, min(parallelism * rounds, math.ceil(duration / min_seconds)))


def place_cuts(duration: float, chunks: int, silences: Sequence[tuple[float, float]],
               window: float | None = None) -> list[float]:
    """`chunks - 1` cut points, each in the middle of the silence nearest to an even split
    (within `window` seconds of it, a quarter of a chunk by default), else at the even
    split itself. Cuts always increase and keep at least a second between them."""
    if chunks <= 1 or duration <= 0:
        return []
    step = duration / chunks
    reach = step / 4 if window is None else window
    cuts: list[float] = []
    for k in range(1, chunks):
        ideal = k * step
        best: float | None = None
        for start, end in silences:
            middle = (start + end) / 2
            if abs(middle - ideal) <= reach and (best is None or
                                                 abs(middle - ideal) < abs(best - ideal)):
                best = middle
        cut = round(best if best is not None else ideal, 2)
        floor = (cuts[-1] if cuts else 0.0) + 1.0
        cuts.append(max(cut, floor))
    return [c for c in cuts if c < duration - 1.0]


def chunk_bounds(duration: float, cuts: Sequence[float]) -> list[tuple[float, float]]:
    """The (start, end) of each chunk from the cut points."""
    edges = [0.0, *cuts, duration]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


# --- what a chunk worker writes, and the merge --------------------------------------------

class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, alias_generator=to_camel,
                              populate_by_name=True, serialize_by_alias=True)


class Cue(_Wire):
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    text: str


class ChunkTranscript(_Wire):
    """One chunk's segments, timed on the whole track (absolute seconds)."""

    index: int = Field(ge=0)
    start: float
    end: float
    language: str | None = Field(default=None, description="detected in this chunk")
    language_probability: float | None = None
    task: Literal["transcribe", "translate"] = "transcribe"
    cues: list[Cue] = Field(default_factory=list)


def chunk_file(index: int) -> str:
    """The name a chunk worker uploads its transcript under (in the job's speech prefix)."""
    return f"chunk-{index:05d}.json"


class Transcript(_Wire):
    """The merged result: what the transcript JSON holds, and what the WebVTT is made of."""

    language: str
    detected_language: str | None = None
    translated: bool = False
    model: str
    duration_seconds: float
    cues: list[Cue]

    @property
    def text(self) -> str:
        """Plain text: cues joined by spaces, a paragraph where the speech pauses 2 s."""
        paragraphs: list[list[str]] = []
        last_end: float | None = None
        for cue in self.cues:
            if last_end is None or cue.start - last_end >= PARAGRAPH_PAUSE:
                paragraphs.append([])
            paragraphs[-1].append(cue.text)
            last_end = cue.end
        return "\n\n".join(" ".join(p) for p in paragraphs) + ("\n" if paragraphs else "")

    @property
    def words(self) -> int:
        return sum(len(cue.text.split()) for cue in self.cues)


PARAGRAPH_PAUSE = 2.0


def dominant_language(chunks: Iterable[ChunkTranscript]) -> str | None:
    """The language detected over most of the speech (by cue duration)."""
    weights: dict[str, float] = {}
    for chunk in chunks:
        if chunk.language:
            spoken = sum(c.end - c.start for c in chunk.cues) or 0.001
            weights[chunk.language] = weights.get(chunk.language, 0.0) + spoken
    return max(weights, key=lambda k: weights[k]) if weights else None


def merge(chunks: Sequence[ChunkTranscript], *, language: str, model: str,
          duration: float) -> Transcript:
    """One transcript from the chunks, in time order: each cue kept inside its own chunk
    (a cue a chunk's model placed past its end is clipped there), empty cues dropped."""
    cues: list[Cue] = []
    for chunk in sorted(chunks, key=lambda c: c.index):
        for cue in sorted(chunk.cues, key=lambda c: c.start):
            text = " ".join(cue.text.split())
            start = max(cue.start, chunk.start, cues[-1].end if cues else 0.0)
            end = min(max(cue.end, start), chunk.end, duration)
            if text and end > start:
                cues.append(Cue(start=round(start, 3), end=round(end, 3), text=text))
    return Transcript(language=language, detected_language=dominant_language(chunks),
                      translated=any(c.task == "translate" for c in chunks), model=model,
                      duration_seconds=duration, cues=cues)
