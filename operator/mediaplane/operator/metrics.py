"""The operator's own Prometheus metrics, served on `MEDIAPLANE_METRICS_PORT` (/metrics).

Histograms without labels are exported from the start (zero counts), so a dashboard or an
alert over them never refers to a series that does not exist yet. Every replica of a
peering group serves them; the standing-by ones see no work, so dashboards take the max.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from mediaplane.core.resources import MediaAsset, MediaAssetStatus, TranscodeJob
from mediaplane.core.states import AssetPhase, VariantState

CAPTION_SECONDS_PER_MINUTE = 5.0  # 5 minutes for 60 minutes of audio
CAPTION_MIN_BUDGET = 60.0

RECONCILE_SECONDS = Histogram(
    "mediaplane_operator_reconcile_duration_seconds",
    "Time of one reconcile, by what triggered it", ["handler"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
RECONCILE_ERRORS = Counter("mediaplane_operator_reconcile_errors_total",
                           "Reconciles that raised (kopf retries them)", ["handler"])
IN_FLIGHT = Gauge("mediaplane_operator_reconciles_in_flight",
                  "Reconciles running or waiting for their asset's lock")
ASSETS = Gauge("mediaplane_operator_assets", "MediaAssets the operator sees, by phase",
               ["phase"])
TRANSCODE_JOBS = Gauge("mediaplane_operator_transcode_jobs",
                       "TranscodeJobs the operator sees, by phase", ["phase"])
JOBS_FAILED = Counter("mediaplane_operator_transcode_jobs_failed_total",
                      "TranscodeJobs that ended Failed (retries exhausted)")
# From the asset's creation (for an upload: its finalize) to...
TRANSCODE_START = Histogram(
    "mediaplane_operator_transcode_start_seconds",
    "From the asset's creation to its first rendition running (contract SLO: 30 s)",
    buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 120, 300))
TIME_TO_PLAYABLE = Histogram(
    "mediaplane_operator_time_to_playable_seconds",
    "From the asset's creation to playable (the first renditions done)",
    buckets=(1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600, 1800))
# Captions: the contract promises a 60-minute video's captions within 5 minutes, so a track
# gets 5 s per minute of audio (at least a minute): the ratio of its wall time to that.
CAPTION_BUDGET_RATIO = Histogram(
    "mediaplane_operator_caption_budget_ratio",
    "A caption track's time over its budget (5 s per minute of audio, at least 60 s); "
    "at most 1 meets the contract's SLO",
    buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0))
WEBHOOK_ATTEMPTS = Counter("mediaplane_operator_webhook_attempts_total",
                           "Webhook POSTs by outcome (delivered, failed, refused)", ["outcome"])
WEBHOOK_DEAD_LETTERS = Counter("mediaplane_operator_webhook_dead_letters_total",
                               "Events an endpoint never took (every attempt failed)")
WEBHOOK_QUEUE = Gauge("mediaplane_operator_webhook_queue",
                      "Assets waiting for a webhook worker")

for _phase in AssetPhase:
    ASSETS.labels(_phase.value)
for _outcome in ("delivered", "failed", "refused"):
    WEBHOOK_ATTEMPTS.labels(_outcome)
# What triggers a reconcile (the handlers' names for `reconciling`): their series exist
# from the start too, so a rate of errors is 0 rather than absent.
HANDLERS = ("asset", "resync", "transcode_job")
for _handler in HANDLERS:
    RECONCILE_ERRORS.labels(_handler)
    RECONCILE_SECONDS.labels(_handler)


@contextmanager
def reconciling(handler: str) -> Iterator[None]:
    IN_FLIGHT.inc()
    started = time.perf_counter()
    try:
        yield
    except Exception:
        RECONCILE_ERRORS.labels(handler).inc()
        raise
    finally:
        IN_FLIGHT.dec()
        RECONCILE_SECONDS.labels(handler).observe(time.perf_counter() - started)


class PhaseCounts:
    """Objects by phase from the watch events kopf hands over (no listing of our own)."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self.phases: dict[str, str] = {}

    def seen(self, key: str, phase: str | None) -> None:
        old = self.phases.get(key)
        if old == phase:
            return
        if old is not None:
            self.gauge.labels(old).dec()
        if phase is None:
            self.phases.pop(key, None)
            return
        self.phases[key] = phase
        self.gauge.labels(phase).inc()


ASSET_PHASES = PhaseCounts(ASSETS)
JOB_PHASES = PhaseCounts(TRANSCODE_JOBS)


def serve(port: int, address: str) -> None:
    if port:
        start_http_server(port, addr=address)


def _age(created: str | None, now: float) -> float | None:
    if not created:
        return None
    return now - datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()


def observe_asset(asset: MediaAsset, new: MediaAssetStatus,
                  tjs: Mapping[str, TranscodeJob]) -> None:
    """The SLO histograms, observed at the transitions a reconcile sees first."""
    now = time.time()
    old = asset.status
    started = {VariantState.RUNNING, VariantState.SUCCEEDED}
    if any(v.state in started for v in new.variants) and not any(
            v.state in started for v in old.variants):
        age = _age(asset.metadata.creation_timestamp, now)
        if age is not None:
            TRANSCODE_START.observe(max(0.0, age))
    if new.playable and not old.playable:
        age = _age(asset.metadata.creation_timestamp, now)
        if age is not None:
            TIME_TO_PLAYABLE.observe(max(0.0, age))
    duration = new.probe.duration_seconds if new.probe is not None else None
    for job in new.caption_jobs:
        before = old.caption_job(job.language)
        if job.state is not VariantState.SUCCEEDED or (
                before is not None and before.state is VariantState.SUCCEEDED):
            continue
        tj = tjs.get(job.transcode_job or "")
        wall = _age(tj.metadata.creation_timestamp if tj else None, now)
        if wall is not None and duration:
            budget = max(CAPTION_MIN_BUDGET, duration / 60 * CAPTION_SECONDS_PER_MINUTE)
            CAPTION_BUDGET_RATIO.observe(max(0.0, wall) / budget)
