"""The operator's command line: what it hands kopf.run (peering and priority)."""

from __future__ import annotations

from mediaplane.operator.__main__ import PRIORITY_RANGE, run_options


def test_peering_replicas_draw_distinct_priorities() -> None:
    """kopf pauses every peer that shares the top priority: replicas must differ."""
    argv = ["--peering", "mediaplane", "--liveness", "http://0.0.0.0:8081/healthz"]
    drawn = [run_options(argv) for _ in range(50)]
    priorities = [o["priority"] for o in drawn]
    assert len(set(priorities)) == len(priorities)
    assert all(1 <= p <= PRIORITY_RANGE for p in priorities)
    assert drawn[0] | {"priority": 0} == {
        "clusterwide": True, "standalone": False, "peering_name": "mediaplane",
        "liveness_endpoint": "http://0.0.0.0:8081/healthz", "verbose": False, "priority": 0}


def test_explicit_priority_and_standalone() -> None:
    assert run_options(["--priority", "7"])["priority"] == 7
    standalone = run_options(["--standalone"])
    assert standalone["peering_name"] is None
    assert "priority" not in standalone
