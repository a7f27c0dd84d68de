"""Producing one variant and publishing it: a CMAF rendition or a single still.

ffmpeg reads the presigned URL itself (ranged reads, no full copy on the scratch volume).
Success is judged from what ffmpeg wrote, not from its exit code alone.

A pod's start-up is on the path to playable, so ffmpeg starts as soon as the task is read:
what publishing needs (`upload`, and httpx with it) is imported while ffmpeg encodes, the
storyboard's WebVTT library only for a storyboard.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mediaplane.core import commands
from mediaplane.core.manifests import dash, hls
from mediaplane.core.tasks import (
    COMPLETION_INDEX_ENV,
    RenditionChunk,
    TaskType,
    VariantChunkOutcome,
    VariantOutcome,
    VariantOutput,
    VariantType,
)
from mediaplane.worker import process, segmentstream
from mediaplane.worker.errors import EXIT_INVALID_TASK, EXIT_TRANSCODE, InfraError
from mediaplane.worker.pictures import picture_size

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Mapping, Sequence
    from concurrent.futures import Future

    from mediaplane.core.tasks import PresignedPost, VariantSpec, WorkerTask
    from mediaplane.worker.launch import Launched

log = logging.getLogger(__name__)

RENDITION_TIMEOUT = 4 * 3600.0
STILL_TIMEOUT = 300.0
# ffmpeg can log these and still exit 0 with a truncated output: a retry is the answer.
INPUT_ERRORS = ("Stream ends prematurely", "Input/output error", "Server returned",
                "Connection reset", "Connection refused", "Connection timed out",
                "Operation timed out")


def _load_upload(endpoint: str) -> None:
    """Readies the uploader, httpx and the TLS context for `endpoint` (passed to
    `process.run` as work to do while ffmpeg runs). The source's URL stands for the
    endpoint: a task's source and outputs are on one S3."""
    from mediaplane.worker.upload import tls_context

    tls_context(endpoint)


def upload_all(post: PresignedPost, out_dir: Path, names: Sequence[str], *,
               audio_only: bool = False,
               before_manifests: Callable[[], None] | None = None) -> int:
    from mediaplane.worker.upload import upload_all as upload

    return upload(post, out_dir, names, audio_only=audio_only,
                  before_manifests=before_manifests)


def _failed(what: str, done: process.Completed | None = None) -> InfraError:
    detail = ""
    if done is not None:
        status = ("timed out" if done.timed_out else f"input error {done.flagged!r}"
                  if done.flagged else f"exit {done.returncode}")
        detail = f" ({status}): {done.stderr_tail[-400:]}"
    return InfraError("TranscodeFailed", what + detail, exit_code=EXIT_TRANSCODE)


def _invalid(message: str) -> InfraError:
    return InfraError("InvalidTask", message, exit_code=EXIT_INVALID_TASK)


def encode(task: WorkerTask, spec: VariantSpec, out_dir: Path,
           chunk: tuple[float, float | None] | None = None, launched: Launched | None = None,
           started: Callable[[subprocess.Popen[bytes]], None] | None = None,
           local_source: Path | None = None
           ) -> tuple[hls.MediaPlaylist, dash.Representation]:
    """Runs ffmpeg for a rendition (or one chunk of it), or waits for the same command
    `launched` before the task was read, and proves what it wrote. `started` is given the
    running ffmpeg (to stop it from another thread). An audio rendition reads
    `local_source` when given: the probe's pod's checked copy of the source."""
    try:
        if spec.type is VariantType.VIDEO:
            argv = commands.video_command(task.input_url, spec, out_dir, chunk)
        else:
            argv = commands.audio_command(local_source or task.input_url, spec, out_dir,
                                          chunk)
    except ValueError as exc:
        raise _invalid(str(exc)) from exc
    done = _run(argv, out_dir, f"{spec.name}{f' {chunk}' if chunk else ''}", task.input_url,
                launched, started)
    return _proven(out_dir, done)


