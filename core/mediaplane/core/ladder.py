"""The rendition ladder and its resolution against a probed source.

Pure functions: the operator calls `plan_variants` once per asset after the probe, and
unit tests call it directly. Never upscales: a rung taller (or wider) than the source is
dropped, and a source smaller than every rung gets one rung at its own size.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from mediaplane.core.tasks import MediaKind, ProbeResult, VariantSpec, VariantType


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VideoRung(_Config):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,20}$")
    height: int = Field(ge=16, le=4320)
    video_bitrate_kbps: int = Field(ge=50, le=100_000)


class AudioRung(_Config):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,20}$")
    codec: Literal["aac", "opus"]
    bitrate_kbps: int = Field(ge=16, le=512)


class ImageRung(_Config):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,20}$")
    width: int = Field(ge=16, le=16384)
    format: Literal["webp", "jpeg"]


class Storyboard(_Config):
    """Seek previews of a video: one sprite of tiles and a WebVTT storyboard over it.

    A tile every `interval_seconds`, but never more than `max_tiles` (a long video gets
    tiles further apart), so the sprite stays one image of bounded size."""

    tile_width: int = Field(default=160, ge=32, le=640)
    interval_seconds: float = Field(default=2.0, gt=0, le=3600)
    max_tiles: int = Field(default=100, ge=1, le=400)
    columns: int = Field(default=10, ge=1, le=40)


class Chunking(_Config):
    """Segment-parallel encoding of long videos: a source at least `min_seconds` long has
    its video rungs (`rungs`: all of them, or only the lowest, which decides when viewers
    can start) encoded as chunks of about `chunk_seconds` by parallel pods, at most
    `parallelism` per rung at once. Shorter sources keep one pod per rung: a chunk costs a
    pod start and a seek, which only pay off when there are workers to spread over."""

    min_seconds: float = Field(default=300.0, ge=0)
    chunk_seconds: int = Field(default=60, ge=4, le=3600)
    parallelism: int = Field(default=8, ge=1, le=100)
    rungs: Literal["all", "lowest"] = "all"
    # The video's audio rendition, when it is encoded, is split the same way: one encoder
    # is single-threaded and takes about 1.6 CPU-minutes per hour of sound, longer than the
    # chunked rungs. A copied one is not split (a copy of an hour takes seconds).
    audio: bool = True


class Ladder(_Config):
    """Configurable per install (operator setting `MEDIAPLANE_LADDER_FILE`, YAML or JSON)."""

    segment_seconds: int = Field(default=4, ge=1, le=20)
    video: tuple[VideoRung, ...] = (
        VideoRung(name="1080p", height=1080, video_bitrate_kbps=5000),
        VideoRung(name="720p", height=720, video_bitrate_kbps=2800),
        VideoRung(name="480p", height=480, video_bitrate_kbps=1400),
        VideoRung(name="360p", height=360, video_bitrate_kbps=800),
        VideoRung(name="240p", height=240, video_bitrate_kbps=400),
    )
    video_audio: AudioRung = AudioRung(name="audio", codec="aac", bitrate_kbps=128)
    # Copy a video's audio instead of encoding it when it already is AAC-LC stereo at
    # 44.1 or 48 kHz and at most 1.5x the rung's bitrate (what cameras and phones record).
    # An encode of an hour of audio takes one core longer than the chunked video rung does.
    audio_passthrough: bool = True
    poster: bool = True
    poster_at_seconds: float = Field(default=1.0, ge=0)
    # None = no seek previews.
    storyboard: Storyboard | None = Storyboard()
    # None = every rung in one pod, whatever the duration.
    chunking: Chunking | None = Chunking()
    audio: tuple[AudioRung, ...] = (
        AudioRung(name="aac-128k", codec="aac", bitrate_kbps=128),
        AudioRung(name="opus-96k", codec="opus", bitrate_kbps=96),
    )
    image: tuple[ImageRung, ...] = (
        ImageRung(name="w1280-webp", width=1280, format="webp"),
        ImageRung(name="w640-webp", width=640, format="webp"),
        ImageRung(name="w320-webp", width=320, format="webp"),
        ImageRung(name="w640-jpeg", width=640, format="jpeg"),
    )


def _even(value: int) -> int:
    """H.264 in 4:2:0 needs even dimensions."""
    return max(2, value - value % 2)


def plan_video(ladder: Ladder, probe: ProbeResult) -> list[VariantSpec]:
    source_height = probe.height or 0
    rungs = [r for r in ladder.video if r.height <= source_height]
    if not rungs and source_height > 0:
        smallest = min(ladder.video, key=lambda r: r.height)
        rungs = [VideoRung(name=f"{_even(source_height)}p", height=_even(source_height),
                           video_bitrate_kbps=smallest.video_bitrate_kbps)]
    ordered = sorted(rungs, key=lambda r: r.height)
    specs = [
        VariantSpec(name=r.name, type=VariantType.VIDEO, height=r.height,
                    video_bitrate_kbps=r.video_bitrate_kbps,
                    segment_seconds=ladder.segment_seconds,
                    chunks=plan.chunks if plan else None,
                    chunk_seconds=plan.seconds if plan else None,
                    chunk_parallelism=plan.parallelism if plan else None)
        for r in ordered
        for plan in [chunk_plan(ladder, probe, lowest=r is ordered[0])]
    ]
    if probe.has_audio:
        a = ladder.video_audio
        copy = ladder.audio_passthrough and copyable(a, probe)
        split = (chunk_plan(ladder, probe, lowest=True)
                 if ladder.chunking and ladder.chunking.audio and not copy and a.codec == "aac"
                 else None)
        specs.append(VariantSpec(name=a.name, type=VariantType.AUDIO, audio_codec=a.codec,
                                 audio_bitrate_kbps=a.bitrate_kbps, audio_copy=copy,
                                 segment_seconds=ladder.segment_seconds,
                                 chunks=split.chunks if split else None,
                                 chunk_seconds=split.seconds if split else None,
                                 chunk_parallelism=split.parallelism if split else None))
    if ladder.poster:
        at = min(ladder.poster_at_seconds, (probe.duration_seconds or 0) / 2)
        specs.append(VariantSpec(name="poster", type=VariantType.POSTER, poster_at_seconds=at,
                                 image_format="jpeg"))
    storyboard = plan_storyboard(ladder.storyboard, probe)
    if storyboard is not None:
        specs.append(storyboard)
    return specs


PASSTHROUGH_SAMPLE_RATES = (44100, 48000)
PASSTHROUGH_BITRATE_FACTOR = 1.5


def copyable(rung: AudioRung, probe: ProbeResult) -> bool:
    """Whether the source's audio is already what `rung` would make of it. An unknown
    bitrate is not: it could be anything."""
    return _copyable(rung.codec, rung.bitrate_kbps, probe)


def _copyable(codec: str, bitrate_kbps: int, probe: ProbeResult) -> bool:
    return (codec == "aac" and probe.audio_codec == "aac" and probe.audio_profile == "LC"
            and probe.audio_channels == 2
            and probe.audio_sample_rate in PASSTHROUGH_SAMPLE_RATES
            and probe.audio_bitrate is not None
            and probe.audio_bitrate <= bitrate_kbps * 1000 * PASSTHROUGH_BITRATE_FACTOR)


# The probe's pod copies a video's audio only up to this length: the copy is a read of the
# file, and the probe's verdict, which the rest of the asset waits for, comes after it.
BESIDE_PROBE_MAX_SECONDS = 600.0


def probe_audio(ladder: Ladder) -> VariantSpec | None:
    """The audio rendition a video's probe pod makes once it accepts the source, when the
    source's sound can be copied (`audio_beside_probe`); None if the ladder never copies.

    The audio is half of what makes a video playable, and its own pod (a worker's start,
    a Job's and a pod's objects) cost more than the copy: its CPU landed while the lowest
    rung encodes, and delayed it. The probe has just read the file and knows its streams."""
    if not ladder.audio_passthrough:
        return None
    a = ladder.video_audio
    return VariantSpec(name=a.name, type=VariantType.AUDIO, audio_codec=a.codec,
                       audio_bitrate_kbps=a.bitrate_kbps, audio_copy=True,
                       segment_seconds=ladder.segment_seconds)


def audio_beside_probe(spec: VariantSpec, probe: ProbeResult) -> bool:
    """Whether the probe's pod makes `spec` (`probe_audio`) for this source: a copy of its
    sound, not too long. The plan's audio rendition is then `spec` itself, so the operator
    and the worker, which both ask, agree on what was made."""
    return (spec.type is VariantType.AUDIO and bool(spec.audio_copy) and probe.has_audio
            and _copyable(str(spec.audio_codec), spec.audio_bitrate_kbps or 0, probe)
            and probe.duration_seconds is not None
            and probe.duration_seconds <= BESIDE_PROBE_MAX_SECONDS)


class ChunkPlan(NamedTuple):
    chunks: int
    seconds: int
    parallelism: int


def chunk_plan(ladder: Ladder, probe: ProbeResult, *, lowest: bool) -> ChunkPlan | None:
    """How one video rung is split (None for a short source: one pod). Chunks are a whole
    number of segments long, so each starts on the keyframe grid every rung shares."""
    config = ladder.chunking
    duration = probe.duration_seconds or 0.0
    if config is None or duration < config.min_seconds or (config.rungs == "lowest"
                                                             and not lowest):
        return None
    segment = ladder.segment_seconds
    seconds = max(1, round(config.chunk_seconds / segment)) * segment
    # The last chunk runs to the end and is 0.5 to 1.5 chunks long: a container that
    # claims a little more than its video holds still leaves that chunk frames to encode.
    chunks = math.ceil(round((duration - seconds / 2) / seconds, 6))
    if chunks < 2:
        return None
    return ChunkPlan(chunks, seconds, min(config.parallelism, chunks))


def plan_storyboard(config: Storyboard | None, probe: ProbeResult) -> VariantSpec | None:
    """The storyboard of a video of known duration: how many tiles, how far apart."""
    duration = probe.duration_seconds or 0.0
    if config is None or duration <= 0 or not probe.has_video:
        return None
    # Milliseconds, rounded up: never more tiles than max_tiles.
    interval = math.ceil(max(config.interval_seconds, duration / config.max_tiles) * 1000) / 1000
    tiles = max(1, math.ceil(round(duration / interval, 6)))
    return VariantSpec(name="storyboard", type=VariantType.STORYBOARD,
                       width=config.tile_width, image_format="jpeg",
                       storyboard_interval_seconds=interval,
                       storyboard_columns=min(config.columns, tiles), storyboard_tiles=tiles)


def plan_image(ladder: Ladder, probe: ProbeResult) -> list[VariantSpec]:
    source_width = probe.width or 0
    rungs = [r for r in ladder.image if r.width <= source_width]
    if not rungs and source_width > 0:
        rungs = [ImageRung(name=f"w{source_width}-webp", width=source_width, format="webp")]
    return [VariantSpec(name=r.name, type=VariantType.IMAGE, width=r.width, image_format=r.format)
            for r in rungs]


def plan_audio(ladder: Ladder, probe: ProbeResult) -> list[VariantSpec]:
    del probe  # every audio rung applies; bitrates are not "upscaled" in a meaningful way
    return [VariantSpec(name=r.name, type=VariantType.AUDIO, audio_codec=r.codec,
                        audio_bitrate_kbps=r.bitrate_kbps, segment_seconds=ladder.segment_seconds)
            for r in ladder.audio]


def plan_variants(kind: MediaKind, ladder: Ladder, probe: ProbeResult) -> list[VariantSpec]:
    """Every variant the asset gets, lowest video rung first (it becomes playable first)."""
    planners = {MediaKind.VIDEO: plan_video, MediaKind.IMAGE: plan_image,
                MediaKind.AUDIO: plan_audio}
    return planners[kind](ladder, probe)


def speculative_rung(ladder: Ladder) -> VariantSpec:
    """The video rung worth starting before the probe has spoken: the ladder's lowest, as
    `plan_video` plans it for any source at least that tall (most sources are)."""
    lowest = min(ladder.video, key=lambda r: r.height)
    return VariantSpec(name=lowest.name, type=VariantType.VIDEO, height=lowest.height,
                       video_bitrate_kbps=lowest.video_bitrate_kbps,
                       segment_seconds=ladder.segment_seconds)


def probe_rung_limit(ladder: Ladder) -> float:
    """The longest source whose lowest rung the probe's pod encodes while it checks the
    source (`rung_beside_probe`): longer ones are split into chunks (`chunk_plan`), and the
    probe's verdict, which only the pod's end reports, must not wait for a long encode."""
    if ladder.chunking is None:
        return BESIDE_PROBE_MAX_SECONDS
    return min(BESIDE_PROBE_MAX_SECONDS, ladder.chunking.min_seconds)


def rung_beside_probe(spec: VariantSpec, probe: ProbeResult, max_seconds: float) -> bool:
    """Whether the probe's pod keeps the video rung it started before its verdict
    (`speculative_rung`) for this source: one the plan wants as it is, a whole rung (not
    chunks) no taller than the picture, of a source shorter than `max_seconds`
    (`probe_rung_limit`). The operator checks the plan itself (`made_by_probe`); this is
    what the worker can tell without the ladder, to stop an encode that would be thrown
    away."""
    return (spec.type is VariantType.VIDEO and spec.chunks is None and probe.has_video
            and (probe.height or 0) >= (spec.height or 0)
            and probe.duration_seconds is not None and probe.duration_seconds < max_seconds)


def first_wave(plan: list[VariantSpec]) -> set[str]:
    """The variants that make an asset playable, to run before the rest.

    On a small cluster every extra rung (or poster) running at once slows the one that
    decides when viewers can start; the rest of the ladder follows once these are done.
    """
    videos = [v for v in plan if v.type is VariantType.VIDEO]
    wave = {v.name for v in plan if v.type is VariantType.AUDIO}
    if videos:
        wave.add(min(videos, key=lambda v: v.height or 0).name)
        return wave
    return {v.name for v in plan}


def shared_decode(plan: list[VariantSpec]) -> list[VariantSpec]:
    """The video rungs (lowest first) and the storyboard one ffmpeg makes from a single
    decode of the source (the first rung's TranscodeJob runs the Job); empty unless a
    video rung and something else qualify.

    Decoding is a large part of each rung's cost (a sixth of the ladder's CPU measured
    with `bench.ladder_schedule`) and most of the storyboard's, paid once per variant when
    each has its own pod. The first wave keeps its own pods (it decides when viewers can
    start); rungs above 1080p, and beyond the sixth, run alone; so does every variant of a
    long video (one split into chunks): one pod encoding an hour on every rung would undo
    the parallel Jobs' speed. The poster seeks to its frame, and keeps its own pod.
    """
    if any(v.chunks is not None for v in plan if v.type is VariantType.VIDEO):
        return []  # a long video: its rungs run in parallel pods, across nodes if there are
    wave = first_wave(plan)
    rungs = sorted((v for v in plan if v.type is VariantType.VIDEO and v.name not in wave
                    and (v.height or 0) <= SHARED_MAX_HEIGHT),
                   key=lambda v: v.height or 0)[:SHARED_MAX_RUNGS]
    group = rungs + [v for v in plan if v.type is VariantType.STORYBOARD][:1]
    return group if rungs and len(group) >= 2 else []


# One pod holds every shared encoder (a 4K one wants its memory to itself), and its result
# lists them all within a termination message's 4096 bytes (about 200 bytes a rung).
SHARED_MAX_HEIGHT = 1080
SHARED_MAX_RUNGS = 6
