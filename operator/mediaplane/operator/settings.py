"""Operator settings (environment, prefix MEDIAPLANE_)."""

from __future__ import annotations

from pathlib import Path

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
    # Start a video's lowest rung while the probe runs (nothing of it is published before the
    # probe accepts the source; a refused or unplanned rung is deleted): saves the probe's
    # time on the way to the first playable rendition.
    speculative_first_rung: bool = True
    # A REST upload whose object was stored but never finalized (so no MediaAsset names it)
    # is removed once it is this old: longer than the grant's 15 minutes, with slack for a
    # slow client between its POST and its finalize.
    upload_grace_seconds: int = Field(default=3600, ge=0)
    sweep_interval_seconds: float = Field(default=600.0, gt=0)

    def load_ladder(self) -> Ladder:
        if self.ladder_file is None:
            return Ladder()
        return Ladder.model_validate(yaml.safe_load(self.ladder_file.read_text()))
