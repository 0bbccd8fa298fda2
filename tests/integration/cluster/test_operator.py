"""Operator endpoints: only the OPERATOR_TOKEN opens them; no organization role ever does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import TestClient

from haven.services import services_of
from support import assert_problem, register
from support_lb import poll

TOKEN = "operator-token-for-tests-0123456789"
OPERATOR_PATHS = ("/api/v1/load-balancer/health-check", "/api/v1/load-balancer/drain")


@pytest.mark.parametrize("path", OPERATOR_PATHS)
def test_operator_endpoints_do_not_exist_without_a_configured_token(
    client: TestClient[Any], path: str
) -> None:
    owner = register(client)
    assert_problem(client.post(path), 404, "not-found")
    assert_problem(client.post(path, headers={"Authorization": f"Bearer {TOKEN}"}), 404)
    assert_problem(client.post(path, headers=owner.headers), 404)
    assert client.get("/ready").status_code == 200  # nothing was drained


@pytest.mark.parametrize("path", OPERATOR_PATHS)
def test_operator_endpoints_refuse_a_missing_or_wrong_token_and_an_owners_session(
    app_factory: Callable[..., TestClient[Any]], path: str
) -> None:
    client = app_factory(operator_token=TOKEN)
    owner = register(client)
    assert_problem(client.post(path), 401, "not-signed-in")
    assert_problem(client.post(path, headers={"Authorization": "Bearer wrong-token"}), 403)
    assert_problem(client.post(path, headers={"Authorization": f"Bearer {TOKEN}x"}), 403)
    assert_problem(client.post(path, headers={"Authorization": f"Basic {TOKEN}"}), 401)
    assert_problem(client.post(path, headers=owner.headers), 403, "forbidden")
    cookie_and_csrf = {**owner.cookie_headers, "X-CSRF-Token": owner.csrf}
    assert_problem(client.post(path, headers=cookie_and_csrf), 401)
    assert client.get("/ready").status_code == 200  # nothing was drained


def test_health_check_with_the_token_rechecks_dependencies(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    client = app_factory(operator_token=TOKEN)
    response = client.post(
        "/api/v1/load-balancer/health-check", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["dependencies"] == {"redis": "healthy", "database": "healthy"}


def test_drain_turns_the_instance_not_ready_without_stopping_it(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    client = app_factory(operator_token=TOKEN, instance_id="drained-1")
    other = app_factory(instance_id="watcher-1", operator_token=TOKEN)
    owner = register(client)

    response = client.post(
        "/api/v1/load-balancer/drain", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 202
    assert response.json()["state"] == "draining"
    assert response.json()["instanceId"] == "drained-1"

    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["reason"] == "draining"
    assert ready.json()["state"] == "draining"
    assert ready.json()["ready"] is False
    assert ready.headers["x-load-balancer-ready"] == "false"
    # It still serves, and tells keep-alive clients to go elsewhere.
    me = client.get("/api/v1/auth/me", headers=owner.headers)
    assert me.status_code == 200
    assert me.headers["connection"] == "close"
    assert me.headers["x-load-balancer-ready"] == "false"
    assert client.get("/alive").status_code == 200
    assert client.get("/api/v1/load-balancer/health").json()["status"] == "degraded"

    # Another instance sees it draining in the registry (published on the change).
    def seen_draining() -> bool:
        listed = other.get(
            "/api/v1/load-balancer/instances", headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()["instances"]
        return {i["instanceId"]: i["state"] for i in listed}.get("drained-1") == "draining"

    poll(seen_draining, 5, "the registry to show drained-1 draining")


# -- issue 12: what names the cluster's insides is an operator endpoint -----------------------

CLUSTER_VIEWS = (
    "/api/v1/load-balancer/config",
    "/api/v1/load-balancer/instances",
    "/api/v1/load-balancer/metrics?scope=cluster",
)


@pytest.mark.parametrize("path", CLUSTER_VIEWS)
def test_cluster_views_need_the_operator_token(
    app_factory: Callable[..., TestClient[Any]], path: str
) -> None:
    client = app_factory(operator_token=TOKEN, instance_id="views-1")
    owner = register(client)
    for headers in ({}, {"Authorization": f"Basic {TOKEN}"}):
        denied = client.get(path, headers=headers)
        assert_problem(denied, 401, "not-signed-in")
        assert denied.headers["content-type"].startswith("application/problem+json")
    for headers in (
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        owner.headers,  # an owner's session is not the operator
    ):
        assert_problem(client.get(path, headers=headers), 403, "forbidden")
    # Nothing about the cluster's insides leaks in a refusal.
    refused = client.get(path).text
    for leak in ("127.0.0.1", "redis://", "sqlite", "views-1:"):
        assert leak not in refused
    opened = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert opened.status_code == 200


@pytest.mark.parametrize("path", CLUSTER_VIEWS)
def test_cluster_views_do_not_exist_without_a_configured_token(
    client: TestClient[Any], path: str
) -> None:
    assert_problem(client.get(path), 404, "not-found")
    assert_problem(client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}), 404)


def test_this_instances_own_health_and_metrics_stay_open_and_name_no_address(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    client = app_factory(operator_token=TOKEN, instance_id="open-1")
    settings = services_of(client.app).settings
    for path in ("/api/v1/load-balancer/health", "/api/v1/load-balancer/metrics"):
        response = client.get(path)
        assert response.status_code == 200, path
        text = response.text
        assert settings.redis_url.split("://", 1)[1].split("/", 1)[0] not in text, path
        assert "sqlite" not in text, path
        assert "postgresql" not in text, path
        assert '"address"' not in text, path
