"""The chart's alert rules and dashboard, without a cluster: promtool (built from Go modules
like helm) checks the rules and runs their unit tests, and the chart renders both."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from mediaplane.devcluster import binaries
from tests.chart.helm import CHART, Rendered, template

RULES = CHART / "files" / "prometheus" / "mediaplane-rules.yaml"
DASHBOARD = CHART / "files" / "dashboards" / "mediaplane.json"
RULE_TESTS = Path(__file__).with_name("slo-rules-test.yaml")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = binaries.binaries().promtool
    assert binaries.reports_version(tool, binaries.PROMTOOL_VERSION), (
        f"promtool {binaries.PROMTOOL_VERSION} is not built at {tool}: run make setup")
    return subprocess.run([str(tool), *args], capture_output=True, text=True, timeout=120,
                          check=False, cwd=RULE_TESTS.parent)


def test_the_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 24 rules found" in done.stdout


def test_burn_rate_alerts_fire_when_the_budget_burns_and_only_then() -> None:
    """90% of events late for 80 minutes pages, for each of the four SLOs; the same
    traffic on time pages nobody (slo-rules-test.yaml)."""
    done = promtool("test", "rules", RULE_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_slo_of_the_contract_has_a_page_and_a_ticket() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    by_slo: dict[str, set[str]] = {}
    for alert in alerts:
        by_slo.setdefault(alert["labels"]["slo"], set()).add(alert["labels"]["severity"])
    assert by_slo == {slo: {"page", "ticket"}
                      for slo in ("upload_url", "stream_url", "transcode_start", "captions")}


def test_the_chart_renders_the_rule_and_the_dashboard_when_asked() -> None:
    off = Rendered.of(template())
    assert not off.all("PrometheusRule")
    assert not [c for c in off.all("ConfigMap") if c["metadata"]["name"].endswith("dashboard")]
    on = Rendered.of(template(sets={"prometheusRule.enabled": "true",
                                    "prometheusRule.labels.release": "prometheus",
                                    "grafanaDashboard.enabled": "true",
                                    "serviceMonitor.enabled": "true"}))
    rule = on.one("PrometheusRule", "mediaplane-slos")
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    board = on.one("ConfigMap", "mediaplane-dashboard")
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["mediaplane.json"]) == json.loads(DASHBOARD.read_text())
    monitor = on.one("PodMonitor", "mediaplane-operator")
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    operator = on.one("Deployment", "mediaplane-operator")
    ports = {p["name"]: p["containerPort"]
             for p in operator["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert ports["metrics"] == 8082


def dashboard_exprs() -> list[str]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [r["expr"] for g in groups for r in g["rules"]]


def test_the_dashboard_covers_what_the_issue_asks() -> None:
    text = "\n".join(dashboard_exprs())
    for needle in ("mediaplane_api_request_duration_seconds_count",  # request rate
                   "histogram_quantile(0.95, sum by (le, route)",  # p95 per route
                   "mediaplane_operator_assets",  # assets by phase
                   "mediaplane_operator_transcode_jobs",  # Jobs running
                   "mediaplane_operator_transcode_jobs_failed_total",  # and failed
                   "mediaplane_operator_time_to_playable_seconds_bucket"):
        assert needle in text, needle
