"""Every ffmpeg and ffprobe command line the worker runs, as pure functions.

They live in core because the operator renders a rendition pod's first command too
(`first_command`): the pod starts it before its Python has loaded anything else.

The inputs are hostile, so the safety of the worker lives in these argv lists: a protocol
allow-list (ffmpeg never opens anything but the one input), a demuxer allow-list per kind
(no playlist or concat demuxer that would follow references, no image2 pattern expansion),
metadata never copied to outputs. Keeping them pure lets unit tests assert those flags
without running anything.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ffmpeg

from mediaplane.core.podenv import FFMPEG as FFMPEG
from mediaplane.core.tasks import (
    RENDITION_MPD,
    RENDITION_PLAYLIST,
    MediaKind,
    TaskType,
    VariantSpec,
    VariantType,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mediaplane.core.tasks import WorkerTask

FFPROBE = "ffprobe"

# ffmpeg matches each entry against every alias of a demuxer ("mov,mp4,m4a,3gp,3g2,mj2").
# Not listed on purpose: hls, dash, concat (they open further URLs), image2 (file-name
# patterns), apng, and the many exotic demuxers that only widen the attack surface.
DEMUXERS: dict[MediaKind, tuple[str, ...]] = {
    MediaKind.VIDEO: ("mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi",
                      "mpegts"),
    MediaKind.AUDIO: ("mp3", "aac", "wav", "flac", "ogg", "mov", "mp4", "m4a", "3gp", "3g2",
                      "mj2", "matroska", "webm"),
    MediaKind.IMAGE: ("png_pipe", "jpeg_pipe", "webp_pipe", "gif", "gif_pipe", "bmp_pipe",
                      "tiff_pipe"),
}

# The probe reads the downloaded copy; transcodes stream the presigned URL (no "crypto":
# that protocol only serves encrypted HLS, which is not allowed anyway).
PROBE_PROTOCOLS = "file"
INPUT_PROTOCOLS = "http,https,tcp,tls"

# Network input: give up on a stalled read instead of hanging until the Job's deadline.
RW_TIMEOUT_US = 30_000_000

# Decoders refuse larger pictures before allocating them (decompression bombs). Audio
# inputs may carry cover art, held to the image limit.
MAX_PIXELS: dict[MediaKind, int] = {
    MediaKind.IMAGE: 100_000_000,
    MediaKind.VIDEO: 8192 * 4352,
    MediaKind.AUDIO: 100_000_000,
}
# What ffmpeg logs when it refuses a picture for its size (our limit, or its own).
OVERSIZE_MESSAGES = ("exceeds specified max pixel count", "Invalid image size")

# Output names are fixed so the operator and the tests can predict them.
MPD_NAME = RENDITION_MPD
HLS_MASTER_NAME = "master.m3u8"  # written by ffmpeg, not uploaded: the operator owns masters
HLS_MEDIA_NAME = RENDITION_PLAYLIST  # ffmpeg 5.1's dash muxer names them media_<n>
INIT_NAME = "init.m4s"
SEGMENT_TEMPLATE = "seg-$Number%05d$.$ext$"
POSTER_NAME = "poster.jpg"
POSTER_MAX_WIDTH = 1280
STORYBOARD_SPRITE = "storyboard.jpg"
STORYBOARD_VTT = "storyboard.vtt"

_SEGMENT_NUMBER = re.compile(r"^seg-(\d+)\.m4s$")


def is_media_segment(name: str) -> bool:
    """A media segment under its final name: the dash muxer writes each one as
    `<name>.tmp` and renames it once it is whole."""
    return _SEGMENT_NUMBER.match(name) is not None


def renumbered(name: str, first: int) -> str:
    """A chunk's segment file named by its place in the whole rendition: the chunk's
    segment 1 becomes `first`."""
    match = _SEGMENT_NUMBER.match(name)
    if match is None:
        raise ValueError(f"not a segment of ours: {name!r}")
    return f"seg-{int(match.group(1)) + first - 1:05d}.m4s"


_GLOBAL = ("-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y")


def demuxer_allowlist(*kinds: MediaKind) -> str:
    names: list[str] = []
    for kind in kinds:
        names += [n for n in DEMUXERS[kind] if n not in names]
    return ",".join(names)


def probe_command(path: Path | str, kind: MediaKind) -> list[str]:
    """ffprobe of the local copy. Images also decode up to two frames: that proves they
    decode, reveals EXIF orientation, and shows whether a "still" hides a sequence."""
    argv = [FFPROBE, "-hide_banner", "-loglevel", "error",
            "-protocol_whitelist", PROBE_PROTOCOLS,
            "-format_whitelist", demuxer_allowlist(kind),
            "-max_pixels", str(MAX_PIXELS[kind]),
            "-show_format", "-show_streams"]
    if kind is MediaKind.IMAGE:
        argv += ["-show_frames", "-read_intervals", "%+#2"]
    return [*argv, "-of", "json", str(path)]


def _network_input(url: str, kinds: tuple[MediaKind, ...],
                   **extra: object) -> ffmpeg.nodes.FilterableStream:
    return ffmpeg.input(url, protocol_whitelist=INPUT_PROTOCOLS,
                        format_whitelist=demuxer_allowlist(*kinds),
                        max_pixels=max(MAX_PIXELS[k] for k in kinds),
                        rw_timeout=RW_TIMEOUT_US, reconnect=1, reconnect_on_network_error=1,
                        reconnect_delay_max=8, **extra)


def _input(source: str | Path, kinds: tuple[MediaKind, ...],
           **extra: object) -> ffmpeg.nodes.FilterableStream:
    """A presigned URL (str), or the probe's pod's local copy (a Path), whose bytes the
    probe has checked: read through the file protocol only, with the same allow-lists."""
    if isinstance(source, str):
        return _network_input(source, kinds, **extra)
    return ffmpeg.input(f"file:{source.resolve()}", protocol_whitelist=PROBE_PROTOCOLS,
                        format_whitelist=demuxer_allowlist(*kinds),
                        max_pixels=max(MAX_PIXELS[k] for k in kinds), **extra)


def _compile(stream: ffmpeg.nodes.OutputStream) -> list[str]:
    argv: list[str] = ffmpeg.compile(stream, cmd=[FFMPEG, *_GLOBAL])
    return argv


def _require(value: int | float | str | None, what: str, spec: VariantSpec) -> int | float | str:
    if value is None:
        raise ValueError(f"variant {spec.name!r} ({spec.type}) needs {what}")
    return value


def _cmaf(spec: VariantSpec) -> dict[str, object]:
    """The dash muxer writes fMP4 segments once and both an MPD and an HLS playlist naming
    them. Keyframes forced at multiples of the segment duration give every rung one grid;
    the SegmentTimeline lists each rendition's real segments, because renditions of one
    asset end a few milliseconds apart (AAC frames) and a duration-only template would make
    players infer a segment count from the longest of them."""
    return {
        "f": "dash",
        "dash_segment_type": "mp4",
        "seg_duration": spec.segment_seconds,
        "use_template": 1,
        "use_timeline": 1,
        "hls_playlist": 1,
        "hls_master_name": HLS_MASTER_NAME,
        "init_seg_name": INIT_NAME,
        "media_seg_name": SEGMENT_TEMPLATE,
        "map_metadata": -1,
        "map_chapters": -1,
    }


def _chunk_options(chunk: tuple[float, float | None] | None
                   ) -> tuple[dict[str, object], dict[str, object]]:
    """(input, output) options that encode only [start, end) of the source and keep the
    source's timeline: the seek is accurate (decoded from the keyframe before, frames
    before `start` dropped), `copyts`/`start_at_zero` keep timestamps absolute (counted from
    the source's start, as a whole-rung encode counts them), and `frag_discont` makes the
    muxer write them into each fragment's decode time, where a player reads them, instead
    of restarting at zero behind an edit list. The chunks' segments then follow each other
    as the segments of one encode do, and the first chunk's init segment serves them all."""
    if chunk is None:
        return {}, {}
    start, end = chunk
    before: dict[str, object] = {"ss": f"{start:.3f}", "copyts": None, "start_at_zero": None}
    after: dict[str, object] = {"format_options": "movflags=+frag_discont"}
    if end is not None:
        after["to"] = f"{end:.3f}"
    return before, after


def _scaled_height(spec: VariantSpec) -> str:
    """Never upscale; keep the height even for 4:2:0 (the width follows the aspect)."""
    height = int(_require(spec.height, "height", spec))
    return f"trunc(min({height},ih)/2)*2"


def _h264(spec: VariantSpec) -> dict[str, object]:
    """A rung's encoder: keyframes at every segment boundary and no scene-cut keyframes,
    so all rungs cut at the same instants and players can switch between them."""
    kbps = int(_require(spec.video_bitrate_kbps, "video_bitrate_kbps", spec))
    return {
        "c:v": "libx264",
        "preset": "veryfast",
        "profile:v": "high",
        "pix_fmt": "yuv420p",
        "b:v": f"{kbps}k",
        "maxrate": f"{kbps}k",
        "bufsize": f"{2 * kbps}k",
        "force_key_frames": f"expr:gte(t,n_forced*{spec.segment_seconds})",
        "sc_threshold": 0,
        "adaptation_sets": "id=0,streams=v",
    }


def video_command(input_url: str, spec: VariantSpec, out_dir: Path,
                  chunk: tuple[float, float | None] | None = None) -> list[str]:
    """One H.264 rung, video only (or one chunk of it: `chunk` is its [start, end) in
    seconds)."""
    before, after = _chunk_options(chunk)
    source = _network_input(input_url, (MediaKind.VIDEO,), **before)
    # -vf, not a filter graph: the escaped comma is the filter option parser's.
    height = _scaled_height(spec).replace(",", "\\,")
    scale = f"scale=w=-2:h={height}"
    out = ffmpeg.output(source["v:0"], str(out_dir / MPD_NAME), vf=scale, **after,
                        **_h264(spec), **_cmaf(spec))
    return _compile(out)


# The dash muxer's own options in `_cmaf` (the rest are ffmpeg's, for the whole output).
_DASH_OPTIONS = ("dash_segment_type", "seg_duration", "use_template", "use_timeline",
                 "hls_playlist", "hls_master_name", "init_seg_name", "media_seg_name")
# What the tee muxer's parser reads as structure: `[options]path|[options]path`, `:`
# between options, backslashes and quotes as escapes.
_TEE_SPECIAL = frozenset("[]|:\\'\"")


def _tee_slave(options: dict[str, object], path: Path) -> str:
    """One output of the tee muxer: `[key=value:...]path`. Every value here is ours (muxer
    settings, the pod's plain directory names); one that the tee's parser would split is
    refused rather than escaped."""
    for text in (*(f"{key}{value}" for key, value in options.items()), str(path)):
        if any(char in _TEE_SPECIAL for char in text):
            raise ValueError(f"{text!r} cannot be part of a tee muxer output")
    return "[" + ":".join(f"{key}={value}" for key, value in options.items()) + f"]{path}"


def rung_and_audio_command(input_url: str, rung: VariantSpec, audio: VariantSpec,
                           rung_dir: Path, audio_dir: Path) -> list[str]:
    """The probe's pod's first command: the lowest rung with `video_command`'s encoder and
    muxer settings, and the source's audio copied into `audio_dir` as `audio_command`
    copies it (the same bytes), from the one read of the source. The tee muxer feeds each
    output its own streams; the audio's is `onfail=ignore`, so a source with no audio, or
    with sound fMP4 cannot hold, loses that output and not the rung (the worker then proves
    the audio or copies it itself). `rung_dir` and `audio_dir` are relative to ffmpeg's
    working directory."""
    if not (audio.type is VariantType.AUDIO and audio.audio_copy
            and audio.audio_codec == "aac"):
        raise ValueError(f"variant {audio.name!r} is not a copy of AAC sound")
    source = _network_input(input_url, (MediaKind.VIDEO,))
    height = _scaled_height(rung).replace(",", "\\,")
    video = {**_h264(rung), **_cmaf(rung)}
    muxer = {key: video.pop(key) for key in list(video)
             if key in ("f", "adaptation_sets", *_DASH_OPTIONS)}
    audio_muxer = {**{key: value for key, value in _cmaf(audio).items()
                      if key in ("f", *_DASH_OPTIONS)},
                   "adaptation_sets": "id=0,streams=a", "onfail": "ignore"}
    tee = "|".join([_tee_slave({"select": "v", **muxer}, rung_dir / MPD_NAME),
                    _tee_slave({"select": "a", **audio_muxer}, audio_dir / MPD_NAME)])
    # The dash muxer asks encoders for global headers; through the tee, ffmpeg would not,
    # and x264 would repeat its parameter sets in every keyframe.
    out = ffmpeg.output(source["v:0"], source["a:0?"], tee, vf=f"scale=w=-2:h={height}",
                        **{**video, "f": "tee", "c:a": "copy", "flags:v": "+global_header"})
    return _compile(out)


def shared_video_command(input_url: str, rungs: Sequence[tuple[VariantSpec, Path]]
                         ) -> list[str]:
    """Several H.264 rungs (and the storyboard) from one decode of the source: a split
    filter feeds each rung's scaler and encoder, and each rung's muxer writes into its own
    directory exactly what `video_command` (`storyboard_command`) writes for it alone."""
    source = _network_input(input_url, (MediaKind.VIDEO,))
    split = source["v:0"].filter_multi_output("split", len(rungs))
    outputs = []
    for i, (spec, out_dir) in enumerate(rungs):
        if spec.type is VariantType.STORYBOARD:
            stream = split.stream(i)
            for name, args in _storyboard_filters(spec):
                stream = stream.filter(name, **args)
            outputs.append(ffmpeg.output(stream, str(out_dir / STORYBOARD_SPRITE),
                                         **_still("jpeg")))
            continue
        outputs.append(ffmpeg.output(
            split.stream(i).filter("scale", w=-2, h=_scaled_height(spec)),
            str(out_dir / MPD_NAME), **_h264(spec), **_cmaf(spec)))
    argv: list[str] = ffmpeg.compile(ffmpeg.merge_outputs(*outputs), cmd=[FFMPEG, *_GLOBAL])
    return argv


AUDIO_RATE = 48_000
AAC_FRAME = 1024  # samples per AAC-LC frame
# Chunks of an encoded audio rendition start this many frames early and end this many late:
# an AAC frame's transform overlaps its neighbours, so the frames kept at a chunk's edges
# must be encoded with real sound on both sides, as one encode of the whole would have.
AUDIO_CHUNK_ROLL_FRAMES = 8


def _audio_chunk_options(chunk: tuple[float, float | None] | None
                         ) -> tuple[dict[str, object], dict[str, object]]:
    """(input, output) options that encode the AAC frames of one chunk exactly as one
    encode of the whole would number them.

    Every chunk's encoder starts on the same grid of 1024-sample frames counted from the
    source's start (the seek lands a few frames before the chunk, `asetpts` pins the
    samples to that grid), and the `noise` filter drops the packets outside the chunk: the
    pre-roll, the encoder's priming frame and the post-roll. Packets are split by their own
    timestamps with one expression, so two neighbouring chunks keep every frame exactly
    once: the joined rendition has no gap, no overlap and no jump.

    Each cut is one frame before the chunk's boundary: the first chunk also holds the
    priming frame (at -1024 samples, as in one whole encode), and the muxer counts its
    segments from there, so it must end one frame early to make as many segments as the
    plan numbers. The other chunks then start one frame early too."""
    if chunk is None:
        return {}, {}
    start, end = chunk
    frame = AAC_FRAME / AUDIO_RATE
    first = max(0, math.floor((start - frame) / frame) - AUDIO_CHUNK_ROLL_FRAMES)
    origin = first * AAC_FRAME  # in samples, on the grid
    before: dict[str, object] = {"ss": f"{origin / AUDIO_RATE:.6f}", "copyts": None,
                                 "start_at_zero": None}
    drops = [f"lt(pts*tb\\,{start - frame:.6f})"] if start > 0 else []
    after: dict[str, object] = {
        "af": f"aresample={AUDIO_RATE},asetpts=N/SR/TB+{origin}/SR/TB",
        "format_options": "movflags=+frag_discont"}
    if end is not None:
        after["to"] = f"{end + AUDIO_CHUNK_ROLL_FRAMES * frame:.6f}"
        drops.append(f"gte(pts*tb\\,{end - frame:.6f})")
    after["bsf:a"] = "noise=drop=" + "+".join(drops)
    return before, after


def audio_command(input_source: str | Path, spec: VariantSpec, out_dir: Path,
                  chunk: tuple[float, float | None] | None = None) -> list[str]:
    """One audio rendition, stereo 48 kHz (what Opus requires and what AAC players expect),
    or the source's AAC copied when the plan says it already is that. The source may be an
    audio file or the audio of a video, so both allow-lists apply. `chunk` ([start, end)
    in seconds) encodes one chunk of a long source's AAC rendition. `input_source` is a
    presigned URL or the probe's local copy (`_input`)."""
    codec = str(_require(spec.audio_codec, "audio_codec", spec))
    kbps = int(_require(spec.audio_bitrate_kbps, "audio_bitrate_kbps", spec))
    copy = bool(spec.audio_copy) and codec == "aac"
    if chunk is not None and (copy or codec != "aac"):
        raise ValueError(f"variant {spec.name!r}: only an encoded AAC rendition is split "
                         "into chunks")
    before, after = _audio_chunk_options(chunk)
    source = _input(input_source, (MediaKind.AUDIO, MediaKind.VIDEO), **before)
    encode: dict[str, object] = (
        {"c:a": "copy"} if copy else
        {"c:a": "libopus" if codec == "opus" else "aac", "b:a": f"{kbps}k", "ar": AUDIO_RATE,
         "ac": 2, **after})
    out = ffmpeg.output(
        source["a:0"], str(out_dir / MPD_NAME),
        **encode,
        **{"adaptation_sets": "id=0,streams=a"},
        **_cmaf(spec),
    )
    return _compile(out)


def still_name(spec: VariantSpec) -> str:
    if spec.type is VariantType.POSTER:
        return POSTER_NAME
    return "image.jpg" if spec.image_format == "jpeg" else "image.webp"


def _still_encoder(image_format: str) -> dict[str, object]:
    if image_format == "jpeg":
        return {"c:v": "mjpeg", "q:v": 3, "pix_fmt": "yuvj420p", "f": "image2", "update": 1}
    return {"c:v": "libwebp", "quality": 80, "compression_level": 4, "f": "webp"}


def _still(image_format: str) -> dict[str, object]:
    """One picture's output options. bitexact keeps the encoder's name out of the file;
    neither encoder writes EXIF and map_metadata drops what the demuxer exported."""
    return {"map_metadata": -1, "fflags": "+bitexact", "flags": "+bitexact", "frames:v": 1,
            **_still_encoder(image_format)}


def _still_output(stream: ffmpeg.nodes.FilterableStream, path: Path, vf: str,
                  image_format: str) -> list[str]:
    return _compile(ffmpeg.output(stream, str(path), vf=vf, **_still(image_format)))


def image_command(input_url: str, spec: VariantSpec, out_dir: Path) -> list[str]:
    """One resized still. ffmpeg applies the EXIF orientation before the filter, so the
    width limit is the displayed width and the output needs no orientation tag."""
    width = int(_require(spec.width, "width", spec))
    image_format = str(_require(spec.image_format, "image_format", spec))
    source = _network_input(input_url, (MediaKind.IMAGE,))
    vf = f"scale=w=min({width}\\,iw):h=-1"
    return _still_output(source["v:0"], out_dir / still_name(spec), vf, image_format)


def poster_command(input_url: str, spec: VariantSpec, out_dir: Path,
                   at_seconds: float | None = None) -> list[str]:
    """One JPEG frame. The seek goes before the input (fast keyframe seek, then decode to
    the exact time). Anamorphic pixels are squared first: browsers ignore JPEG aspect."""
    at = spec.poster_at_seconds if at_seconds is None else at_seconds
    source = _network_input(input_url, (MediaKind.VIDEO,), ss=f"{max(0.0, at or 0.0):.3f}")
    vf = ("scale=w=trunc(iw*sar/2)*2:h=ih,setsar=1,"
          f"scale=w=min({POSTER_MAX_WIDTH}\\,iw):h=-2")
    return _still_output(source["v:0"], out_dir / POSTER_NAME, vf, "jpeg")


def storyboard_grid(spec: VariantSpec) -> tuple[int, int]:
    """(columns, rows) of the sprite's tiles."""
    tiles = int(_require(spec.storyboard_tiles, "storyboard_tiles", spec))
    columns = int(_require(spec.storyboard_columns, "storyboard_columns", spec))
    if tiles < 1 or columns < 1:
        raise ValueError(f"variant {spec.name!r} needs at least one tile and one column")
    return columns, -(-tiles // columns)


def _storyboard_filters(spec: VariantSpec) -> list[tuple[str, dict[str, str]]]:
    """The sprite's filters: the first frame at or after each multiple of the interval
    (select), squared pixels, scaled to the tile width, laid out row by row (tile; a last
    row that is not full is flushed at the end)."""
    width = int(_require(spec.width, "width", spec))
    interval = float(_require(spec.storyboard_interval_seconds, "storyboard_interval_seconds",
                              spec))
    if interval <= 0:
        raise ValueError(f"variant {spec.name!r} needs a positive interval")
    columns, rows = storyboard_grid(spec)
    return [("select", {"expr": f"gte(t,selected_n*{interval:.3f})"}),
            ("scale", {"w": "trunc(iw*sar/2)*2", "h": "ih"}), ("setsar", {"sar": "1"}),
            ("scale", {"w": str(width), "h": "-2"}),
            ("tile", {"layout": f"{columns}x{rows}"})]


def storyboard_command(input_url: str, spec: VariantSpec, out_dir: Path) -> list[str]:
    """One JPEG sprite of seek-preview tiles in one decode."""
    vf = ",".join(f"{name}={_filter_args(args)}" for name, args in _storyboard_filters(spec))
    source = _network_input(input_url, (MediaKind.VIDEO,))
    return _still_output(source["v:0"], out_dir / STORYBOARD_SPRITE, vf, "jpeg")


def _filter_args(args: dict[str, str]) -> str:
    """A filter's options as -vf takes them (a comma inside a value escaped)."""
    return ":".join(f"{key}={value}".replace(",", "\\,") for key, value in args.items())


def count_packets_command(path: Path | str) -> list[str]:
    """An animated image's frames, counted by its demuxer (nothing is decoded)."""
    return [FFPROBE, "-hide_banner", "-loglevel", "error", "-protocol_whitelist",
            PROBE_PROTOCOLS, "-format_whitelist", demuxer_allowlist(MediaKind.IMAGE),
            "-count_packets", "-select_streams", "v:0", "-show_entries",
            "stream=nb_read_packets", "-of", "json", str(path)]


# --- speech to text -------------------------------------------------------------------------

SPEECH_RATE = 16000  # Whisper's sample rate
# Quieter than -30 dB for 0.3 s counts as a pause between phrases: a place to cut.
SILENCE_NOISE_DB = -30
SILENCE_SECONDS = 0.3


def _filter_path(path: Path) -> str:
    """A path as a filter-graph option value (':' and '\\' are separators there)."""
    return str(path).replace("\\", "\\\\").replace(":", "\\:")


def silence_command(input_url: str, report: Path) -> list[str]:
    """Decode the audio once and write every silence's start and end to `report` (the
    ametadata filter's file, not stderr: a long track has thousands of pauses)."""
    source = _network_input(input_url, (MediaKind.AUDIO, MediaKind.VIDEO))
    graph = (f"aformat=channel_layouts=mono,aresample={SPEECH_RATE},"
             f"silencedetect=noise={SILENCE_NOISE_DB}dB:d={SILENCE_SECONDS},"
             f"ametadata=mode=print:file={_filter_path(report)}")
    out = ffmpeg.output(source["a:0"], "-", af=graph, f="null", map_metadata=-1)
    return _compile(out)


def speech_pcm_command(input_url: str, start: float, seconds: float, out: Path) -> list[str]:
    """One chunk of the audio as Whisper reads it: 16 kHz mono 16-bit PCM. The seek goes
    before the input (a ranged read of just this chunk), and ffmpeg decodes to the exact
    start, so the chunk's timings are exact offsets into the track."""
    source = _network_input(input_url, (MediaKind.AUDIO, MediaKind.VIDEO), ss=f"{start:.3f}")
    output = ffmpeg.output(source["a:0"], str(out), t=f"{seconds:.3f}", ac=1, ar=SPEECH_RATE,
                           f="s16le", map_metadata=-1, **{"c:a": "pcm_s16le"})
    return _compile(output)


# --- a rendition pod's first command --------------------------------------------------------

# Where a rendition pod's ffmpeg writes, relative to the pod's scratch directory: one
# rendition in OUT_DIR, the rungs of a shared decode each in their own (`shared_out_dir`).
OUT_DIR = "out"
# Where the probe's pod's first command copies the audio beside its rung.
AUDIO_OUT_DIR = "out-audio"
# What one ffmpeg can make beside a video rung from the same decode.
SHAREABLE = (VariantType.VIDEO, VariantType.STORYBOARD)


def shared_out_dir(index: int) -> str:
    return f"{OUT_DIR}-{index}"


@dataclass(frozen=True)
class FirstCommand:
    """A command and the directories (under the pod's scratch directory) it writes into,
    which must exist before it starts."""

    argv: list[str]
    dirs: list[str]

    def to_json(self) -> str:
        return json.dumps({"dirs": self.dirs, "argv": self.argv})


def probe_rung(task: WorkerTask) -> VariantSpec | None:
    """The video rung a probe's pod encodes while it checks the source
    (`ladder.rung_beside_probe`), if its task names one."""
    if task.type is not TaskType.PROBE:
        return None
    return next((shared.variant for shared in task.also or []
                 if shared.variant.type is VariantType.VIDEO and shared.variant.chunks is None),
                None)


def probe_audio_copy(task: WorkerTask) -> VariantSpec | None:
    """The copy of the source's AAC a probe's task asks for (`ladder.probe_audio`), which
    its first command makes beside the rung (`rung_and_audio_command`)."""
    if task.type is not TaskType.PROBE:
        return None
    return next((shared.variant for shared in task.also or []
                 if shared.variant.type is VariantType.AUDIO and shared.variant.audio_copy
                 and shared.variant.audio_codec == "aac"), None)


def probe_first_command(task: WorkerTask, rung: VariantSpec) -> FirstCommand:
    """The rung a probe's pod encodes while it checks the source, with the audio copy its
    task asks for when it asks for one."""
    audio = probe_audio_copy(task)
    if audio is None:
        return FirstCommand(video_command(task.input_url, rung, Path(OUT_DIR)), [OUT_DIR])
    return FirstCommand(rung_and_audio_command(task.input_url, rung, audio, Path(OUT_DIR),
                                               Path(AUDIO_OUT_DIR)),
                        [OUT_DIR, AUDIO_OUT_DIR])


def first_command(task: WorkerTask) -> FirstCommand | None:
    """The ffmpeg a rendition task runs first, writing under the pod's scratch directory
    (its working directory); None where the first step is not one command known in advance
    (a still may need a second try, a chunk's range comes from its pod's index, speech and
    generation run models). A probe's is the rung it encodes while it checks the source
    (`probe_rung`); a probe without one downloads first.

    The operator puts it in the pod's environment (`podenv.LAUNCH_ENV`); the worker starts
    it before loading pydantic and our models (0.15 s of a pod's start), and keeps it only
    if it is exactly this function's answer for the task the worker then reads."""
    rung = probe_rung(task)
    if rung is not None:
        try:
            return probe_first_command(task, rung)
        except ValueError:
            return None
    spec = task.variant
    if (spec is None or spec.chunks is not None
            or TaskType.producing(spec.type) is not task.type):
        return None
    try:
        if task.also:
            rungs = [spec, *(shared.variant for shared in task.also)]
            if any(r.type not in SHAREABLE or r.chunks is not None for r in rungs):
                return None
            dirs = [shared_out_dir(index) for index in range(len(rungs))]
            return FirstCommand(shared_video_command(task.input_url, [
                (rung, Path(out)) for rung, out in zip(rungs, dirs, strict=True)]), dirs)
        if spec.type is VariantType.VIDEO:
            return FirstCommand(video_command(task.input_url, spec, Path(OUT_DIR)), [OUT_DIR])
        if spec.type is VariantType.AUDIO:
            return FirstCommand(audio_command(task.input_url, spec, Path(OUT_DIR)), [OUT_DIR])
    except ValueError:  # the worker reports the invalid task itself
        return None
    return None
