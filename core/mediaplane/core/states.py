"""Every phase, state and condition name of the custom resources, as enums.

Three vocabularies exist on purpose, one per audience, and they are tied here:

| TranscodeJob `status.phase` | asset `status.variants[].state` | meaning |
| --- | --- | --- |
| (no status yet), `Pending` | `pending` | created, its batch Job not running yet |
| `Running` | `running` | a worker pod is running (or retrying) |
| `Succeeded` | `succeeded` | the worker's result is in the TranscodeJob |
| `Failed` | `failed` | retries exhausted, or the worker's result was unreadable |

A TranscodeJob phase is Kubernetes-style (capitalised, like a Pod's); the variant state
mirrors it in lower case inside the asset, next to the REST vocabulary. The asset's own
`status.phase` is the REST `status` field (`AssetPhase`), derived from the conditions:

- `generating`: an AI asset whose source object a generation Job is still making;
- `pending`: the source object is not in storage (or the upload is not finalized);
- `processing`: probing, or transcoding before the asset is playable;
- `ready`: playable (`Ready=True`); the `Complete` condition says when every variant ended;
- `quarantined`: the probe refused the bytes (`Quarantined=True`), never served;
- `failed`: the probe Job failed, or every variant ended and none made it playable, or
  the generation of an AI asset failed.

Generated captions have their own conditions beside `Ready` (a caption job never changes
the asset's phase): `CaptionsGenerating` (True while a caption TranscodeJob runs),
`CaptionsReady` (True when every requested track is done), `CaptionsFailed` (True when a
requested track failed). `status.captionJobs[].state` mirrors each caption TranscodeJob's
phase in the variant vocabulary above.

An AI asset's `status.generation.state` uses the variant vocabulary (it mirrors the phase
of its generation TranscodeJob the same way).
"""

from __future__ import annotations

from enum import StrEnum


class AssetPhase(StrEnum):
    GENERATING = "generating"
    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    QUARANTINED = "quarantined"
    FAILED = "failed"

    @property
    def settled(self) -> bool:
        """Nothing more will happen to the asset without a change of its spec."""
        return self in (AssetPhase.READY, AssetPhase.QUARANTINED, AssetPhase.FAILED)


class TranscodePhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        return self in (TranscodePhase.SUCCEEDED, TranscodePhase.FAILED)


class VariantState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @classmethod
    def of(cls, phase: TranscodePhase | None) -> VariantState:
        """The variant state that mirrors a TranscodeJob phase (None: not created yet)."""
        return cls(phase.value.lower()) if phase is not None else cls.PENDING

    @property
    def terminal(self) -> bool:
        return self in (VariantState.SUCCEEDED, VariantState.FAILED)


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class AssetCondition(StrEnum):
    """Condition types on a MediaAsset (`Ready` is the summary, as Kubernetes wants)."""

    READY = "Ready"
    UPLOADED = "Uploaded"
    PROBED = "Probed"
    QUARANTINED = "Quarantined"
    COMPLETE = "Complete"
    CAPTIONS_GENERATING = "CaptionsGenerating"
    CAPTIONS_READY = "CaptionsReady"
    CAPTIONS_FAILED = "CaptionsFailed"
    GENERATED = "Generated"  # AI assets: the generation Job stored the source object


class CaptionReview(StrEnum):
    """A person's verdict on a generated track (`spec.captionReview`)."""

    APPROVED = "approved"
    REJECTED = "rejected"


class JobCondition(StrEnum):
    """Condition types on a TranscodeJob."""

    SUCCEEDED = "Succeeded"


class SourceOrigin(StrEnum):
    """How an asset came to be; the REST `source` field."""

    UPLOAD = "upload"  # through the REST API's presigned POST and finalize
    OBJECT = "object"  # an object already in the bucket, applied with kubectl
    AI = "ai"  # generated


class CaptionSource(StrEnum):
    """Who made a caption track; the REST `captions[].source` field."""

    MANUAL = "manual"  # uploaded by a person (spec.captions)
    GENERATED = "generated"  # speech to text (status.captions)


class PodPhase(StrEnum):
    """Pod phases the operator reads (Kubernetes' own vocabulary)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"

    @property
    def terminal(self) -> bool:
        return self in (PodPhase.SUCCEEDED, PodPhase.FAILED)


class WebhookEvent(StrEnum):
    """What a tenant's webhook endpoints are told (the `type` of a Standard Webhooks payload).

    `asset.playable` is the REST status becoming `ready` (the first renditions play);
    `asset.ready` is every variant having ended (the `Complete` condition).
    """

    ASSET_CREATED = "asset.created"
    ASSET_PLAYABLE = "asset.playable"
    ASSET_READY = "asset.ready"
    ASSET_FAILED = "asset.failed"
    ASSET_QUARANTINED = "asset.quarantined"
    ASSET_DELETED = "asset.deleted"
    CAPTION_READY = "caption.ready"


class NotificationState(StrEnum):
    """An event recorded in an asset's status: still to be delivered, or done with (every
    endpoint took it or it was dead-lettered)."""

    PENDING = "pending"
    DONE = "done"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"
