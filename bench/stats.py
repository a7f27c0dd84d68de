"""Percentiles and the one table format every benchmark prints."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: with few samples, report what was seen)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def row(name: str, values: Sequence[float], target: float | None = None,
        target_name: str = "") -> str:
    p50, p95, p99 = (percentile(values, q) for q in (50, 95, 99))
    text = (f"{name:<34} n={len(values):<3} p50={p50:7.3f}s p95={p95:7.3f}s p99={p99:7.3f}s "
            f"mean={statistics.fmean(values):7.3f}s")
    if target:
        text += f"  p95/{target_name}={p95 / target:5.2f}"
    return text
