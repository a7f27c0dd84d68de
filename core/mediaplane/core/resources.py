"""The custom resources as typed models: MediaAsset and TranscodeJob, spec and status.

Every layer reads and writes the resources through these: the operator computes a
`MediaAssetStatus`, the API presents a `MediaAsset`, the CLI, the bench and the tests
build one with `MediaAsset.new`. Field names are the CRDs' (camelCase on the wire,
snake_case in Python); `tests/unit/test_resource_schema.py` proves the models and
`crds/` agree field by field in both directions, so the API server never prunes a field
the code writes.

Unknown fields are ignored when reading, so an operator one version behind still reads
objects written under a newer CRD. Nothing is written with `None`: absent means absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mediaplane.core import keys, names
from mediaplane.core.states import (
    AssetCondition,
    AssetPhase,
    CaptionReview,
    ConditionStatus,
    JobCondition,
    NotificationState,
    SourceOrigin,
    TranscodePhase,
    VariantState,
    WebhookEvent,
)
from mediaplane.core.tasks import (
    AudioFormat,
    GeneratedObject,
    GenerationKind,
    MediaKind,
    ProbeResult,
    TaskType,
    VariantOutput,
    VariantSpec,
    VariantType,
    Verdict,
)


class Resource(BaseModel):
    """camelCase on the wire; tolerant when reading (unknown fields dropped)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True,
                              serialize_by_alias=True, extra="ignore")

    def to_body(self) -> dict[str, Any]:
        """The JSON body for the API server: camelCase, without nulls and defaults (the
        CRDs' defaults are the models'), so a body says only what was set."""
        body: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True,
                                               exclude_defaults=True)
        return body


# --- metadata ------------------------------------------------------------------------------

class OwnerReference(Resource):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(Resource):
    """The part of Kubernetes' ObjectMeta mediaplane reads or sets."""

    name: str
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    finalizers: list[str] = Field(default_factory=list)
    owner_references: list[OwnerReference] = Field(default_factory=list)
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None


class KubeObject(Resource):
    """A whole object: its body always says its apiVersion and kind, and carries a status
    only when one was set (a create never does: the status is the controller's)."""

    api_version: str
    kind: str
    metadata: ObjectMeta

    def to_body(self) -> dict[str, Any]:
        body = {"apiVersion": self.api_version, "kind": self.kind, **super().to_body()}
        if "status" not in self.model_fields_set:
            body.pop("status", None)
        return body

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        if self.metadata.namespace is None:
            raise ValueError(f"{self.kind} {self.name} has no namespace")
        return self.metadata.namespace


# --- conditions ----------------------------------------------------------------------------

def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Condition(Resource):
    """A Kubernetes condition: `lastTransitionTime` moves only when `status` flips."""

    type: str
    status: ConditionStatus
    reason: str
    message: str
    last_transition_time: str
    observed_generation: int | None = None


def set_condition(conditions: Sequence[Condition], type_: str, status: ConditionStatus,
                  reason: str, message: str, generation: int | None,
                  now: str) -> list[Condition]:
    """A new list with `type_` set; the others are kept as they are, in order."""
    result: list[Condition] = []
    found = False
    for condition in conditions:
        if condition.type != type_:
            result.append(condition)
            continue
        found = True
        moved = now if condition.status != status else condition.last_transition_time
        result.append(Condition(type=type_, status=status, reason=reason, message=message,
                                last_transition_time=moved, observed_generation=generation))
    if not found:
        result.append(Condition(type=type_, status=status, reason=reason, message=message,
                                last_transition_time=now, observed_generation=generation))
    return result


class ConditionWriter:
    """The conditions one reconcile rewrites: every `set` carries that reconcile's
    generation and clock, and a message is cut to `max_message` characters."""

    def __init__(self, conditions: Sequence[Condition], generation: int | None, now: str,
                 max_message: int | None = None) -> None:
        self.items: list[Condition] = list(conditions)
        self.generation, self.now, self.max_message = generation, now, max_message

    def set(self, type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        self.items = set_condition(self.items, type_, status, reason,
                                   message[:self.max_message], self.generation, self.now)

    def find(self, type_: str) -> Condition | None:
        return find_condition(self.items, type_)

    def is_true(self, type_: str) -> bool:
        return is_true(self.items, type_)


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Sequence[Condition], type_: str) -> bool:
    condition = find_condition(conditions, type_)
    return condition is not None and condition.status is ConditionStatus.TRUE


