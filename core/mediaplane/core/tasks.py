"""The protocol between the operator and the worker.

The operator puts one `WorkerTask` (JSON) in the worker's environment; the worker writes
one `WorkerResult` (JSON) to its termination message. The worker holds no credentials:
only a presigned GET for its input and a presigned POST policy for its output prefix.
Termination messages are capped at 4096 bytes by Kubernetes, so results stay compact.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mediaplane.core.podenv import LAUNCH_ENV as LAUNCH_ENV
from mediaplane.core.podenv import RESULT_PATH_ENV as RESULT_PATH_ENV
from mediaplane.core.podenv import SCRATCH_ENV as SCRATCH_ENV
from mediaplane.core.podenv import TASK_ENV as TASK_ENV

# Speech-to-text pods: the model directory (a mounted volume), and the chunk of an Indexed
# Job, which the Job controller gives each pod (downward API, from its completion index).
SPEECH_MODEL_ENV = "MEDIAPLANE_SPEECH_MODEL_DIR"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
MAX_RESULT_BYTES = 4096
# A CMAF rendition's manifests, beside its segments under the variant's prefix (the names
# ffmpeg's dash muxer gives them; the operator writes them itself for a joined rendition).
RENDITION_MPD = "manifest.mpd"
RENDITION_PLAYLIST = "media_0.m3u8"
# Generation Jobs only: the image service's key (a secretKeyRef), the voices volume, and the
# exit code of a permanent refusal by the service (the Job's podFailurePolicy stops there).
PROVIDER_KEY_ENV = "MEDIAPLANE_PROVIDER_API_KEY"
VOICES_DIR_ENV = "MEDIAPLANE_VOICES_DIR"
EXIT_PROVIDER_REFUSED = 6


class MediaKind(StrEnum):
    VIDEO = "video"
    IMAGE = "image"
    AUDIO = "audio"


class VariantType(StrEnum):
    """What one variant of an asset is (`status.variants[].type`)."""

    VIDEO = "video"  # one H.264 rung, CMAF
    AUDIO = "audio"  # one AAC or Opus rendition, CMAF
    IMAGE = "image"  # one resized still
    POSTER = "poster"  # a still frame of a video
    STORYBOARD = "storyboard"  # seek previews: a sprite of tiles and a WebVTT naming them


class TaskType(StrEnum):
    """What one worker does: the probe, or producing one variant (same names).

    `caption` is a TranscodeJob's task only: its Jobs run `speech-plan` (cut points at
    silences) and `speech-chunk` (one pod per chunk of an Indexed Job)."""

    PROBE = "probe"
    VIDEO = "video"
    AUDIO = "audio"
    IMAGE = "image"
    POSTER = "poster"
    STORYBOARD = "storyboard"
    CAPTION = "caption"
    SPEECH_PLAN = "speech-plan"
    SPEECH_CHUNK = "speech-chunk"
    GENERATE = "generate"  # makes the source object of an AI asset (`generation.py`)

    @classmethod
    def producing(cls, variant: VariantType) -> TaskType:
        return cls(variant.value)


class _Model(BaseModel):
    """camelCase on the wire, so results drop straight into the custom resources' status."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel,
                              populate_by_name=True, serialize_by_alias=True)


class PresignedPost(_Model):
    """A browser-style POST policy: `fields` plus `file` posted to `url`."""

    url: str
    fields: dict[str, str]
    key_prefix: str = Field(description="every key the policy accepts starts with this")


class Expected(_Model):
    """What the uploader declared; the probe checks the bytes against it."""

    sha256: str
    size_bytes: int
    mime: str
    kind: MediaKind


