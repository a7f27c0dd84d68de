"""Request and response bodies of the contract (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mediaplane.core.names import ASSET_ID_PATTERN
from mediaplane.core.states import (
    AssetPhase,
    CaptionReview,
    CaptionSource,
    SourceOrigin,
    VariantState,
)
from mediaplane.core.tasks import AudioFormat, GenerationKind, MediaKind, VariantType

T = TypeVar("T")


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True,
                              extra="forbid", frozen=True)


class Envelope(BaseModel, Generic[T]):
    data: T


class ListEnvelope(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        default=None, serialization_alias="nextCursor",
        description="pass as `cursor` for the next page; absent on the last page")


class ErrorBody(Wire):
    code: str = Field(description="the contract's error code, e.g. media.transcoding")
    message: str
    request_id: str
    details: list[dict[str, object]] | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


# Requests


class UploadUrlRequest(Wire):
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="hex SHA-256 of the file")
    size_bytes: int = Field(gt=0, le=2**53, description="exact size in bytes")
    mime: str = Field(min_length=3, max_length=127, pattern=r"^[\w.+-]+/[\w.+-]+(;.*)?$")
    filename: str = Field(min_length=1, max_length=255)
    kind: MediaKind | None = Field(default=None, description="inferred from mime if absent")


class FinalizeRequest(Wire):
    etag: str = Field(min_length=1, max_length=128,
                      description="the ETag S3 answered the upload with")


class CaptionRequest(Wire):
    language: str = Field(min_length=2, max_length=35, description="BCP 47, e.g. en-US")
    content: str = Field(min_length=1, description="WebVTT or SubRip text")
    label: str | None = Field(default=None, max_length=128)


class GenerateCaptionRequest(Wire):
    asset_id: str = Field(pattern=ASSET_ID_PATTERN.pattern, description="the asset to caption")
    language: str = Field(min_length=1, max_length=35,
                          description="BCP 47 tag of the track, e.g. en-US. Speech in another "
                          "language is translated when English is asked for (the only "
                          "language Whisper translates into), and refused otherwise.")
    review_required: bool = Field(default=False, description="store the track with "
                                  "approved: false until approved (PATCH …/captions/{lang})")


class CaptionReviewRequest(Wire):
    approved: bool = Field(description="true: the track appears in the HLS and DASH "
                           "manifests; false: it is rejected and never does")
class GenerateImageRequest(Wire):
    prompt: str = Field(min_length=1, max_length=8000, description="what to draw")
    size: str = Field(min_length=1, max_length=32, description="a size name of "
                      "GET /api/v1/media/ai/capabilities, e.g. medium")
    style: str | None = Field(default=None, max_length=64, description="a style name")
    aspect_ratio: str | None = Field(default=None, max_length=16,
                                     description="W:H, e.g. 16:9 (default 1:1)")
    model: str | None = Field(default=None, max_length=128,
                              description="one of the image models; default the first")


class GenerateAudioRequest(Wire):
    text: str = Field(min_length=1, max_length=8000, description="what to say")
    voice: str = Field(min_length=1, max_length=128, description="a voice id")
    language: str = Field(min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]"
                          r"{1,8})*$", description="BCP 47; must be the voice's language")
    format: AudioFormat = Field(default=AudioFormat.MP3, description="mp3, wav, ogg (Opus) "
                                "or m4a (AAC)")


# Responses


class UploadUrlResponse(Wire):
    asset_id: str
    upload_url: str | None = Field(description="POST the file here as multipart/form-data; "
                                   "null when the bytes are already stored")
    upload_fields: dict[str, str] = Field(description="form fields to send before the file")
    expires_at: datetime | None
    upload_required: bool = Field(description="false when this sha256 is already uploaded "
                                  "for the tenant (dedup): no upload is needed")
    status: AssetPhase


class Streams(Wire):
    hls: str | None = Field(description="signed HLS master playlist URL")
    dash: str | None = Field(description="signed DASH MPD URL")
    expires_at: datetime | None


class Variant(Wire):
    name: str
    type: VariantType
    state: VariantState
    width: int | None = None
    height: int | None = None
    bandwidth: int | None = None
    codecs: str | None = None
    duration_seconds: float | None = None
    size_bytes: int | None = None
    retries: int = Field(default=0, description="retries of this variant so far (POST "
                         "…/variants/{name}/retry); `state` is the latest one's")
    error: str | None = Field(default=None, description="why the variant failed")
    hls: str | None = Field(default=None, description="signed HLS playlist of this rendition")
    dash: str | None = Field(default=None, description="signed DASH MPD of this rendition")
    url: str | None = Field(default=None, description="presigned URL of a single-file variant; "
                            "for the storyboard, the signed WebVTT of seek previews (its "
                            "cues name regions of a presigned sprite: `…#xywh=x,y,w,h`)")


class Caption(Wire):
    language: str
    url: str
    approved: bool
    label: str | None = None
    source: CaptionSource
    model: str | None = Field(default=None, description="generated tracks: the speech model")
    review: CaptionReview | None = Field(default=None, description="generated tracks: a "
                                         "person's verdict, if one was given")


class Transcript(Wire):
    language: str
    url: str = Field(description="the plain-text transcript, a signed link (15 minutes)")


class TranscriptDetail(Transcript):
    segments_url: str | None = Field(default=None, description="JSON with timed segments, "
                                     "a signed link (15 minutes)")
    expires_at: datetime
    model: str | None = None
    text: str


class CaptionJob(Wire):
    """A generated track's state (the answer of POST /ai/generate-caption)."""

    asset_id: str
    language: str
    model: str
    state: VariantState
    review_required: bool
    approved: bool | None = Field(default=None, description="once the track exists")
    chunks: int | None = None
    chunks_done: int | None = None
    message: str | None = None
    url: str | None = Field(default=None, description="the WebVTT track once it exists")