# --- MediaAsset ----------------------------------------------------------------------------

class SourceRef(Resource):
    origin: SourceOrigin = SourceOrigin.OBJECT
    key: str
    etag: str | None = None


class TextTrack(Resource):
    """A WebVTT (or transcript) file of one language under the asset's prefix."""

    language: str
    key: str


class CaptionTrack(TextTrack):
    approved: bool | None = None

    @property
    def is_approved(self) -> bool:
        """Manual tracks are approved unless they say otherwise."""
        return self.approved is not False

    @property
    def title(self) -> str:
        """The name players show for the track."""
        return self.language


class ManualCaption(CaptionTrack):
    """A track supplied by a person (`spec.captions`)."""

    label: str | None = None

    @property
    def title(self) -> str:
        return self.label or self.language


class GeneratedCaption(CaptionTrack):
    """A track made by speech to text (`status.captions`)."""

    transcode_job: str | None = None
    model: str | None = None
    detected_language: str | None = None
    translated: bool | None = None


class TranscriptTrack(TextTrack):
    """A transcript (`status.transcripts`): `key` the plain text, `segmentsKey` the JSON."""

    segments_key: str | None = None
    model: str | None = None


class CaptionRequest(Resource):
    """A generated track asked for (`spec.captionRequests`, keyed by BCP 47 tag)."""

    review_required: bool | None = None
    model: str | None = Field(default=None, description="None: the install's model")


class AutoCaptions(Resource):
    """Per-asset auto-captions; overrides the tenant's annotation and the install default."""

    enabled: bool | None = None
    language: str | None = None
    review_required: bool | None = None


class ImageGeneration(Resource):
    """What an image request asked for, resolved to pixels."""

    size: str
    aspect_ratio: str
    width: int
    height: int
    style: str | None = None


class SpeechGeneration(Resource):
    voice: str
    language: str
    format: AudioFormat


class GenerationSpec(Resource):
    """How an AI asset's source object is made (`spec.generation`, immutable)."""

    type: GenerationKind
    model: str = Field(description="the image model, or piper:<voice>")
    prompt: str = Field(description="the image prompt or the text to speak, normalised")
    request_sha256: str = Field(description="hash of the normalised prompt and parameters")
    image: ImageGeneration | None = None
    speech: SpeechGeneration | None = None


class MediaAssetSpec(Resource):
    kind: MediaKind
    mime: str
    # Declared by the uploader; for an AI asset, recorded once its generation stored the
    # object (absent until then), and checked by the probe like any declaration.
    sha256: str | None = None
    size_bytes: int | None = None
    filename: str | None = None
    source: SourceRef
    captions: list[ManualCaption] = Field(default_factory=list)
    caption_requests: dict[str, CaptionRequest] = Field(default_factory=dict)
    caption_review: dict[str, CaptionReview] = Field(default_factory=dict)
    auto_captions: AutoCaptions | None = None
    generation: GenerationSpec | None = None
    # Retries of failed variants asked for, by variant name (only ever grows).
    retries: dict[str, int] = Field(default_factory=dict)


class Quarantine(Resource):
    reason: str
    message: str


class ManifestKeys(Resource):
    """Where the operator wrote the asset's manifests, and which renditions they list."""

    hls: str | None = None
    dash: str | None = None
    variants: list[str] = Field(default_factory=list)


STREAM_TYPES = frozenset({VariantType.VIDEO, VariantType.AUDIO})


