"""Raw faster-whisper on a file, as a user would run it without mediaplane: one process that
loads the model, decodes the file and transcribes it with the options the caption workers
use. `bench.captions` times it from the outside (process start to exit) and reads the
transcript it prints as JSON.

    .venv/bin/python -m bench.rawwhisper FILE --model DIR --threads N [--beam B]
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--beam", type=int, default=5)
    args = parser.parse_args()
    started = time.monotonic()
    from faster_whisper import WhisperModel

    from mediaplane.worker.speech import TRANSCRIBE_OPTIONS

    model = WhisperModel(args.model, device="cpu", compute_type="int8",
                         cpu_threads=args.threads, local_files_only=True)
    loaded = time.monotonic()
    segments, info = model.transcribe(args.file, beam_size=args.beam, **TRANSCRIBE_OPTIONS)
    text = " ".join(s.text.strip() for s in segments)
    print(json.dumps({"text": text, "language": info.language, "load": loaded - started,
                      "transcribe": time.monotonic() - loaded, "audio": info.duration}))


if __name__ == "__main__":
    main()
