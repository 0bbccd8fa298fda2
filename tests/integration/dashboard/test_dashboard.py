"""Dashboard: the figures, and freshness across instances sharing Valkey and the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import TestClient

from haven.cluster.gate import GateMiddleware
from support import Account, assert_problem
from support_leases import active_lease, charge, new_unit, pay

FIELDS = {
    "properties", "units", "occupiedUnits", "occupancyRate", "monthlyRentRoll",
    "collectedThisMonth", "outstandingBalance", "depositsHeld", "overdueLeases", "leasesExpiring",
    "openMaintenance", "currency", "generatedAt",
}  # fmt: skip


def _get(client: TestClient[Any], account: Account) -> dict[str, Any]:
    response = client.get("/api/v1/dashboard", headers=account.headers)
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    return dict(response.json())


def test_figures(client: TestClient[Any], owner: Account) -> None:
    empty = _get(client, owner)
    assert set(empty) == FIELDS
    assert empty["units"] == 0
    assert empty["occupancyRate"] == 0
    assert empty["openMaintenance"] == {"low": 0, "normal": 0, "high": 0, "emergency": 0}

    today = datetime.now(UTC).date()
    lease = active_lease(
        client, owner, startDate=(today - timedelta(days=200)).isoformat(),
        endDate=(today + timedelta(days=45)).isoformat(), rent=100000,
    )  # fmt: skip
    new_unit(client, owner)
    charge(client, owner, lease["id"], 100000, (today - timedelta(days=40)).isoformat())
    assert pay(client, owner, lease["id"], 30000, on=today.isoformat()).status_code == 201
    client.post(
        "/api/v1/maintenance-requests",
        headers=owner.headers,
        json={"propertyId": lease["propertyId"], "title": "Leak", "priority": "high"},
    )
    board = _get(client, owner)
    assert board["properties"] == 2
    assert board["units"] == 2
    assert board["occupiedUnits"] == 1
    assert board["occupancyRate"] == 0.5
    assert board["monthlyRentRoll"] == 100000
    assert board["collectedThisMonth"] == 30000
    assert board["outstandingBalance"] == 70000
    assert board["overdueLeases"] == 1
    assert board["leasesExpiring"] == {"in30": 0, "in60": 1, "in90": 1}
    assert board["openMaintenance"]["high"] == 1
    assert board["currency"] == "USD"


def test_write_on_one_instance_is_seen_fresh_on_the_other(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    before = _get(client_b, owner)
    assert _get(client_b, owner) == before  # served from the cache: same generatedAt
    new_unit(client, owner)
    after = _get(client_b, owner)
    assert after["units"] == before["units"] + 1
    assert after["properties"] == before["properties"] + 1
    lease = active_lease(client, owner, rent=4200)
    assert _get(client_b, owner)["monthlyRentRoll"] == before["monthlyRentRoll"] + 4200
    assert pay(client, owner, lease["id"], 100, on=datetime.now(UTC).date().isoformat())
    assert _get(client_b, owner)["collectedThisMonth"] == 100


def test_dashboard_needs_a_session(client: TestClient[Any]) -> None:
    assert_problem(client.get("/api/v1/dashboard"), 401)


def test_cached_answer_is_the_computed_answer(client: TestClient[Any], owner: Account) -> None:
    """The first read computes the dashboard in the route; the next is answered from the
    bytes the gate's round trip read (haven.cluster.gate.GateMiddleware). A
    client cannot tell them apart: same status, body and headers (but request id and timing)."""
    computed = client.get("/api/v1/dashboard", headers=owner.headers)
    cached = client.get("/api/v1/dashboard", headers=owner.headers)
    assert computed.status_code == cached.status_code == 200
    assert cached.content == computed.content

    def stable(response: Any) -> dict[str, str]:
        return {
            k: v
            for k, v in response.headers.items()
            if k not in {"x-request-id", "x-response-time"}
        }

    assert stable(cached) == stable(computed)
    # With a query string (which the route ignores) the route itself answers: same bytes.
    assert client.get("/api/v1/dashboard?x=1", headers=owner.headers).content == cached.content


def test_the_running_app_serves_the_dashboard_from_the_edge(client: TestClient[Any]) -> None:
    """The edge of the running app collected the dashboard's declaration from its route."""
    handler: Any = client.app.asgi_handler
    for _ in range(10):  # Edge -> (CORS -> Probes) -> Gate
        if isinstance(handler, GateMiddleware):
            break
        handler = handler.app
    assert isinstance(handler, GateMiddleware)
    assert set(handler.views) == {"/api/v1/dashboard"}


def test_cached_dashboard_still_checks_the_session(client: TestClient[Any], owner: Account) -> None:
    """A warm cache never outlives a session: after logout the same cookie gets 401."""
    assert client.get("/api/v1/dashboard", headers=owner.headers).status_code == 200
    assert client.get("/api/v1/dashboard", headers=owner.headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=owner.headers).status_code in {200, 204}
    assert_problem(client.get("/api/v1/dashboard", headers=owner.headers), 401)
