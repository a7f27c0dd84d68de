"""What a video's probe pod makes besides its verdict: the copy of the audio, and the lowest
rung, whose encode runs while the probe checks the source.

A pod of its own for the lowest rung cost an interpreter's start and a Job's and a pod's
objects, on the two cores the rung's ffmpeg needs. The rung's ffmpeg also copies the audio
when the task asks for a copy (`commands.rung_and_audio_command`): an ffmpeg of its own for
it cost 45 ms of CPU to start and a second read of the source, beside the rung's encode.
Nothing made here is uploaded before the source is accepted: a refused source stops the
encode, and its files go with the scratch.
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
    from mediaplane.worker import process
    from mediaplane.worker.launch import Launched

log = logging.getLogger(__name__)


class RungEncode:
    """The rung's ffmpeg on a thread of its own (adopted from the pod's launch, or started
    here), so the probe's download and ffprobe run beside it. `stop` kills it at any point,
    even before it has started."""

    def __init__(self, task: WorkerTask, shared: SharedOutput, out_dir: Path,
                 launched: Launched | None, audio: SharedOutput | None = None,
                 audio_dir: Path | None = None) -> None:
        self.shared = shared
        self.out_dir = out_dir
        self.audio = audio if audio_dir is not None else None
        self.audio_dir = audio_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self._lock = threading.Lock()
        self._made: tuple[hls.MediaPlaylist, dash.Representation] | None = None
        self._done: process.Completed | None = None
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
        from mediaplane.worker.transcode import encode, encode_with_audio

        try:
            if self.audio is not None and self.audio_dir is not None:
                self._made, self._done = encode_with_audio(
                    task, self.shared.variant, self.audio.variant, self.out_dir,
                    self.audio_dir, launched=launched, started=self._started)
            else:
                self._made = encode(task, self.shared.variant, self.out_dir,
                                    launched=launched, started=self._started)
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

    def accepted(self, *, stream: bool, audio: bool) -> None:
        """The source is accepted: the segments written so far, and those to come, may be
        stored while the encode goes on (`segmentstream`), when the task says so; the
        audio's too when `audio` (its copy is wanted)."""
        targets = [segmentstream.Target(self.shared.output, self.out_dir)]
        if audio and self.audio is not None and self.audio_dir is not None:
            targets.append(segmentstream.Target(self.audio.output, self.audio_dir,
                                                audio_only=True))
        self._stream = segmentstream.start(targets, enabled=stream)

    def publish(self, *, audio: bool) -> tuple[VariantOutput | None, VariantOutput | None]:
        """Waits for the encode and uploads the rendition, and the audio it copied when
        `audio`, both at once; None for one that failed (the operator then gives the rung
        a pod of its own; the caller copies the audio itself)."""
        from concurrent.futures import ThreadPoolExecutor

        from mediaplane.worker.transcode import copied_audio, publish

        self._thread.join()
        streamed = segmentstream.finish(self._stream)
        if self._made is None:
            log.warning("%s beside the probe failed: %s", self.shared.variant.name,
                        self._error)
            return None, None
        playlist, rep = self._made
        with ThreadPoolExecutor(max_workers=2) as pool:
            sound = None
            if audio and self.audio is not None and self.audio_dir is not None \
                    and self._done is not None:
                copied = copied_audio(self.audio_dir, self._done, playlist.duration)
                if copied is None:
                    log.warning("the audio copied beside the %s is not whole: copied again",
                                self.shared.variant.name)
                else:
                    sound = pool.submit(publish, self.audio.variant, self.audio.output,
                                        self.audio_dir, *copied, streamed.get(self.audio_dir))
            video = publish(self.shared.variant, self.shared.output, self.out_dir, playlist,
                            rep, streamed.get(self.out_dir))
            try:
                return video, sound.result() if sound is not None else None
            except InfraError as exc:  # the rung stands; the caller copies the audio again
                log.warning("the audio copied beside the %s failed to upload: %s",
                            self.shared.variant.name, exc)
                return video, None


def start_rung(task: WorkerTask, scratch: Path, launched: Launched | None) -> RungEncode | None:
    """Starts the rung the probe's task names (`commands.probe_rung`), or adopts it."""
    from mediaplane.core import commands

    rung = commands.probe_rung(task)
    shared = next((s for s in task.also or [] if s.variant == rung), None)
    if shared is None:
        return None
    out_dir = scratch / commands.OUT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    copy = commands.probe_audio_copy(task)
    audio = next((s for s in task.also or [] if s.variant == copy), None)
    if audio is None:
        return RungEncode(task, shared, out_dir, launched)
    audio_dir = scratch / commands.AUDIO_OUT_DIR
    audio_dir.mkdir(parents=True, exist_ok=True)
    return RungEncode(task, shared, out_dir, launched, audio, audio_dir)


def made_beside(task: WorkerTask, probe: ProbeResult, scratch: Path,
                rung: RungEncode | None, source: Path) -> list[VariantOutput]:
    """What the operator asked this pod to make once the source is accepted, where this
    source allows it: the audio copied (`ladder.audio_beside_probe`), then the rung, whose
    encode ran meanwhile (`ladder.rung_beside_probe`) and whose segments are stored from
    the verdict on. One that fails, or that this source does not allow, is left out: the
    operator then gives it a pod of its own.

    The rung's ffmpeg copied the audio as it encoded, when the task asked for a copy. Where
    that copy is not whole, or the rung is not kept, the audio is copied from `source`,
    the copy the probe downloaded and checked: no second download of the whole source
    from storage, and exactly the bytes that were judged."""
    if rung is not None:
        limit = rung.shared.max_source_seconds
        if rung_beside_probe(rung.shared.variant, probe,
                             float("inf") if limit is None else limit):
            with_rung = rung.audio is not None and audio_beside_probe(rung.audio.variant,
                                                                      probe)
            rung.accepted(stream=task.stream_segments, audio=with_rung)
        else:
            log.info("%s is not kept for this source: stopped", rung.shared.variant.name)
            rung.stop()
            rung = None
    wanted = [shared for shared in task.also or [] if shared.variant.type is VariantType.AUDIO
              and audio_beside_probe(shared.variant, probe)]
    made = [output for shared in wanted
            if rung is None or shared != rung.audio
            for output in _copied(task, shared, scratch, source)]
    if rung is None:
        return made
    try:
        video, audio = rung.publish(audio=rung.audio in wanted)
    except InfraError as exc:
        log.warning("%s beside the probe failed to upload: %s", rung.shared.variant.name, exc)
        video, audio = None, None
    if rung.audio in wanted:
        made += [audio] if audio is not None else _copied(task, rung.audio, scratch, source)
    return [*made, video] if video is not None else made


def _copied(task: WorkerTask, shared: SharedOutput | None, scratch: Path, source: Path
            ) -> list[VariantOutput]:
    """The audio rendition `shared`, copied from `source` by an ffmpeg of its own; nothing
    if that fails."""
    from mediaplane.worker.transcode import rendition

    if shared is None:
        return []
    out_dir = scratch / f"beside-{shared.variant.name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return [rendition(task, shared.variant, shared.output, out_dir, local_source=source)]
    except InfraError as exc:
        log.warning("%s beside the probe failed: %s", shared.variant.name, exc)
        return []
