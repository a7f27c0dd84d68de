"""What a video's probe pod makes besides its verdict: the copy of the audio, and the lowest
rung, whose encode runs while the probe checks the source.

A pod of its own for the lowest rung cost an interpreter's start and a Job's and a pod's
objects, on the two cores the rung's ffmpeg needs. Nothing made here is uploaded before the
source is accepted: a refused source stops the encode, and its files go with the scratch.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from mediaplane.core.ladder import audio_beside_probe, rung_beside_probe
from mediaplane.core.tasks import VariantType
from mediaplane.worker import segmentstream
from mediaplane.worker.errors import InfraError

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

    from mediaplane.core.manifests import dash, hls
    from mediaplane.core.tasks import ProbeResult, SharedOutput, VariantOutput, WorkerTask
    from mediaplane.worker.launch import Launched

log = logging.getLogger(__name__)


class RungEncode:
    """The rung's ffmpeg on a thread of its own (adopted from the pod's launch, or started
    here), so the probe's download and ffprobe run beside it. `stop` kills it at any point,
    even before it has started."""

    def __init__(self, task: WorkerTask, shared: SharedOutput, out_dir: Path,
                 launched: Launched | None) -> None:
        self.shared = shared
        self.out_dir = out_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self._lock = threading.Lock()
        self._made: tuple[hls.MediaPlaylist, dash.Representation] | None = None
        self._error: InfraError | None = None
        self._stream: segmentstream.SegmentStream | None = None
        self._thread = threading.Thread(target=self._encode, args=(task, launched),
                                         name=f"encode-{shared.variant.name}", daemon=True)
        self._thread.start()

    def _started(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._proc = proc
            if self._stopped:
                proc.kill()

    def _encode(self, task: WorkerTask, launched: Launched | None) -> None:
        from mediaplane.worker.transcode import encode

        try:
            self._made = encode(task, self.shared.variant, self.out_dir, launched=launched,
                                started=self._started)
        except InfraError as exc:
            self._error = exc

    def stop(self) -> None:
        """Kills the encode (if it still runs) and waits for its thread."""
        with self._lock:
            self._stopped = True
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
                log.info("stopped the %s encode before its end", self.shared.variant.name)
        self._thread.join()
        segmentstream.finish(self._stream)

    def accepted(self, *, stream: bool) -> None:
        """The source is accepted: the segments written so far, and those to come, may be
        stored while the encode goes on (`segmentstream`), when the task says so."""
        self._stream = segmentstream.start(
            [segmentstream.Target(self.shared.output, self.out_dir)], enabled=stream)

    def publish(self) -> VariantOutput | None:
        """Waits for the encode and uploads the rendition; None if ffmpeg failed (the
        operator then gives the rung a pod of its own)."""
        from mediaplane.worker.transcode import publish

        self._thread.join()
        streamed = segmentstream.finish(self._stream)
        if self._made is None:
            log.warning("%s beside the probe failed: %s", self.shared.variant.name,
                        self._error)
            return None
        playlist, rep = self._made
        return publish(self.shared.variant, self.shared.output, self.out_dir, playlist, rep,
                       streamed.get(self.out_dir))


def start_rung(task: WorkerTask, scratch: Path, launched: Launched | None) -> RungEncode | None:
    """Starts the rung the probe's task names (`commands.probe_rung`), or adopts it."""
    from mediaplane.core import commands

    rung = commands.probe_rung(task)
    shared = next((s for s in task.also or [] if s.variant == rung), None)
    if shared is None:
        return None
    out_dir = scratch / commands.OUT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    return RungEncode(task, shared, out_dir, launched)


def made_beside(task: WorkerTask, probe: ProbeResult, scratch: Path,
                rung: RungEncode | None, source: Path) -> list[VariantOutput]:
    """What the operator asked this pod to make once the source is accepted, where this
    source allows it: the audio copied (`ladder.audio_beside_probe`), then the rung, whose
    encode ran meanwhile (`ladder.rung_beside_probe`) and whose segments are stored from
    the verdict on. One that fails, or that this source does not allow, is left out: the
    operator then gives it a pod of its own.

    The audio is copied from `source`, the copy the probe downloaded and checked: no second
    download of the whole source from storage, and exactly the bytes that were judged."""
    from mediaplane.worker.transcode import rendition

    if rung is not None:
        limit = rung.shared.max_source_seconds
        if rung_beside_probe(rung.shared.variant, probe,
                             float("inf") if limit is None else limit):
            rung.accepted(stream=task.stream_segments)
        else:
            log.info("%s is not kept for this source: stopped", rung.shared.variant.name)
            rung.stop()
            rung = None
    made = []
    for shared in task.also or []:
        if shared.variant.type is not VariantType.AUDIO or not audio_beside_probe(
                shared.variant, probe):
            continue
        out_dir = scratch / f"beside-{shared.variant.name}"
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            made.append(rendition(task, shared.variant, shared.output, out_dir,
                                  local_source=source))
        except InfraError as exc:
            log.warning("%s beside the probe failed: %s", shared.variant.name, exc)
    if rung is None:
        return made
    try:
        output = rung.publish()
    except InfraError as exc:
        log.warning("%s beside the probe failed to upload: %s", rung.shared.variant.name, exc)
        return made
    return [*made, output] if output is not None else made
