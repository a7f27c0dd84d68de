"""Uploading a rendition's media segments while ffmpeg still writes the rendition.

The dash muxer writes each media segment under a temporary name and renames it once the
segment is whole (`commands.is_media_segment`), so a segment under its own name holds its
final bytes. Uploading those during the encode leaves only the last segment, the init
segment and the manifests for after ffmpeg's end: the upload that followed the encode,
on the path to playable and to complete, moves under it (a shared decode's rungs are tens
of files; a long video's, hundreds).

Nothing names these segments before the manifests, which `transcode.publish` uploads last,
after the rendition is proven whole. A pod that fails leaves segments no manifest names:
its retry writes the same names again, and the asset's deletion removes them. A pod whose
source is not accepted yet streams nothing: the operator does not ask a speculative
encode to (`WorkerTask.stream_segments`), and the probe's pod starts streaming its rung
only after its verdict (`beside`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediaplane.core.commands import is_media_segment
from mediaplane.worker.errors import InfraError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from mediaplane.core.tasks import PresignedPost

log = logging.getLogger(__name__)

# How often the directories are listed: a segment waits at most this long for its upload,
# and a listing of a few names costs microseconds.
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Target:
    """One rendition's directory and where its files go."""

    post: PresignedPost
    out_dir: Path
    audio_only: bool = False


class SegmentStream:
    """A thread that uploads each target's whole media segments as they appear, one at a
    time (a segment a second or so per rung is little traffic), until `finish`."""

    def __init__(self, targets: Sequence[Target]) -> None:
        self._targets = list(targets)
        self._sent: dict[Path, dict[str, int]] = {t.out_dir: {} for t in self._targets}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="segment-stream", daemon=True)
        self._thread.start()

    def _ready(self, target: Target) -> list[str]:
        try:
            names = [path.name for path in target.out_dir.iterdir()]
        except OSError:
            return []
        sent = self._sent[target.out_dir]
        return sorted(n for n in names if is_media_segment(n) and n not in sent)

    def _run(self) -> None:
        from mediaplane.worker.upload import client, post_one

        started = time.monotonic()
        try:
            with client(self._targets[0].post.url) as http:
                while not self._stop.wait(POLL_SECONDS):
                    for target in self._targets:
                        for name in self._ready(target):
                            if self._stop.is_set():
                                return
                            self._sent[target.out_dir][name] = post_one(
                                http, target.post, target.out_dir, name, target.audio_only)
        except (InfraError, OSError) as exc:
            # What was not sent is sent by `publish`, which fails the pod if S3 still
            # refuses it (or the file is gone: then the rendition is not whole either).
            log.warning("stopped uploading segments during the encode: %s", exc)
        finally:
            count = sum(len(sent) for sent in self._sent.values())
            if count:
                log.info("uploaded %d segments during the encode, in %.2f s", count,
                         time.monotonic() - started)

    def finish(self) -> dict[Path, dict[str, int]]:
        """Stops the uploads (the one under way completes); what each target's directory
        has stored: name → bytes."""
        self._stop.set()
        self._thread.join()
        return {out_dir: dict(sent) for out_dir, sent in self._sent.items()}


def start(targets: Sequence[Target], *, enabled: bool) -> SegmentStream | None:
    return SegmentStream(targets) if enabled and targets else None


def finish(stream: SegmentStream | None) -> dict[Path, dict[str, int]]:
    return stream.finish() if stream is not None else {}
