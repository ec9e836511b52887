"""The Prometheus alert rules and the Grafana dashboard of api/observability: promtool
checks the rules and runs their unit tests (one per alert); every metric they query is one
the service exports (api/metrics.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import Metric

from api.metrics import ServiceMetrics

OBSERVABILITY = Path(__file__).resolve().parents[2] / "api" / "observability"
METRIC_NAME = re.compile(r"\bbaac_api_[a-z_]+")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is needed: make promtool (Debian package prometheus)"
    return path


def exported_names() -> set[str]:
    """Every series name /metrics can show: a counter's ``_total``, a histogram's ``_bucket``,
    ``_sum`` and ``_count``, a gauge's own name."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    families: list[Metric] = list(ServiceMetrics().registry.collect())
    return {f.name + suffix for f in families for suffix in suffixes[f.type]}


def rules() -> list[dict]:
    groups = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules(promtool):
    done = subprocess.run(
        [promtool, "check", "rules", "alerts.yml"], cwd=OBSERVABILITY, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 3 rules found" in done.stdout


def test_each_alert_has_a_unit_test_and_they_pass(promtool):
    alerts = {rule["alert"] for rule in rules()}
    assert alerts == {"BaacApiNoChampion", "BaacApiHighServerErrorRatio", "BaacApiSlowPredictions"}
    tests = yaml.safe_load((OBSERVABILITY / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert tested == alerts  # each fires in a test (and is checked not to fire before)
    done = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"], cwd=OBSERVABILITY, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_rules_query_only_metrics_the_service_exports():
    queried = {name for rule in rules() for name in METRIC_NAME.findall(rule["expr"])}
    assert queried and queried <= exported_names()


def test_the_dashboard_is_json_over_metrics_the_service_exports():
    dashboard = json.loads((OBSERVABILITY / "grafana_dashboard.json").read_text())
    assert dashboard["uid"] == "baac-api"
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(dashboard["panels"]) == 7 and all(panel["targets"] for panel in dashboard["panels"])
    queried = {name for expr in expressions for name in METRIC_NAME.findall(expr)}
    assert queried == exported_names() - {
        "baac_api_request_latency_seconds_sum",
        "baac_api_request_latency_seconds_count",
    }
