"""Operator settings (environment, prefix MEDIAPLANE_)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mediaplane.core.ladder import Ladder


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIAPLANE_", extra="ignore", frozen=True)

    ladder_file: Path | None = Field(default=None, description="YAML or JSON Ladder")
    # Each call to the API server ends within this (a stalled server fails the handler,
    # which kopf retries with back-off, instead of holding it forever).
    kube_timeout_seconds: float = Field(default=30.0, gt=0)
    worker_image: str = "mediaplane/worker:0.1.0"
    worker_command: tuple[str, ...] = ("mediaplane-worker",)
    worker_service_account: str | None = None
    # Bounds on one Job: a hung ffmpeg is killed by the kubelet after the deadline, and the
    # presigned URLs live a little longer than the whole Job may.
    job_deadline_seconds: int = Field(default=3600, ge=30)
    job_backoff_limit: int = Field(default=3, ge=0, le=10)
    job_ttl_seconds: int = Field(default=3600, ge=0)
    worker_cpu_request: str = "500m"
    worker_memory_request: str = "256Mi"
    worker_memory_limit: str = "2Gi"
    worker_scratch_limit: str = "20Gi"
    max_variant_bytes: int = Field(default=50 * 1024**3, ge=1)
    # Run what makes a video playable (its lowest rung and its audio: `ladder.first_wave`)
    # before the rest of its ladder, whose Jobs then request only
    # `worker_background_cpu_request`: a node splits busy cores in proportion to the
    # requests (a kubelet's cgroup CPU weights), so the first wave of an asset uploaded
    # meanwhile keeps about 90% of them. Right for a node or two; turn off where the
    # cluster has the CPU to run every rung at once.
    playable_first: bool = True
    worker_background_cpu_request: str = "50m"
    # Encode the video rungs after the first wave with one ffmpeg (one decode of the source,
    # one pod) instead of a pod each: less CPU per asset, the same renditions.
    shared_decode: bool = True
    # Put each rendition pod's first ffmpeg command in its environment, which the worker
    # starts before its Python has loaded pydantic and our models (`worker.launch`): the
    # encode starts about 0.15 s sooner on each pod. The worker runs it only if it is its
    # task's own first command, so an operator and workers of different versions still agree.
    worker_launch: bool = True
    # The bucket's CORS rules (core.bucketcors), set at start-up when `bucket_cors` is on:
    # playback (GET/HEAD with Range) from these origins, browser uploads (POST) from those.
    bucket_cors: bool = False
    bucket_cors_playback_origins: str = "*"
    bucket_cors_upload_origins: str = ""

    # Speech to text (caption jobs). The model is a CTranslate2 Whisper directory at
    # `speech_model_dir` inside the worker pods: in the worker image, or mounted from
    # `speech_model_volume` (a pod volume source as JSON: persistentVolumeClaim, image,
    # hostPath, nfs...). `speech_model` names it in tracks, job names and idempotency.
    speech_model: str = Field(default="whisper-base", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    speech_model_dir: str = "/models/speech"
    speech_model_volume: dict[str, Any] | None = None
    # Chunks of one track run this many at once; each chunk is 30 s to 10 min of audio.
    caption_parallelism: int = Field(default=4, ge=1, le=256)
    caption_min_chunk_seconds: float = Field(default=30.0, ge=5.0)
    caption_max_chunk_seconds: float = Field(default=600.0, ge=30.0)
    caption_cpu_threads: int = Field(default=2, ge=1, le=64)
    caption_memory_request: str = "1Gi"
    caption_beam_size: int = Field(default=5, ge=1, le=10)
    # Auto-captions for tenants without their own annotation: a BCP 47 tag, or "off".
    auto_captions: str = "off"
    auto_captions_review: bool = False
    # AI generation (generation.py): the catalogue shared with the API, where the image
    # service's Secret lives (copied into a tenant's namespace for its generation Jobs), the
    # volume holding voices the catalogue adds, and the bounds of one generation Job.
    ai_catalog_file: Path | None = None
    ai_secret_namespace: str = "mediaplane"  # noqa: S105 (a namespace, not a secret)
    ai_voices_volume: dict[str, Any] | None = Field(
        default=None, description="a Kubernetes volume source, e.g. "
        '{"persistentVolumeClaim": {"claimName": "voices", "readOnly": true}}')
    ai_job_deadline_seconds: int = Field(default=900, ge=30)
    ai_job_backoff_limit: int = Field(default=2, ge=0, le=10)
    max_generated_bytes: int = Field(default=200 * 1024**2, ge=1)
    # Start a video's lowest rung while the probe runs (nothing of it is published before the
    # probe accepts the source; a refused or unplanned rung is deleted): saves the probe's
    # time on the way to the first playable rendition.
    speculative_first_rung: bool = True
    # With `speculative_first_rung` and `playable_first`: that rung is encoded in the probe's
    # own pod, beside its checks, rather than in a pod of its own (an interpreter's start and
    # a Job's and a pod's objects less on the way to playable). The probe's verdict then
    # arrives with the rung, at the pod's end; sources too long for it
    # (`ladder.probe_rung_limit`) stop it at the verdict and get the rung's own pod.
    probe_encodes_first_rung: bool = True
    # Workers upload each media segment as soon as ffmpeg has written it whole, instead of
    # every file after the encode: the manifests still go last, once the rendition is
    # proven. A speculative encode is never asked to (its source may yet be refused).
    stream_segments: bool = True
    # A REST upload whose object was stored but never finalized (so no MediaAsset names it)
    # is removed once it is this old: longer than the grant's 15 minutes, with slack for a
    # slow client between its POST and its finalize.
    upload_grace_seconds: int = Field(default=3600, ge=0)
    sweep_interval_seconds: float = Field(default=600.0, gt=0)
    # Webhooks (WebhookEndpoint): attempts per event and endpoint, the first back-off
    # (doubled after each failure, up to the maximum), the time one POST may take, and the
    # networks webhooks may reach besides public addresses (CIDRs, comma-separated: e.g.
    # 10.0.0.0/8 for receivers inside the cluster; the dev environment allows loopback).
    webhooks: bool = True
    webhook_attempts: int = Field(default=8, ge=1, le=30)
    webhook_backoff_seconds: float = Field(default=2.0, gt=0)
    webhook_max_backoff_seconds: float = Field(default=300.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_allowed_networks: str = ""
    webhook_workers: int = Field(default=8, ge=1, le=256)
    # The operator's own Prometheus metrics (/metrics on this port; 0 = none).
    metrics_port: int = Field(default=8082, ge=0, le=65535)
    metrics_address: str = "0.0.0.0"  # noqa: S104 (scraped from the pod network)

    def load_ladder(self) -> Ladder:
        if self.ladder_file is None:
            return Ladder()
        return Ladder.model_validate(yaml.safe_load(self.ladder_file.read_text()))