def encode_with_audio(task: WorkerTask, rung: VariantSpec, audio: VariantSpec,
                      out_dir: Path, audio_dir: Path, launched: Launched | None = None,
                      started: Callable[[subprocess.Popen[bytes]], None] | None = None
                      ) -> tuple[tuple[hls.MediaPlaylist, dash.Representation],
                                 process.Completed]:
    """The probe's pod's first command when its task asks for the audio copied
    (`commands.rung_and_audio_command`): the rung, proven, and ffmpeg's account of the
    run, from which `copied_audio` judges the audio it wrote into `audio_dir`."""
    if audio_dir.parent != out_dir.parent:
        raise _invalid("the rung's and the audio's directories must share a parent")
    try:
        argv = commands.rung_and_audio_command(task.input_url, rung, audio,
                                               Path(out_dir.name), Path(audio_dir.name))
    except ValueError as exc:
        raise _invalid(str(exc)) from exc
    done = _run(argv, out_dir, f"{rung.name} and {audio.name}", task.input_url, launched,
                started, cwd=out_dir.parent)
    return _proven(out_dir, done), done


# How far the audio copied beside the rung may end from the rung's own end (both come from
# one read of the source; a copy cut short by a failed output ends earlier).
AUDIO_BESIDE_TOLERANCE_SECONDS = 0.5


def copied_audio(audio_dir: Path, done: process.Completed, duration: float
                 ) -> tuple[hls.MediaPlaylist, dash.Representation] | None:
    """The audio `encode_with_audio` copied, if it is whole; None otherwise (the source has
    no audio, fMP4 cannot hold it, or the tee muxer dropped that output midway and closed
    it early), and the caller copies the audio with a command of its own."""
    if "Slave muxer" in done.stderr_tail:
        return None
    try:
        playlist, rep = _proven(audio_dir, done)
    except InfraError:
        return None
    if abs(playlist.duration - duration) > AUDIO_BESIDE_TOLERANCE_SECONDS:
        return None
    return playlist, rep


def _run(argv: list[str], out_dir: Path, what: str, endpoint: str,
         launched: Launched | None = None,
         started: Callable[[subprocess.Popen[bytes]], None] | None = None,
         meanwhile: Callable[[str], None] = _load_upload, cwd: Path | None = None
         ) -> process.Completed:
    """`meanwhile(endpoint)`: what publishing needs, loaded while ffmpeg runs."""
    since = launched.started if launched is not None else time.monotonic()
    done = process.run(argv, timeout=RENDITION_TIMEOUT, workdir=str(out_dir.parent),
                       watch=INPUT_ERRORS, meanwhile=functools.partial(meanwhile, endpoint),
                       adopt=launched,
                       on_start=started, cwd=None if cwd is None else str(cwd))
    if not done.ok:
        raise _failed("ffmpeg failed", done)
    log.info("ffmpeg wrote %s in %.2f s", what, time.monotonic() - since)
    return done


def _proven(out_dir: Path, done: process.Completed
            ) -> tuple[hls.MediaPlaylist, dash.Representation]:
    """The rendition ffmpeg wrote in `out_dir`, once proven whole."""
    playlist_path = out_dir / commands.HLS_MEDIA_NAME
    mpd_path = out_dir / commands.MPD_NAME
    if not playlist_path.is_file() or not mpd_path.is_file():
        raise _failed("ffmpeg wrote no playlist or MPD", done)
    # ffmpeg can exit 0 after an input error with a truncated rendition, so the playlist is
    # the proof of success: it must end, name an init segment and at least one media
    # segment, and every file it names must exist.
    try:
        playlist = hls.parse_media_playlist(playlist_path.read_text())
        rep = dash.representation(mpd_path.read_text())
    except ValueError as exc:  # both parsers raise ManifestError, a ValueError
        raise _failed(f"unreadable manifest: {exc}", done) from exc
    missing = [n for n in playlist.files if not (out_dir / n).is_file()]
    if not playlist.ended or playlist.init is None or not playlist.segments or missing:
        raise _failed(f"incomplete rendition (ended={playlist.ended}, "
                      f"segments={len(playlist.segments)}, missing={missing[:3]})", done)
    return playlist, rep