class VariantStatus(Resource):
    name: str
    type: VariantType
    state: VariantState
    transcode_job: str | None = None
    retries: int | None = Field(default=None, description="the retry this state is about")
    width: int | None = None
    height: int | None = None
    bandwidth: int | None = None
    codecs: str | None = None
    duration_seconds: float | None = None
    bytes: int | None = None
    playlist: str | None = Field(default=None, description="HLS media playlist key")
    mpd: str | None = Field(default=None, description="DASH MPD key of this rendition")
    file: str | None = Field(default=None, description="key of a single-file variant")
    message: str | None = None

    @property
    def is_stream(self) -> bool:
        return self.type in STREAM_TYPES

    @property
    def streamable(self) -> bool:
        """Done, a video or audio rendition, with both of its manifests written."""
        return (self.state is VariantState.SUCCEEDED and self.is_stream
                and bool(self.playlist) and bool(self.mpd))

    @property
    def folder(self) -> str | None:
        """The key prefix of the rendition's files (where its playlist is)."""
        where = self.playlist or self.mpd or self.file
        return where.rsplit("/", 1)[0] + "/" if where else None


def streamable(variants: Sequence[VariantStatus]) -> list[VariantStatus]:
    """The renditions a manifest lists: video by ascending bandwidth, then audio.

    The one definition of "streamable": the operator's stored manifests, the API's signed
    ones and the variant links in an asset's GET all list exactly these.
    """
    done = [v for v in variants if v.streamable]
    return sorted(done, key=lambda v: (v.type is not VariantType.VIDEO, v.bandwidth or 0))


class CaptionJobStatus(Resource):
    """The speech-to-text work for one language (`status.captionJobs`)."""

    language: str
    model: str
    state: VariantState
    transcode_job: str | None = None
    auto: bool | None = None
    review_required: bool | None = None
    chunks: int | None = None
    chunks_done: int | None = None
    message: str | None = None


class GenerationStatus(Resource):
    """Progress of an AI asset's generation Job; `state` mirrors its TranscodeJob phase."""

    state: VariantState
    transcode_job: str | None = None
    reason: str | None = None
    message: str | None = None
    provider_seconds: float | None = None
    completion_time: str | None = None


class Notification(Resource):
    """A webhook event of the asset, recorded in the same status write as the transition
    that caused it (so an operator that dies before delivering it still has it)."""

    id: str = Field(description="the webhook-id: the same on every attempt and endpoint")
    type: WebhookEvent
    at: str = Field(description="when the transition was seen (RFC 3339)")
    language: str | None = Field(default=None, description="caption.ready: the track")
    state: NotificationState = NotificationState.PENDING


class MediaAssetStatus(Resource):
    observed_generation: int | None = None
    phase: AssetPhase | None = None
    playable: bool | None = None
    variant_summary: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    probe: ProbeResult | None = None
    quarantine: Quarantine | None = None
    manifests: ManifestKeys | None = None
    variants: list[VariantStatus] = Field(default_factory=list)
    captions: list[GeneratedCaption] = Field(default_factory=list)
    transcripts: list[TranscriptTrack] = Field(default_factory=list)
    caption_jobs: list[CaptionJobStatus] = Field(default_factory=list)
    auto_captions: str | None = Field(default=None, description="decided once playable: "
                                      "the language auto-captions asked for, or 'off'")
    generation: GenerationStatus | None = None
    notifications: list[Notification] = Field(default_factory=list)

    def condition(self, type_: AssetCondition) -> Condition | None:
        return find_condition(self.conditions, type_)

    @property
    def pending_notifications(self) -> list[Notification]:
        return [n for n in self.notifications if n.state is NotificationState.PENDING]

    def is_true(self, type_: AssetCondition) -> bool:
        return is_true(self.conditions, type_)

    def variant(self, name: str) -> VariantStatus | None:
        return next((v for v in self.variants if v.name == name), None)

    def caption_job(self, language: str) -> CaptionJobStatus | None:
        return next((j for j in self.caption_jobs if j.language == language), None)


