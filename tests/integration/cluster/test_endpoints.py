"""The load-balancer contract (ARCHITECTURE section 5): shapes, types, headers on every answer."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from haven.services import services_of
from support import assert_problem, register

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LB_HEADERS = (
    "x-instance-id",
    "x-served-by",
    "x-session-shared",
    "x-load-balancer-ready",
    "x-stateless",
    "x-response-time",
    "x-request-id",
)


def assert_types(body: dict[str, Any], spec: dict[str, Any]) -> None:
    """Every field of `spec` is in `body` with that type (nested dicts checked recursively)."""
    for key, expected in spec.items():
        assert key in body, f"missing {key!r} in {body}"
        if isinstance(expected, dict):
            assert isinstance(body[key], dict), (key, body[key])
            assert_types(body[key], expected)
        else:
            assert isinstance(body[key], expected), (key, body[key], expected)
            assert not (expected is int and isinstance(body[key], bool)), key


def test_health_alive_and_ready_have_the_documented_shapes(client: TestClient[Any]) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body == {**body, "success": True, "status": "OK", "instanceId": "api-1"}
    assert ISO_MS.match(body["timestamp"])

    alive = client.get("/alive")
    assert alive.status_code == 200
    assert alive.json()["alive"] is True
    assert alive.json()["instanceId"] == "api-1"

    ready = client.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert_types(
        body,
        {
            "ready": bool,
            "timestamp": str,
            "instanceId": str,
            "version": str,
            "loadBalancerReady": bool,
            "state": str,
            "dependencies": {"redis": str, "database": str},
        },
    )
    assert body["ready"] is True
    assert body["state"] == "ready"
    assert body["dependencies"] == {"redis": "healthy", "database": "healthy"}


def test_lb_health_reports_dependencies_resources_and_uptime(client: TestClient[Any]) -> None:
    response = client.get("/api/v1/load-balancer/health")
    assert response.status_code == 200
    body = response.json()
    assert_types(
        body,
        {
            "status": str,
            "timestamp": str,
            "instanceId": str,
            "responseTime": str,
            "uptime": int,
            "loadBalancer": {
                "ready": bool,
                "stateless": bool,
                "sessionStore": str,
                "cacheStore": str,
            },
            "dependencies": {"redis": str, "database": str},
            "resources": {"memory": {"used": str, "total": str, "percentage": str}},
        },
    )
    assert body["status"] == "healthy"
    assert re.match(r"^\d+ms$", body["responseTime"])
    assert re.match(r"^\d+\.\dMB$", body["resources"]["memory"]["used"])
    assert re.match(r"^\d+\.\d%$", body["resources"]["memory"]["percentage"])
    assert body["loadBalancer"] == {
        "ready": True,
        "stateless": True,
        "sessionStore": "redis",
        "cacheStore": "redis",
    }


METRICS_SPEC: dict[str, Any] = {
    "instanceId": str,
    "scope": str,
    "uptime": int,
    "requests": {"total": int, "inFlight": int, "byStatus": dict, "perSecond": (int, float)},
    "latencyMs": {"p50": (int, float), "p95": (int, float), "p99": (int, float)},
    "errorRate": (int, float),
    "sessions": {"active": int},
    "memory": {"rssBytes": int},
    "cpuPercent": (int, float),
}


def test_lb_metrics_count_this_instances_requests(client: TestClient[Any]) -> None:
    register(client)
    for _ in range(3):
        client.get("/api/v1/no-such-thing")
    body = client.get("/api/v1/load-balancer/metrics").json()
    assert_types(body, METRICS_SPEC)
    assert body["scope"] == "instance"
    assert body["instanceId"] == "api-1"
    assert body["requests"]["byStatus"]["4xx"] >= 3
    assert body["requests"]["byStatus"]["2xx"] >= 1
    assert body["requests"]["total"] >= 4
    # The metrics request itself is in flight while it is answered.
    assert body["requests"]["inFlight"] >= 1
    assert body["requests"]["perSecond"] > 0
    assert 0 < body["latencyMs"]["p50"] <= body["latencyMs"]["p95"] <= body["latencyMs"]["p99"]
    assert body["errorRate"] == 0
    assert body["sessions"]["active"] >= 1
    assert body["memory"]["rssBytes"] > 10 * 1024 * 1024


OPERATOR_TOKEN = "operator-token-0123456789"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture
def operator_client(app_factory: Callable[..., TestClient[Any]]) -> TestClient[Any]:
    """api-1 with OPERATOR_TOKEN set: the cluster-wide views need it (docs/security.md)."""
    return app_factory(instance_id="api-1", operator_token=OPERATOR_TOKEN)


def test_cluster_scope_adds_up_every_live_instance(
    operator_client: TestClient[Any], client_b: TestClient[Any]
) -> None:
    client = operator_client
    for _ in range(2):
        client_b.get("/api/v1/no-such-thing")
    # Both apps share one Valkey and key prefix: the registry holds api-1 and api-2.
    body = client.get("/api/v1/load-balancer/metrics?scope=cluster", headers=OPERATOR).json()
    assert_types(body, {**METRICS_SPEC, "instances": list})
    assert body["scope"] == "cluster"
    ids = {item["instanceId"] for item in body["instances"]}
    assert {"api-1", "api-2"} <= ids
    for item in body["instances"]:
        assert_types(item, {k: v for k, v in METRICS_SPEC.items() if k != "scope"})
    assert body["requests"]["total"] == sum(i["requests"]["total"] for i in body["instances"])

    assert_problem(client.get("/api/v1/load-balancer/metrics?scope=galaxy"), 422, "validation")


def test_instances_lists_every_live_instance_with_its_record(
    operator_client: TestClient[Any], client_b: TestClient[Any]
) -> None:
    body = operator_client.get("/api/v1/load-balancer/instances", headers=OPERATOR).json()
    assert isinstance(body["count"], int)
    assert body["count"] == len(body["instances"])
    mine = {i["instanceId"]: i for i in body["instances"]}
    assert {"api-1", "api-2"} <= set(mine)
    record = mine["api-2"]
    assert_types(
        record,
        {
            "instanceId": str,
            "address": str,
            "version": str,
            "state": str,
            "startedAt": str,
            "lastHeartbeat": str,
            "inFlight": int,
            "requestsTotal": int,
        },
    )
    assert record["state"] == "ready"
    assert ISO_MS.match(record["startedAt"])
    assert ISO_MS.match(record["lastHeartbeat"])


def test_config_shows_effective_settings_without_secrets(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    token = OPERATOR_TOKEN
    client = app_factory(operator_token=token, redis_password="hunter2-password")
    response = client.get("/api/v1/load-balancer/config", headers=OPERATOR)
    assert response.status_code == 200
    body = response.json()
    assert body["HAVEN_ENV"] == "test"
    assert isinstance(body["DRAIN_DELAY"], int)
    assert isinstance(body["SHUTDOWN_TIMEOUT"], int)
    assert body["REDIS_PASSWORD"] == "(set)"
    assert body["RATE_LIMIT_ENABLED"] is False
    assert body["OPERATOR_TOKEN"] == "(set)"
    assert body["SECRET_KEY"] == "(set)"
    text = response.text
    settings = services_of(client.app).settings
    assert settings.secret_key not in text
    assert token not in text
    assert "hunter2-password" not in text


def test_prometheus_metrics_parse_and_include_process_and_sessions(
    client: TestClient[Any],
) -> None:
    register(client)
    client.get("/api/v1/no-such-thing")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert "process_resident_memory_bytes" in families
    assert "process_cpu_seconds" in families
    assert families["haven_active_sessions"].samples[0].value >= 1
    requests = families["haven_http_requests"]
    statuses = {s.labels["status"] for s in requests.samples if s.name.endswith("_total")}
    assert {"2xx", "4xx"} <= statuses
    deps = {s.labels["dependency"]: s.value for s in families["haven_dependency_up"].samples}
    assert deps == {"redis": 1.0, "database": 1.0}
    assert families["haven_instance_ready"].samples[0].value == 1


def test_every_response_carries_the_instance_headers_errors_included(
    client: TestClient[Any],
) -> None:
    answers = [
        client.get("/health"),
        client.get("/api/v1/does-not-exist"),  # 404 from the router, no route matched
        client.post("/health"),  # 405
        client.get("/api/v1/auth/me"),  # 401 problem
        client.post(
            "/api/v1/auth/login", content=b"{", headers={"content-type": "application/json"}
        ),
    ]
    for response in answers:
        for header in LB_HEADERS:
            assert header in response.headers, (response.request.url, header)
        assert response.headers["x-instance-id"] == "api-1"
        assert response.headers["x-served-by"] == "api-1"
        assert response.headers["x-load-balancer-ready"] == "true"
        assert response.headers["x-stateless"] == "true"
        assert response.headers["x-session-shared"] == "true"
        assert re.match(r"^\d+(\.\d+)?ms$", response.headers["x-response-time"])
        assert "connection" not in response.headers or response.headers["connection"] != "close"
    assert answers[1].status_code == 404
    assert answers[2].status_code == 405


def test_an_incoming_request_id_is_kept_and_a_bad_one_replaced(client: TestClient[Any]) -> None:
    kept = client.get("/api/v1/auth/me", headers={"X-Request-Id": "trace-abc.123"})
    assert kept.headers["x-request-id"] == "trace-abc.123"
    replaced = client.get("/health", headers={"X-Request-Id": "bad id with spaces"})
    assert re.match(r"^[0-9a-f]{32}$", replaced.headers["x-request-id"])


def test_security_headers_and_a_csp_that_still_lets_docs_work(
    client: TestClient[Any], app_factory: Callable[..., TestClient[Any]]
) -> None:
    api = client.get("/api/v1/auth/me")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.headers["x-frame-options"] == "DENY"
    assert api.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in api.headers["content-security-policy"]
    assert "default-src 'none'" in api.headers["content-security-policy"]
    assert "strict-transport-security" not in api.headers  # not in test/development

    docs = client.get("/docs")
    assert docs.status_code == 200
    csp = docs.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline'" in csp
    assert "frame-ancestors 'none'" in csp
    # Every script and stylesheet the page loads is served by Haven itself, under /docs/assets.
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', docs.text)
    assert assets
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        assert client.get(asset).status_code == 200

    production = app_factory(env="production")
    hsts = production.get("/health").headers["strict-transport-security"]
    assert hsts.startswith("max-age=")


def test_cors_allows_configured_origins_with_credentials_and_exposes_headers(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    client = app_factory(cors_origins=("https://app.example.com",))
    preflight = client.options(
        "/api/v1/properties",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-csrf-token",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    assert preflight.headers["access-control-allow-credentials"] == "true"

    simple = client.get("/api/v1/auth/me", headers={"Origin": "https://app.example.com"})
    assert simple.headers["access-control-allow-origin"] == "https://app.example.com"
    exposed = simple.headers["access-control-expose-headers"].lower()
    for header in ("x-request-id", "etag", "ratelimit-remaining"):
        assert header in exposed

    other = client.get("/api/v1/auth/me", headers={"Origin": "https://evil.example.net"})
    assert "access-control-allow-origin" not in other.headers


def test_debug_sleep_exists_only_in_the_test_environment(
    client: TestClient[Any], app_factory: Callable[..., TestClient[Any]]
) -> None:
    assert client.get("/api/v1/load-balancer/debug/sleep?ms=1").json() == {"slept": 1}
    development = app_factory(env="development")
    assert_problem(development.get("/api/v1/load-balancer/debug/sleep?ms=1"), 404, "not-found")
    assert "/api/v1/load-balancer/debug/sleep" not in client.get("/openapi.json").text