def publish(spec: VariantSpec, post: PresignedPost, out_dir: Path,
            playlist: hls.MediaPlaylist, rep: dash.Representation,
            streamed: Mapping[str, int] | None = None,
            before_manifests: Callable[[], None] | None = None) -> VariantOutput:
    """Uploads a proven rendition under its prefix, but for the segments `streamed` during
    the encode (name → bytes stored); what the master playlists need of it.
    `before_manifests`: see `upload.upload_all`."""
    (out_dir / commands.HLS_MEDIA_NAME).write_text(playlist.render())
    sizes = {n: (out_dir / n).stat().st_size for n in playlist.files}
    peak = hls.peak_bandwidth(playlist.segments, sizes, spec.segment_seconds)
    names = [*playlist.files, commands.HLS_MEDIA_NAME, commands.MPD_NAME]
    stored = {n: size for n, size in (streamed or {}).items() if sizes.get(n) == size}
    sent = sum(stored.values()) + upload_all(
        post, out_dir, [n for n in names if n not in stored],
        audio_only=spec.type is VariantType.AUDIO, before_manifests=before_manifests)
    return VariantOutput(
        name=spec.name, files=len(names), bytes=sent,
        bandwidth=max(rep.bandwidth or 0, peak) or None,
        width=rep.width, height=rep.height, codecs=rep.codecs,
        duration_seconds=round(playlist.duration, 3),
        playlist=commands.HLS_MEDIA_NAME, mpd=commands.MPD_NAME,
    )


def rendition(task: WorkerTask, spec: VariantSpec, post: PresignedPost,
              out_dir: Path, launched: Launched | None = None,
              local_source: Path | None = None) -> VariantOutput:
    stream = segmentstream.start(
        [segmentstream.Target(post, out_dir, spec.type is VariantType.AUDIO)],
        enabled=task.stream_segments)
    try:
        playlist, rep = encode(task, spec, out_dir, launched=launched,
                               local_source=local_source)
    finally:
        streamed = segmentstream.finish(stream)
    return publish(spec, post, out_dir, playlist, rep, streamed.get(out_dir))


def shared_renditions(task: WorkerTask, rungs: Sequence[tuple[VariantSpec, PresignedPost]],
                      scratch: Path, launched: Launched | None = None) -> list[VariantOutput]:
    """Several video rungs and the storyboard from one ffmpeg
    (`commands.shared_video_command`), each proven and uploaded under its own prefix with
    its own policy. Their segments are uploaded as ffmpeg writes them (when the task says
    so), the rest once ffmpeg is done (`publish_shared`)."""
    dirs = [scratch / commands.shared_out_dir(index) for index in range(len(rungs))]
    for out_dir in dirs:
        out_dir.mkdir(parents=True, exist_ok=True)
    for spec, _ in rungs:
        if spec.type not in commands.SHAREABLE or spec.chunks is not None:
            raise _invalid(f"{spec.name} cannot share a decode (whole video rungs and the "
                           "storyboard can)")
    try:
        argv = commands.shared_video_command(
            task.input_url, [(spec, out_dir) for (spec, _), out_dir in zip(rungs, dirs,
                                                                            strict=True)])
    except ValueError as exc:
        raise _invalid(str(exc)) from exc
    stream = segmentstream.start(
        [segmentstream.Target(post, out_dir) for (spec, post), out_dir
         in zip(rungs, dirs, strict=True) if spec.type is VariantType.VIDEO],
        enabled=task.stream_segments)
    try:
        done = _run(argv, dirs[0], ", ".join(spec.name for spec, _ in rungs), task.input_url,
                    launched, meanwhile=_load_shared_publishing)
    finally:
        streamed = segmentstream.finish(stream)
    return publish_shared(rungs, dirs, done, streamed)


