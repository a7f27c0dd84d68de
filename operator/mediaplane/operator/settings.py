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
    # Run the lowest rung, the audio and the poster before the rest of a video's ladder.
    # Right for a node or two; turn off where the cluster has CPU to run every rung at once.
    playable_first: bool = True
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

    def load_ladder(self) -> Ladder:
        if self.ladder_file is None:
            return Ladder()
        return Ladder.model_validate(yaml.safe_load(self.ladder_file.read_text()))
