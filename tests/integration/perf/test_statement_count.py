"""Statements per request stay constant as a page grows (no N+1), and a cached read runs none.

Counted on the app's own engine (SQLAlchemy's before_cursor_execute), excluding the
dependency monitor's `SELECT 1`, so the count is exact and independent of timing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import event

from support import Account
from support_leases import active_lease, charge, pay

LISTS = [
    "/api/v1/properties?limit=50",
    "/api/v1/units?limit=50",
    "/api/v1/tenants?limit=50",
    "/api/v1/leases?limit=50",
    "/api/v1/maintenance-requests?limit=50",
]


@contextlib.contextmanager
def counted(client: TestClient[Any]) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.strip().upper() != "SELECT 1":
            statements.append(statement)

    engine = client.app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def statements_for(client: TestClient[Any], account: Account, path: str) -> list[str]:
    with counted(client) as statements:
        response = client.get(path, headers=account.cookie_headers)
        assert response.status_code == 200, response.text
    return list(statements)


def _grow(client: TestClient[Any], owner: Account, leases: int) -> list[dict[str, Any]]:
    """`leases` active leases, each in its own property and unit, with a maintenance request."""
    today = datetime.now(UTC).date()
    made = []
    for _ in range(leases):
        lease = active_lease(client, owner, startDate=(today - timedelta(days=60)).isoformat())
        made.append(lease)
        response = client.post(
            "/api/v1/maintenance-requests",
            headers=owner.headers,
            json={"propertyId": lease["propertyId"], "unitId": lease["unitId"], "title": "Leak"},
        )
        assert response.status_code == 201, response.text
        charge(client, owner, lease["id"], 1000, today.isoformat())
    return made


def test_list_statements_do_not_grow_with_the_page(client: TestClient[Any], owner: Account) -> None:
    _grow(client, owner, 1)
    small = {path: statements_for(client, owner, path) for path in LISTS}
    _grow(client, owner, 6)
    for path in LISTS:
        response = client.get(path, headers=owner.headers)
        assert len(response.json()["items"]) >= 6, path
        large = statements_for(client, owner, path)
        assert len(large) == len(small[path]), (path, small[path], large)
        assert len(large) <= 5, (path, large)  # begin, the page, batched related rows


def test_ledger_statements_do_not_grow_with_the_entries(
    client: TestClient[Any], owner: Account
) -> None:
    today = datetime.now(UTC).date()
    lease = active_lease(client, owner, startDate=(today - timedelta(days=400)).isoformat())
    charge(client, owner, lease["id"], 1000, today.isoformat())
    path = f"/api/v1/leases/{lease['id']}/ledger"
    few = statements_for(client, owner, path)
    for month in range(1, 13):
        due = (today - timedelta(days=30 * month)).isoformat()
        charge(client, owner, lease["id"], 1000, due)
        assert pay(client, owner, lease["id"], 1000, due).status_code == 201
    assert len(client.get(path, headers=owner.headers).json()["entries"]) == 25
    many = statements_for(client, owner, path)
    assert len(many) == len(few), (few, many)


def test_property_page_and_ledger_are_one_select_each(
    client: TestClient[Any], owner: Account
) -> None:
    """The two hot reads the bench drives: a page of properties, a lease's ledger (the lease,
    its organization's currency and timezone, and its entries are joined)."""
    today = datetime.now(UTC).date()
    lease = active_lease(client, owner, startDate=(today - timedelta(days=60)).isoformat())
    charge(client, owner, lease["id"], 1000, today.isoformat())
    for path in ("/api/v1/properties?limit=50", f"/api/v1/leases/{lease['id']}/ledger"):
        statements = [
            s
            for s in statements_for(client, owner, path)
            if s.strip().upper() not in {"BEGIN", "ROLLBACK", "COMMIT"}  # SQLite's own
        ]
        assert len(statements) == 1, (path, statements)
        assert statements[0].lstrip().upper().startswith("SELECT"), statements


def test_cached_dashboard_runs_no_statement(client: TestClient[Any], owner: Account) -> None:
    _grow(client, owner, 2)
    first = statements_for(client, owner, "/api/v1/dashboard")
    assert any(re.search(r"\bFROM\b", s, re.I) for s in first)  # computed on the miss
    assert statements_for(client, owner, "/api/v1/dashboard") == []  # then served from Redis