def _load_shared_publishing(endpoint: str) -> None:
    """What `publish_shared` needs, loaded while ffmpeg encodes: the uploader, and the
    storyboard's WebVTT library."""
    _load_upload(endpoint)
    from mediaplane.worker import storyboard  # noqa: F401


def publish_shared(rungs: Sequence[tuple[VariantSpec, PresignedPost]], dirs: Sequence[Path],
                   done: process.Completed, streamed: Mapping[Path, Mapping[str, int]]
                   ) -> list[VariantOutput]:
    """Every output of a shared encode (each in its directory of `dirs`) published at once,
    each under its own policy: its proof, its media files, then, once every output is
    proven, its manifests. One after the other,
    these uploads were the end of the rest of the ladder's path to complete. An output that
    fails its proof leaves no manifest of any output: the pod fails, and its retry makes
    them all again."""
    from concurrent.futures import ThreadPoolExecutor  # loaded with the uploader

    from mediaplane.worker import storyboard

    def prove(spec: VariantSpec, post: PresignedPost, out_dir: Path
              ) -> Callable[[Callable[[], None]], VariantOutput]:
        if spec.type is VariantType.STORYBOARD:
            tile = storyboard.prove(spec, out_dir, done)
            return functools.partial(storyboard.publish, spec, post, out_dir, tile)
        playlist, rep = _proven(out_dir, done)
        return functools.partial(publish, spec, post, out_dir, playlist, rep,
                                 streamed.get(out_dir))

    # Room for every proof and every upload at once: an upload waits for all the proofs.
    with ThreadPoolExecutor(max_workers=2 * len(rungs), thread_name_prefix="publish") as pool:
        proofs = [pool.submit(prove, spec, post, out_dir)
                  for (spec, post), out_dir in zip(rungs, dirs, strict=True)]

        def all_proven() -> None:
            for proof in proofs:
                proof.result()  # the first failure, raised in every upload that waits

        def upload(proof: Future[Callable[[Callable[[], None]], VariantOutput]]
                   ) -> VariantOutput:
            return proof.result()(all_proven)

        uploads = [pool.submit(upload, proof) for proof in proofs]
        return [future.result() for future in uploads]


def rendition_chunk(task: WorkerTask, spec: VariantSpec, post: PresignedPost, out_dir: Path,
                    index: int) -> VariantChunkOutcome:
    """One chunk of a segment-parallel rung: its segments, renumbered to their place in the
    whole rendition, then its RenditionChunk (the proof that they are all stored). Only
    chunk 0 stores the init segment: the encodes are identical up to their timestamps, so
    their init segments are too, and the operator's joined playlists name that one."""
    try:
        chunk = spec.chunk_range(index)
        first = spec.chunk_first_segment(index)
    except ValueError as exc:
        raise _invalid(str(exc)) from exc
    playlist, rep = encode(task, spec, out_dir, chunk)
    renames = {s.uri: commands.renumbered(s.uri, first) for s in playlist.segments}
    for old, new in sorted(renames.items(), key=lambda item: item[1], reverse=True):
        (out_dir / old).rename(out_dir / new)  # renumbered upwards: highest first
    playlist = playlist.with_uris(lambda uri: renames.get(uri, uri))
    segments = [s.uri for s in playlist.segments]
    names = [*segments, *([playlist.init] if index == 0 and playlist.init else [])]
    sizes = {n: (out_dir / n).stat().st_size for n in segments}
    sent = upload_all(post, out_dir, names, audio_only=spec.type is VariantType.AUDIO)
    part = RenditionChunk(
        index=index, playlist=playlist.render(),
        mpd=dash.renumber((out_dir / commands.MPD_NAME).read_text(), first),
        files=len(names), bytes=sent,
        bandwidth=max(rep.bandwidth or 0,
                      hls.peak_bandwidth(playlist.segments, sizes, spec.segment_seconds)) or None,
        width=rep.width, height=rep.height, codecs=rep.codecs)
    file = RenditionChunk.file_name(index)
    (out_dir / file).parent.mkdir(parents=True, exist_ok=True)
    (out_dir / file).write_text(part.model_dump_json())
    sent += upload_all(post, out_dir, [file])
    return VariantChunkOutcome(index=index, file=file, files=len(names) + 1, bytes=sent)