class Generation(Wire):
    type: GenerationKind
    model: str
    state: VariantState = Field(description="the generation Job: pending, running, "
                                "succeeded, failed")
    reason: str | None = Field(default=None, description="why it failed, e.g. "
                               "ProviderRefused")
    message: str | None = Field(default=None, description="the service's own reason")
    provider_seconds: float | None = Field(default=None, description="time in the model")


class ImageCapabilities(Wire):
    available: bool = Field(description="false: generate-image answers 503 ai.unavailable")
    provider: str | None
    models: list[str]
    sizes: dict[str, int] = Field(description="size name -> long side in pixels")
    aspect_ratios: list[str]
    styles: list[str]
    max_prompt_chars: int


class VoiceInfo(Wire):
    id: str
    language: str
    description: str | None = None


class SpeechCapabilities(Wire):
    available: bool
    voices: list[VoiceInfo]
    formats: list[AudioFormat]
    max_text_chars: int


class BudgetInfo(Wire):
    limit: int
    remaining: int
    period_seconds: int
    renews_at: datetime


class AiCapabilities(Wire):
    image: ImageCapabilities
    speech: SpeechCapabilities
    budgets: dict[str, BudgetInfo] = Field(description="the caller's tenant, per kind")


class MediaAsset(Wire):
    id: str
    kind: MediaKind
    source: SourceOrigin
    status: AssetPhase
    playable: bool
    mime: str
    filename: str | None = None
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    sha256: str | None = Field(description="null while an AI asset is being generated")
    size_bytes: int | None
    variants: list[Variant]
    captions: list[Caption]
    transcript: Transcript | None
    streams: Streams | None = Field(description="signed for the caller; null until playable")
    player: str | None = Field(default=None, description="signed link to the player page "
                               "(video, audio or image); null until playable")
    created_at: datetime | None = None
    quarantine_reason: str | None = None
    generation: Generation | None = Field(default=None, description="AI assets: how the "
                                          "source is made, and how far it got")
