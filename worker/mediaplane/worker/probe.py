"""The ingest gate: is this upload what its uploader declared, and can we read it safely?

Every check that fails is a verdict about the input (quarantine), not an error: retrying
would give the same answer. Only an unreachable source is an infrastructure failure.
"""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING, Any

from mediaplane.core import commands
from mediaplane.core.tasks import MediaKind, ProbeOutcome, ProbeResult, Verdict
from mediaplane.worker import hostile, process
from mediaplane.worker.errors import EXIT_INVALID_TASK, InfraError
from mediaplane.worker.sniff import (
    DEMUXED_AS,
    HEAD_BYTES,
    Family,
    accepted_families,
    canonical_mime,
    sniff_file,
)

if TYPE_CHECKING:
    from pathlib import Path

    from mediaplane.core.tasks import Expected, WorkerTask
    from mediaplane.worker.launch import Launched

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 60.0
SOURCE_NAME = "source"  # no extension: ffprobe must pick the demuxer from the bytes alone
MAX_SIDE = 16384
_IMAGE_CODECS = frozenset({"png", "mjpeg", "webp", "gif", "bmp", "tiff"})
# More streams than any real upload has (a video, a few audio languages, subtitles); each
# one is work for every probe and transcode that opens the file.
MAX_STREAMS = 16
# Frames of an animated image (GIF): only the first is used, the rest are refused work.
MAX_IMAGE_FRAMES = 1000
# A file whose declared duration needs fewer bytes per second than any real codec uses
# (Opus speech at 6 kbit/s is 750 B/s) decodes to far more than it weighs: a bomb.
MIN_BYTES_PER_SECOND = 100
BOMB_MIN_SECONDS = 60.0


def quarantine(reason: str, message: str) -> ProbeOutcome:
    return ProbeOutcome(verdict=Verdict.QUARANTINED, reason=reason, message=message)


def check_declared(expected: Expected, family: Family | None) -> ProbeOutcome | None:
    accepted = accepted_families(expected.kind, expected.mime)
    if not accepted:
        return quarantine("TypeMismatch", f"{expected.mime!r} is not an accepted "
                          f"{expected.kind} type")
    if family is None:
        return quarantine("TypeMismatch", f"declared {expected.mime} but the content is not "
                          "a recognised media type")
    if family not in accepted:
        return quarantine("TypeMismatch", f"declared {expected.mime} but the content is "
                          f"{family}")
    return None


def _float(value: object) -> float | None:
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _rotation(entries: list[dict[str, Any]] | None, tags: dict[str, Any] | None = None) -> int:
    for entry in entries or []:
        if "rotation" in entry:
            return int(_float(entry["rotation"]) or 0)
    return int(_float((tags or {}).get("rotate", 0)) or 0)


def _display_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    """Players and ffmpeg's autorotate show a 90°-rotated frame with its sides swapped."""
    return (height, width) if rotation % 180 else (width, height)


def interpret(kind: MediaKind, family: Family, report: dict[str, Any],
              detected_mime: str, size_bytes: int | None = None) -> ProbeOutcome:
    """Pure judgement of an ffprobe JSON report; unit tests feed it real ffprobe output."""
    fmt = report.get("format") or {}
    format_name = str(fmt.get("format_name", ""))
    if format_name not in DEMUXED_AS.get(family, frozenset()):
        return quarantine("TypeMismatch", f"content sniffed as {family} but ffprobe read it "
                          f"as {format_name or 'nothing'}")
    streams: list[dict[str, Any]] = report.get("streams") or []
    if len(streams) > MAX_STREAMS:
        return quarantine("TooManyStreams", f"{len(streams)} streams; at most {MAX_STREAMS} "
                          "are accepted")
    videos = [s for s in streams if s.get("codec_type") == "video"
              and not (s.get("disposition") or {}).get("attached_pic")]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    for stream in (videos[:1] + audios[:1]):
        if not stream.get("codec_name"):
            return quarantine("Unreadable", f"stream {stream.get('index')} has a codec "
                              "ffprobe does not know")
    duration = _float(fmt.get("duration"))
    frames = [f for f in report.get("frames") or [] if f.get("media_type") == "video"]
    if (kind is not MediaKind.IMAGE and duration is not None and size_bytes is not None
            and duration > BOMB_MIN_SECONDS and size_bytes / duration < MIN_BYTES_PER_SECOND):
        return quarantine("DecompressionBomb", f"{duration:.0f} s of media in {size_bytes} "
                          f"bytes (under {MIN_BYTES_PER_SECOND} bytes per second)")

    if kind is MediaKind.VIDEO:
        if not videos:
            return quarantine("KindMismatch", "declared video but the file has no video stream")
        if duration is not None and duration <= 0:
            return quarantine("KindMismatch", "declared video but the file has no duration")
    elif kind is MediaKind.AUDIO:
        if not audios:
            return quarantine("KindMismatch", "declared audio but the file has no audio stream")
    else:
        if len(videos) != 1 or audios or videos[0].get("codec_name") not in _IMAGE_CODECS:
            return quarantine("KindMismatch", "declared image but the file is not a single "
                              "still picture")
        if not frames:
            return quarantine("Unreadable", "the image does not decode")
        if len(frames) > 1 and family is not Family.GIF:
            return quarantine("KindMismatch", "declared image but the file holds a sequence "
                              "of pictures")
        duration = None

    width = height = None
    if videos:
        video = videos[0]
        width, height = int(video.get("width") or 0), int(video.get("height") or 0)
        if width <= 0 or height <= 0:
            return quarantine("Unreadable", "the video stream has no dimensions")
        side_data = frames[0].get("side_data_list") if frames else video.get("side_data_list")
        width, height = _display_size(width, height, _rotation(side_data, video.get("tags")))
        if max(width, height) > MAX_SIDE or width * height > commands.MAX_PIXELS[kind]:
            return quarantine("DimensionsTooLarge", f"{width}x{height} is larger than we "
                              "process")

    return ProbeOutcome(verdict=Verdict.ACCEPTED, probe=ProbeResult(
        detected_mime=detected_mime,
        format_name=format_name,
        duration_seconds=duration,
        width=width,
        height=height,
        video_codec=videos[0].get("codec_name") if videos else None,
        audio_codec=audios[0].get("codec_name") if audios else None,
        **_audio_shape(audios[0] if audios else {}),
        has_video=bool(videos),
        has_audio=bool(audios),
    ))