def _encode_still(task: WorkerTask, spec: VariantSpec, out_dir: Path) -> process.Completed:
    if spec.type is VariantType.IMAGE:
        argv = commands.image_command(task.input_url, spec, out_dir)
        return process.run(argv, timeout=STILL_TIMEOUT, workdir=str(out_dir.parent),
                           watch=INPUT_ERRORS,
                           meanwhile=functools.partial(_load_upload, task.input_url))
    done = process.run(commands.poster_command(task.input_url, spec, out_dir),
                       timeout=STILL_TIMEOUT, workdir=str(out_dir.parent), watch=INPUT_ERRORS,
                       meanwhile=functools.partial(_load_upload, task.input_url))
    if done.ok and not (out_dir / commands.POSTER_NAME).is_file() and spec.poster_at_seconds:
        # Seeking past the last frame yields no picture: fall back to the first frame.
        log.info("no frame at %.3f s, taking the first one", spec.poster_at_seconds)
        argv = commands.poster_command(task.input_url, spec, out_dir, at_seconds=0.0)
        done = process.run(argv, timeout=STILL_TIMEOUT, workdir=str(out_dir.parent),
                           watch=INPUT_ERRORS)
    return done


def still(task: WorkerTask, spec: VariantSpec, post: PresignedPost,
          out_dir: Path) -> VariantOutput:
    try:
        done = _encode_still(task, spec, out_dir)
    except ValueError as exc:
        raise _invalid(str(exc)) from exc
    name = commands.still_name(spec)
    path = out_dir / name
    if not done.ok or not path.is_file() or path.stat().st_size == 0:
        raise _failed("ffmpeg wrote no picture", done)
    size = picture_size(path)
    sent = upload_all(post, out_dir, [name])
    return VariantOutput(name=spec.name, files=1, bytes=sent, width=size and size[0],
                         height=size and size[1], file=name)


def chunk_index(environ: Mapping[str, str], spec: VariantSpec) -> int:
    raw = environ.get(COMPLETION_INDEX_ENV, "")
    if not raw.isdigit() or spec.chunks is None or int(raw) >= spec.chunks:
        raise _invalid(f"{COMPLETION_INDEX_ENV}={raw!r} is not a chunk of {spec.chunks}")
    return int(raw)


def run_variant(task: WorkerTask, scratch: Path, environ: Mapping[str, str],
                launched: Launched | None = None) -> VariantOutcome | VariantChunkOutcome:
    """`launched`: the task's first command (`commands.first_command`), already running in
    `scratch`, which the rendition waits for instead of starting it."""
    spec, post = task.variant, task.output
    if spec is None or post is None:
        raise _invalid(f"a {task.type} task needs `variant` and `output`")
    if TaskType.producing(spec.type) is not task.type:
        raise _invalid(f"task type {task.type} with a {spec.type} variant")
    if task.also:
        outputs = shared_renditions(
            task, [(spec, post), *((shared.variant, shared.output) for shared in task.also)],
            scratch, launched)
        return VariantOutcome(output=outputs[0], also=outputs[1:])
    out_dir = scratch / commands.OUT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    if spec.chunks is not None:
        return rendition_chunk(task, spec, post, out_dir, chunk_index(environ, spec))
    if spec.type in (VariantType.VIDEO, VariantType.AUDIO):
        return VariantOutcome(output=rendition(task, spec, post, out_dir, launched))
    if spec.type is VariantType.STORYBOARD:
        from mediaplane.worker.storyboard import storyboard

        try:
            return VariantOutcome(output=storyboard(task, spec, post, out_dir, INPUT_ERRORS))
        except ValueError as exc:
            raise _invalid(str(exc)) from exc
    return VariantOutcome(output=still(task, spec, post, out_dir))
