"""Helpers for the maintenance and audit tests: requests, transitions, audit reads."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from support import Account

BASE = "/api/v1/maintenance-requests"

# Shortest walk from a fresh (open) request to each status.
PATH_TO: dict[str, list[str]] = {
    "open": [],
    "in_progress": ["in_progress"],
    "on_hold": ["in_progress", "on_hold"],
    "resolved": ["in_progress", "resolved"],
    "closed": ["in_progress", "resolved", "closed"],
    "cancelled": ["cancelled"],
}

ALLOWED = {
    ("open", "in_progress"),
    ("open", "cancelled"),
    ("in_progress", "on_hold"),
    ("in_progress", "resolved"),
    ("in_progress", "cancelled"),
    ("on_hold", "in_progress"),
    ("on_hold", "cancelled"),
    ("resolved", "closed"),
    ("resolved", "in_progress"),
}


def create_request(
    client: TestClient[Any], account: Account, property_id: str, **changes: Any
) -> dict[str, Any]:
    body = {"propertyId": property_id, "title": "Leaking tap", **changes}
    response = client.post(BASE, headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def transition(
    client: TestClient[Any], account: Account, request_id: str, to: str, **headers: str
) -> Any:
    return client.post(
        f"{BASE}/{request_id}/transition", headers={**account.headers, **headers}, json={"to": to}
    )


def walk_to(client: TestClient[Any], account: Account, request_id: str, status: str) -> None:
    for step in PATH_TO[status]:
        response = transition(client, account, request_id, step)
        assert response.status_code == 200, response.text


def audit_events(client: TestClient[Any], account: Account, **params: Any) -> list[dict[str, Any]]:
    """Every audit event matching the filters, newest first, following cursors (bounded)."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {"limit": 100, **params}
        if cursor:
            query["cursor"] = cursor
        response = client.get("/api/v1/audit-events", headers=account.headers, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["nextCursor"]
        if not cursor:
            return items
    raise AssertionError("audit listing did not end within 100 pages")