class VariantSpec(_Model):
    """One rung of the ladder, already resolved against the probed source."""

    name: str
    type: VariantType
    height: int | None = None  # video rungs: target height, width follows the aspect
    width: int | None = None  # images: target width
    video_bitrate_kbps: int | None = None
    audio_bitrate_kbps: int | None = None
    audio_codec: Literal["aac", "opus"] | None = None
    # The source's AAC is copied, not re-encoded: it already is what the rung would make
    # (see `ladder.audio_passthrough`). A long video's audio then costs a read, not an encode.
    audio_copy: bool = False
    image_format: Literal["webp", "jpeg"] | None = None
    segment_seconds: int = 4
    poster_at_seconds: float | None = None
    # Storyboards: one tile every `storyboard_interval_seconds`, `width` wide, laid out in
    # rows of `storyboard_columns`; `storyboard_tiles` is how many the duration needs.
    storyboard_interval_seconds: float | None = None
    storyboard_columns: int | None = None
    storyboard_tiles: int | None = None
    # Segment-parallel rungs of long videos, and their encoded audio: `chunks` pods of an
    # Indexed Job each encode `chunk_seconds` (a multiple of `segment_seconds`, so every
    # chunk starts on a segment boundary and a keyframe), at most `chunk_parallelism` at
    # once; the operator joins their segments into one rendition. None: one pod for all.
    chunks: int | None = Field(default=None, ge=2)
    chunk_seconds: int | None = Field(default=None, ge=1)
    chunk_parallelism: int | None = Field(default=None, ge=1)

    def chunk_range(self, index: int) -> tuple[float, float | None]:
        """(start, end) in seconds of the chunk `index`; the last one runs to the end of
        the source (None), whatever the probe said its duration was."""
        if self.chunks is None or self.chunk_seconds is None:
            raise ValueError(f"variant {self.name!r} is not split into chunks")
        if not 0 <= index < self.chunks:
            raise ValueError(f"chunk {index} of a variant split into {self.chunks}")
        start = float(index * self.chunk_seconds)
        return start, (None if index == self.chunks - 1 else start + self.chunk_seconds)

    def chunk_first_segment(self, index: int) -> int:
        """The number (from 1) of the chunk's first segment in the joined rendition."""
        if self.chunk_seconds is None:
            raise ValueError(f"variant {self.name!r} is not split into chunks")
        return index * (self.chunk_seconds // self.segment_seconds) + 1


class SpeechTask(_Model):
    """A caption job's speech work: plan the chunks, or transcribe the pod's own chunk."""

    language: str = Field(description="the requested BCP 47 tag")
    whisper_language: str = Field(description="its Whisper code, e.g. en")
    duration_seconds: float
    chunks: int = Field(ge=1, description="how many chunks the track is cut into")
    cuts: list[float] = Field(default_factory=list,
                              description="chunk boundaries (chunk tasks); empty: one chunk")
    beam_size: int = Field(default=5, ge=1, le=10)
    cpu_threads: int = Field(default=0, ge=0, description="0: CTranslate2 decides")


class SharedOutput(_Model):
    """One more variant (a video rung, the storyboard) a video task makes from the same
    decode of the source, and the POST policy of that variant's own prefix."""

    variant: VariantSpec
    output: PresignedPost
    # For the video rung a probe's pod encodes while it checks the source: kept only for a
    # source shorter than this (`ladder.rung_beside_probe`); a longer one gets chunks.
    max_source_seconds: float | None = None


class WorkerTask(_Model):
    type: TaskType
    input_url: str = Field(default="", description="presigned GET; empty for generation")
    output: PresignedPost | None = None
    expected: Expected | None = None
    variant: VariantSpec | None = None
    # Variants made by the same ffmpeg as `variant` (one decode, a split filter): decoding
    # is a large share of each one's cost, and one pod replaces several. For a probe: the
    # audio its pod copies once it accepts the source (`ladder.probe_audio`), and the lowest
    # rung it encodes while it checks the source (`ladder.rung_beside_probe`).
    also: list[SharedOutput] | None = None
    # Upload media segments while ffmpeg still writes the rendition (`segmentstream`). Off
    # unless the operator says so: a speculative encode, whose source may yet be refused,
    # stores nothing before its end (and a task from an operator that predates the field
    # keeps its old behaviour).
    stream_segments: bool = False
    speech: SpeechTask | None = None
    generation: GenerationTask | None = None


# --- generation (AI assets) ------------------------------------------------------------------

class GenerationKind(StrEnum):
    IMAGE = "image"
    SPEECH = "speech"


class ImageProviderKind(StrEnum):
    """Wire protocols of the image services mediaplane can call."""

    OPENAI = "openai"  # POST {url}/v1/images/generations, response_format b64_json
    AUTOMATIC1111 = "automatic1111"  # POST {url}/sdapi/v1/txt2img (AUTOMATIC1111, Forge)


class AudioFormat(StrEnum):
    MP3 = "mp3"
    WAV = "wav"
    OGG = "ogg"  # Opus in Ogg
    M4A = "m4a"  # AAC in MP4

    @property
    def mime(self) -> str:
        return {"mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg",
                "m4a": "audio/mp4"}[self.value]


class ImageProvider(_Model):
    """Where and how the worker calls the image service; the key comes from a Secret."""

    kind: ImageProviderKind
    url: str
    model: str
    timeout_seconds: float = 120.0
    attempts: int = 3
    sizes: tuple[str, ...] = Field(default=(), description="WxH the service accepts; empty: "
                                   "any multiple of 64 (AUTOMATIC1111)")
    steps: int | None = None  # AUTOMATIC1111 sampling steps
    negative_prompt: str | None = None


class ImageJob(_Model):
    width: int
    height: int
    style_prompt: str | None = Field(default=None, description="appended to the prompt")
    provider: ImageProvider


class SpeechJob(_Model):
    voice: str
    language: str
    format: AudioFormat
    model_path: str | None = Field(default=None, description="a Piper .onnx on disk "
                                   "(its .onnx.json beside it)")
    package: str | None = Field(default=None, description="a Python module shipping the "
                                "voice, with model_path() and config_path()")


class GenerationTask(_Model):
    kind: GenerationKind
    prompt: str = Field(description="the image prompt or the text to speak")
    target: PresignedPost = Field(description="a POST policy for exactly one key: the "
                                  "asset's source object (key_prefix is that key)")
    mime: str
    image: ImageJob | None = None
    speech: SpeechJob | None = None


class ProbeResult(_Model):
    detected_mime: str
    format_name: str
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    # The first audio stream's shape, for the decision to copy it (`ladder.audio_passthrough`).
    audio_profile: str | None = None
    audio_channels: int | None = None
    audio_sample_rate: int | None = None
    audio_bitrate: int | None = None
    has_video: bool = False
    has_audio: bool = False


class StoredOutput(_Model):
    """What a worker stored and what a master playlist says of it: shared by a whole
    variant and by one chunk of a segment-parallel rung."""

    files: int
    bytes: int
    bandwidth: int | None = None
    width: int | None = None
    height: int | None = None
    codecs: str | None = None


class VariantOutput(StoredOutput):
    """Enough to list the rendition in an HLS master and a DASH MPD."""

    name: str
    duration_seconds: float | None = None
    playlist: str | None = Field(default=None, description="HLS media playlist, relative")
    mpd: str | None = Field(default=None, description="DASH MPD of this rendition, relative")
    file: str | None = Field(default=None, description="single-file output (stills), or a "
                             "storyboard's WebVTT (its sprite is named inside)")


class RenditionChunk(StoredOutput):
    """What one chunk pod of a segment-parallel rung stored, beside its segments, as
    `chunks/<index>.json` under the variant's prefix: the operator joins these."""

    index: int = Field(ge=0)
    playlist: str = Field(description="the chunk's HLS media playlist, segments renumbered")
    mpd: str = Field(description="the chunk's MPD, its SegmentTemplate's startNumber set")

    @staticmethod
    def file_name(index: int) -> str:
        return f"chunks/{index:05d}.json"


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    QUARANTINED = "quarantined"


class ProbeOutcome(_Model):
    kind: Literal["probe"] = "probe"
    verdict: Verdict
    reason: str | None = Field(default=None, description="CamelCase, e.g. ChecksumMismatch")
    message: str | None = None
    probe: ProbeResult | None = None
    also: list[VariantOutput] | None = Field(
        default=None, description="what the probe's pod made once it accepted the source "
        "(`ladder.probe_audio`, `ladder.rung_beside_probe`): the variants of "
        "`WorkerTask.also` it could make")


class VariantOutcome(_Model):
    kind: Literal["variant"] = "variant"
    output: VariantOutput
    also: list[VariantOutput] | None = Field(
        default=None, description="the variants of `WorkerTask.also`, in the same order")


class VariantChunkOutcome(_Model):
    kind: Literal["variant-chunk"] = "variant-chunk"
    index: int
    file: str = Field(description="the chunk's RenditionChunk JSON, relative to the prefix")
    files: int
    bytes: int


class SpeechPlanOutcome(_Model):
    kind: Literal["speech-plan"] = "speech-plan"
    duration_seconds: float
    cuts: list[float] = Field(default_factory=list)
    silences: int = Field(default=0, description="silences found in the track")


class SpeechChunkOutcome(_Model):
    kind: Literal["speech-chunk"] = "speech-chunk"
    index: int
    file: str = Field(description="the chunk's transcript JSON, relative to the output prefix")
    cues: int
    language: str | None = None
    translated: bool = False
    seconds: float | None = Field(default=None, description="time spent transcribing")


class GeneratedObject(_Model):
    """What a generation Job stored: the digest and size the probe then checks."""

    sha256: str
    size_bytes: int
    etag: str
    mime: str
    provider_seconds: float | None = Field(default=None, description="time spent in the "
                                           "model (image provider or Piper)")


class GenerationOutcome(_Model):
    kind: Literal["generation"] = "generation"
    generated: GeneratedObject


WorkerResult = Annotated[ProbeOutcome | VariantOutcome | VariantChunkOutcome | SpeechPlanOutcome
                         | SpeechChunkOutcome | GenerationOutcome,
                         Field(discriminator="kind")]
