"""Percentiles and the one table format every benchmark prints."""

from __future__ import annotations

import os
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


def row_ms(name: str, values: Sequence[float], targets: Sequence[tuple[float, str]] = ()) -> str:
    """Like `row` for request latencies: milliseconds, and p95 against each target."""
    p50, p95, p99 = (percentile(values, q) * 1000 for q in (50, 95, 99))
    text = (f"{name:<40} n={len(values):<5} p50={p50:7.1f}ms p95={p95:7.1f}ms "
            f"p99={p99:7.1f}ms")
    for target, label in targets:
        text += f"  p95/{label}={p95 / (target * 1000):5.2f}"
    return text


def load_note() -> str:
    """The machine's load while the figures were taken: other work on the same cores
    inflates every wall time, so each report says how busy the machine was."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min: {five:.1f}) on {os.cpu_count()} cores"
