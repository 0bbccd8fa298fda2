"""deploy/monitoring: promtool accepts it, and it only uses metric names Haven exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

MONITORING = Path(__file__).resolve().parents[3] / "deploy" / "monitoring"
# Series Prometheus makes itself for every scrape target.
PROMETHEUS_OWN = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}
_NAME = re.compile(r"\b((?:haven|process|python)_[a-z0-9_]+|up|scrape_[a-z_]+)\b")


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed: apt-get install prometheus")
    return found


def test_promtool_accepts_the_scrape_config() -> None:
    result = subprocess.run(
        [_promtool(), "check", "config", str(MONITORING / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_alert_rules() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(MONITORING / "alerts.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


def _exposed_names(client: TestClient[Any]) -> set[str]:
    response = client.get("/metrics")
    assert response.status_code == 200
    names: set[str] = set()
    for family in text_string_to_metric_families(response.text):
        names.update(sample.name for sample in family.samples)
    return names


def _rule_exprs() -> list[str]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def test_every_metric_the_rules_and_dashboard_use_is_exposed(client: TestClient[Any]) -> None:
    client.get("/health")  # at least one request so the request series exist
    client.get("/api/v1/nothing-here")
    exposed = _exposed_names(client) | PROMETHEUS_OWN
    exprs = _rule_exprs() + _dashboard_exprs()
    used = {name for expr in exprs for name in _NAME.findall(expr)}
    assert used, "no metric names found in the rules and dashboard"
    assert {"haven_http_requests_total", "haven_active_sessions", "haven_dependency_up"} <= used
    missing = sorted(used - exposed)
    assert not missing, f"used by deploy/monitoring but not exposed by /metrics: {missing}"


def test_rules_cover_the_alerts_operators_need() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert names == {
        "HavenInstanceDown",
        "HavenTooFewReadyInstances",
        "HavenHigh5xxRate",
        "HavenHighP99Latency",
        "HavenDependencyDown",
        "HavenDrainingTooLong",
        "HavenMemoryGrowth",
        "HavenActiveSessionsDroppedToZero",
        "HavenWebhookSubscriptionFailing",
        "HavenWebhookDeliveryLagging",
    }


def test_webhook_alerts_fire_after_an_hour_of_failing_and_not_before() -> None:
    """promtool's rule unit tests (tests/integration/monitoring/webhook_alerts_test.yml)."""
    result = subprocess.run(
        [_promtool(), "test", "rules", str(Path(__file__).parent / "webhook_alerts_test.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