def _audio_shape(stream: dict[str, Any]) -> dict[str, Any]:
    """What the ladder needs to decide whether the audio can be copied as it is."""
    def integer(key: str) -> int | None:
        value = _float(stream.get(key))
        return int(value) if value is not None and value > 0 else None
    return {"audio_profile": stream.get("profile") or None,
            "audio_channels": integer("channels"),
            "audio_sample_rate": integer("sample_rate"),
            "audio_bitrate": integer("bit_rate")}


def inspect(path: Path, expected: Expected, family: Family, workdir: Path) -> ProbeOutcome:
    """ffprobe the local copy with the kind's demuxers only and judge what it saw."""
    done = process.run(commands.probe_command(path, expected.kind), timeout=PROBE_TIMEOUT,
                       workdir=str(workdir))
    if done.timed_out:
        return quarantine("Unreadable", f"ffprobe did not finish within {PROBE_TIMEOUT:.0f} s")
    if any(message in done.stderr_tail for message in commands.OVERSIZE_MESSAGES):
        return quarantine("DimensionsTooLarge", "the picture is larger than "
                          f"{commands.MAX_PIXELS[expected.kind]} pixels")
    if done.returncode != 0:
        if "not on whitelist" in done.stderr_tail:
            return quarantine("DemuxerNotAllowed", f"the {expected.kind} demuxers refuse it: "
                              f"{done.stderr_tail[-300:]}")
        return quarantine("Unreadable", f"ffprobe failed: {done.stderr_tail[-300:]}")
    try:
        report = json.loads(done.stdout)
    except ValueError:
        return quarantine("Unreadable", "ffprobe's report is not readable")
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    if family is Family.GIF:
        frames = count_frames(path, workdir)
        if frames is None or frames > MAX_IMAGE_FRAMES:
            return quarantine("TooManyFrames", f"an animation of {frames or 'too many'} "
                              f"frames; at most {MAX_IMAGE_FRAMES} are accepted")
    return interpret(expected.kind, family, report,
                     canonical_mime(expected.kind, family, head), path.stat().st_size)


def count_frames(path: Path, workdir: Path) -> int | None:
    """An animation's frames, counted by demuxing (no decoding); None when ffprobe cannot
    count them in time."""
    done = process.run(commands.count_packets_command(path), timeout=PROBE_TIMEOUT,
                       workdir=str(workdir))
    if not done.ok:
        return None
    try:
        streams = json.loads(done.stdout).get("streams") or [{}]
        return int(streams[0].get("nb_read_packets", 0))
    except (ValueError, TypeError):
        return None


def run_probe(task: WorkerTask, scratch: Path, launched: Launched | None = None
              ) -> ProbeOutcome:
    """The verdict on the source, with what the pod made beside it once it is accepted
    (`beside`). The lowest rung the task names encodes from the start, `launched` or
    started here, and is stopped on every other way out: a refused source, an unreachable
    one, a SIGTERM."""
    from mediaplane.worker import beside

    rung = beside.start_rung(task, scratch, launched)
    try:
        outcome = judge(task, scratch)
        if task.also and outcome.verdict is Verdict.ACCEPTED and outcome.probe is not None:
            made = beside.made_beside(task, outcome.probe, scratch, rung,
                                      scratch / SOURCE_NAME)
            rung = None  # waited for, kept or stopped
            if made:
                outcome = outcome.model_copy(update={"also": made})
        return outcome
    finally:
        if rung is not None:
            rung.stop()


def judge(task: WorkerTask, scratch: Path) -> ProbeOutcome:
    """Downloads the source and decides: its size and checksum against the declared ones,
    its sniffed type against the declared kind and MIME type, then ffprobe's view."""
    from mediaplane.worker.download import fetch  # deferred: httpx only when needed

    expected = task.expected
    if expected is None:
        raise InfraError("InvalidTask", "a probe task needs `expected`",
                         exit_code=EXIT_INVALID_TASK)
    source = scratch / SOURCE_NAME
    fetched = fetch(task.input_url, source, expected.size_bytes)
    if fetched.sha256 is None or fetched.size != expected.size_bytes:
        received = f"more than {expected.size_bytes}" if fetched.oversize else str(fetched.size)
        return quarantine("SizeMismatch", f"declared {expected.size_bytes} bytes, the object "
                          f"has {received}")
    if fetched.sha256 != expected.sha256.lower():
        return quarantine("ChecksumMismatch", f"declared sha256 {expected.sha256}, the "
                          f"object's is {fetched.sha256}")
    family = sniff_file(source)
    log.info("fetched %d bytes, sniffed %s", fetched.size, family)
    verdict = check_declared(expected, family)
    if verdict is not None or family is None:
        return verdict or quarantine("TypeMismatch", "unrecognised content")
    finding = hostile.inspect_bytes(source, family)
    if finding is not None:
        return quarantine(finding.reason, finding.message)
    return inspect(source, expected, family, scratch)