class MediaAsset(KubeObject):
    api_version: Literal["media.mediaplane.io/v1alpha1"] = "media.mediaplane.io/v1alpha1"
    kind: Literal["MediaAsset"] = "MediaAsset"
    metadata: ObjectMeta
    spec: MediaAssetSpec
    status: MediaAssetStatus = Field(default_factory=MediaAssetStatus)

    @classmethod
    def new(cls, tenant: str, asset_id: str, *, kind: MediaKind, mime: str,
            sha256: str | None = None, size_bytes: int | None = None,
            filename: str | None = None,
            origin: SourceOrigin = SourceOrigin.OBJECT, source_key: str | None = None,
            etag: str | None = None, labels: dict[str, str] | None = None,
            annotations: dict[str, str] | None = None, finalizers: Sequence[str] = (),
            generation: GenerationSpec | None = None) -> Self:
        """The one constructor of a MediaAsset body: its name from the asset id, its
        source under its own prefix unless told otherwise (a test of the admission rules).
        An AI asset (`generation`) has no sha256 or size yet: its Job records them."""
        return cls(
            metadata=ObjectMeta(name=names.name_from_asset_id(asset_id), namespace=tenant,
                                labels=dict(labels or {}), annotations=dict(annotations or {}),
                                finalizers=list(finalizers)),
            spec=MediaAssetSpec(kind=kind, mime=mime,
                                sha256=sha256.lower() if sha256 is not None else None,
                                size_bytes=size_bytes, filename=filename,
                                source=SourceRef(origin=origin, etag=etag, key=source_key or
                                                 keys.source_key(tenant, asset_id)),
                                generation=generation))

    @property
    def tenant(self) -> str:
        """The namespace is the tenant."""
        return self.namespace

    @property
    def asset_id(self) -> str:
        return names.asset_id_from_name(self.metadata.name)

    @property
    def prefix(self) -> str:
        return keys.asset_prefix(self.tenant, self.asset_id)

    @property
    def deleting(self) -> bool:
        return self.metadata.deletion_timestamp is not None

    @property
    def phase(self) -> AssetPhase:
        if self.status.phase is not None:
            return self.status.phase
        return AssetPhase.GENERATING if self.generating else AssetPhase.PENDING

    @property
    def playable(self) -> bool:
        """Servable now: the operator says playable, and nothing since says otherwise."""
        return bool(self.status.playable) and self.phase not in (AssetPhase.QUARANTINED,
                                                                  AssetPhase.FAILED)

    @property
    def settled(self) -> bool:
        """Nothing left to do for this generation: complete, quarantined or failed, and the
        status describes the current spec. The operator does not look at it again until the
        spec changes (a restart over thousands of finished assets costs no API call)."""
        if self.status.observed_generation != self.metadata.generation:
            return False
        return self.status.is_true(AssetCondition.COMPLETE) or self.phase in (
            AssetPhase.QUARANTINED, AssetPhase.FAILED)

    @property
    def awaiting_finalize(self) -> bool:
        """An API upload whose client has not called finalize: nothing to look for in
        storage until finalize sets `spec.source.etag` (that spec change wakes the operator)."""
        source = self.spec.source
        return source.origin is SourceOrigin.UPLOAD and not source.etag

    @property
    def generating(self) -> bool:
        """An AI asset whose source object is not made yet (its digest is not recorded)."""
        return self.spec.generation is not None and self.spec.sha256 is None

    @property
    def stored(self) -> bool:
        """The upload was finalized: the bytes are known to be in storage."""
        return bool(self.spec.source.etag)

    def review(self, language: str) -> CaptionReview | None:
        """A person's verdict on the generated track of `language`, if any."""
        return self.spec.caption_review.get(language)

    def track_approved(self, track: CaptionTrack) -> bool:
        """Manual tracks as they say; a generated one as its review says (the spec is read
        directly, so a verdict counts before the operator copies it into the status)."""
        if isinstance(track, GeneratedCaption):
            verdict = self.review(track.language)
            if verdict is not None:
                return verdict is CaptionReview.APPROVED
        return track.is_approved

    def caption_tracks(self, *, approved_only: bool = True) -> list[CaptionTrack]:
        """Manual tracks first, then generated ones; one per language (manual wins)."""
        seen: set[str] = set()
        tracks = []
        for track in [*self.spec.captions, *self.status.captions]:
            language = track.language.lower()
            if language in seen or (approved_only and not self.track_approved(track)):
                continue
            seen.add(language)
            tracks.append(track)
        return tracks


# --- TranscodeJob --------------------------------------------------------------------------

class AssetRef(Resource):
    name: str


class ObjectRef(Resource):
    key: str


class CaptionSpec(Resource):
    """What a caption TranscodeJob makes: one language's track with one model."""

    language: str
    whisper_language: str
    model: str
    duration_seconds: float
    chunks: int
    parallelism: int


