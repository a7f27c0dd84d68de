"""What the dashboard and the alert rules query, against what the processes really export:
the live `/metrics` of the API and of the operator after an asset went through the whole
pipeline. And the operator's log lines about that asset: JSON, with its id."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from mediaplane.devcluster.cluster import DevCluster
from tests.conftest import OperatorHandle
from tests.observability.test_rules_and_dashboard import RULES, dashboard_exprs, rule_exprs
from tests.support.apienv import UserFactory
from tests.support.media import Media

METRIC = re.compile(r"\b(mediaplane_[a-z0-9_]+)\b")
RECORDED = re.compile(r"\b(mediaplane:[a-z0-9_:]+)\b")


def exported(url: str) -> dict[str, set[tuple[tuple[str, str], ...]]]:
    """Sample names (with _bucket, _count…) and their label sets, as Prometheus scrapes."""
    text = httpx.get(url, timeout=10).text
    found: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, set()).add(tuple(sorted(sample.labels.items())))
    return found


def test_the_dashboard_and_the_rules_name_only_exported_metrics(
        api_url: str, operator: OperatorHandle, cluster: DevCluster,
        make_tenant: Callable[..., str], make_user: UserFactory, clip: Media) -> None:
    alice = make_user(make_tenant(), "alice")
    asset_id = alice.upload(clip)
    asset = alice.wait_status(asset_id, "ready")
    assert httpx.get(asset["streams"]["hls"], timeout=30).status_code == 200
    assert httpx.get(asset["streams"]["dash"], timeout=30).status_code == 200

    live = exported(f"{api_url}/metrics")
    live.update(exported(operator.metrics_url))
    exprs = dashboard_exprs() + rule_exprs()
    named = {m for e in exprs for m in METRIC.findall(e)}
    assert named, "the expressions name no metric at all"
    missing = sorted(named - set(live))
    assert missing == [], f"queried but not exported: {missing}"

    # Recording rules the dashboard reads are the rule file's own.
    recorded = {r["record"] for g in __import__("yaml").safe_load(RULES.read_text())["groups"]
                for r in g["rules"] if "record" in r}
    assert {m for e in dashboard_exprs() for m in RECORDED.findall(e)} <= recorded

    # The label values the rules select on exist: the routes are the API's templates.
    routes = {dict(labels).get("route") for labels in
              live["mediaplane_api_request_duration_seconds_count"]}
    assert "/api/v1/media/upload-url" in routes
    stream = re.compile(r"/api/v1/media/\{asset_id\}/stream/(hls|dash)/.+")
    assert any(r and stream.fullmatch(r) for r in routes), routes
    buckets = {dict(labels)["le"] for labels in
               live["mediaplane_operator_transcode_start_seconds_bucket"]}
    assert {"30.0"} <= buckets
    assert {"1.0"} <= {dict(labels)["le"] for labels in
                       live["mediaplane_operator_caption_budget_ratio_bucket"]}
    # What the pipeline just did shows: the asset became playable once, at least.
    playable = live["mediaplane_operator_time_to_playable_seconds_count"]
    assert playable

    # The operator's log: one JSON object a line, and the lines about this asset say so.
    name = asset_id.replace("_", "-")
    lines = [line for line in (cluster.logs_dir / "operator.log").read_text().splitlines()
             if line.startswith("{")]
    assert lines
    about = [json.loads(line) for line in lines if name in line]
    assert about, "no operator line about the asset"
    assert all(entry["asset_id"] == asset_id for entry in about), about[:3]
    assert all(entry["service"] == "operator" for entry in about)

    # The workers' (the node agent keeps each container's output beside its pod): every
    # line of the asset's Jobs is JSON and bound to the asset, from the first to the last.
    # Only containers that have exited (a storyboard may still run once the asset is ready).
    worker_logs = [path for path in cluster.pods_dir.glob("*/*/worker.log")
                   if path.parent.name.startswith(f"{name}-")
                   and path.with_name("worker.exit").exists()]
    assert worker_logs, "no worker ran for the asset"
    for path in worker_logs:
        entries = [json.loads(line) for line in path.read_text().splitlines() if line]
        assert entries, path
        assert {e["asset_id"] for e in entries} == {asset_id}, path
        assert {e["service"] for e in entries} == {"worker"}