class TranscodeJobSpec(Resource):
    asset_ref: AssetRef
    task: TaskType
    input: ObjectRef
    output_prefix: str | None = None
    variant: VariantSpec | None = None
    caption: CaptionSpec | None = None
    # Shared decode (`ladder.shared_decode`): the rungs this TranscodeJob's Job encodes
    # beside its own, and, on each of those, the TranscodeJob whose Job encodes it.
    also_encodes: list[VariantSpec] | None = None
    encoded_by: str | None = None


class WorkerResultStatus(Resource):
    """The worker's result as the TranscodeJob keeps it (`WorkerResult` without `kind`)."""

    verdict: Verdict | None = None
    reason: str | None = None
    message: str | None = None
    probe: ProbeResult | None = None
    output: VariantOutput | None = None
    also: list[VariantOutput] | None = None
    generated: GeneratedObject | None = None


class SpeechProgress(Resource):
    """A caption job's progress: the plan (cut points), the chunks done, the track made."""

    planned: bool | None = None
    cuts: list[float] = Field(default_factory=list)
    chunks_done: int | None = None
    detected_language: str | None = None
    translated: bool | None = None
    cues: int | None = None
    words: int | None = None


class TranscodeJobStatus(Resource):
    observed_generation: int | None = None
    phase: TranscodePhase | None = None
    job_name: str | None = None
    attempts: int | None = None
    retry: int | None = Field(default=None, description="the variant's retry this is about "
                              "(its Job is <name>-r<retry>); None: the first run")
    start_time: str | None = None
    completion_time: str | None = None
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    result: WorkerResultStatus | None = None
    speech: SpeechProgress | None = None

    @property
    def terminal(self) -> bool:
        return self.phase is not None and self.phase.terminal

    def condition(self, type_: JobCondition) -> Condition | None:
        return find_condition(self.conditions, type_)


class TranscodeJob(KubeObject):
    api_version: Literal["media.mediaplane.io/v1alpha1"] = "media.mediaplane.io/v1alpha1"
    kind: Literal["TranscodeJob"] = "TranscodeJob"
    metadata: ObjectMeta
    spec: TranscodeJobSpec
    status: TranscodeJobStatus = Field(default_factory=TranscodeJobStatus)

    @property
    def phase(self) -> TranscodePhase:
        return self.status.phase or TranscodePhase.PENDING

    @property
    def job_name(self) -> str:
        """The batch Job doing this work now: the TranscodeJob's own name for the first run,
        `<name>-r<n>` for the n-th retry of a failed variant (a new Job, a new name)."""
        retry = self.status.retry or 0
        return self.name if retry == 0 else f"{self.name}-r{retry}"

    @property
    def probe_verdict(self) -> WorkerResultStatus | None:
        """The probe's result once this (probe) TranscodeJob succeeded."""
        if self.status.phase is not TranscodePhase.SUCCEEDED or self.status.result is None:
            return None
        return self.status.result if self.status.result.verdict is not None else None


# --- WebhookEndpoint -----------------------------------------------------------------------

class SecretKeyRef(Resource):
    name: str
    key: str = "secret"


class WebhookEndpointSpec(Resource):
    url: str
    events: list[WebhookEvent] = Field(default_factory=list,
                                       description="empty: every event")
    secret_ref: SecretKeyRef
    disabled: bool = False

    def wants(self, event: WebhookEvent) -> bool:
        return not self.disabled and (not self.events or event in self.events)


class DeadLetter(Resource):
    """An event this endpoint never took: every attempt failed, or it was refused."""

    id: str
    type: WebhookEvent
    asset_id: str
    attempts: int
    reason: str
    message: str
    at: str


class WebhookEndpointStatus(Resource):
    dead_lettered: int | None = None
    dead_letters: list[DeadLetter] = Field(default_factory=list,
                                           description="the most recent, oldest first")


class WebhookEndpoint(KubeObject):
    api_version: Literal["media.mediaplane.io/v1alpha1"] = "media.mediaplane.io/v1alpha1"
    kind: Literal["WebhookEndpoint"] = "WebhookEndpoint"
    metadata: ObjectMeta
    spec: WebhookEndpointSpec
    status: WebhookEndpointStatus = Field(default_factory=WebhookEndpointStatus)
