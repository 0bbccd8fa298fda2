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

import pytest
from litestar.testing import TestClient
from sqlalchemy import event

from haven.services import services_of
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
def captured(client: TestClient[Any]) -> Iterator[list[tuple[str, Any]]]:
    """Every statement the app's engine sends meanwhile, with its bound parameters."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if statement.strip().upper() != "SELECT 1":
            statements.append((statement, parameters))

    engine = services_of(client.app).engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def statements_for(client: TestClient[Any], account: Account, path: str) -> list[str]:
    with captured(client) as statements:
        response = client.get(path, headers=account.cookie_headers)
        assert response.status_code == 200, response.text
    return [statement for statement, _ in statements]


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


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _explain(database_url: str, statements: list[tuple[str, Any]]) -> list[list[dict[str, Any]]]:
    """Each statement's plan nodes, with sequential scans and sorts discouraged: if the plan
    still scans a whole table or sorts, no index serves that filter or that order."""
    import asyncio
    import json

    import asyncpg

    async def run() -> list[list[dict[str, Any]]]:
        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            # Discourage whole-table scans and sorts: the planner then uses an index for a
            # filter or an order whenever one exists, however few rows the tables hold.
            await conn.execute("SET enable_seqscan = off")
            await conn.execute("SET enable_sort = off")
            plans = []
            for statement, params in statements:
                raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {statement}", *params)
                plans.append(list(_plan_nodes(json.loads(raw)[0]["Plan"])))
            return plans
        finally:
            await conn.close()

    return asyncio.run(run())


def _sorts_of(client: TestClient[Any], account: Account, path: str) -> list[str]:
    """The sort orders a list accepts, as its 422 for an unknown one names them."""
    response = client.get(f"{path}&sort=zzz", headers=account.headers)
    assert response.status_code == 422, response.text
    message = next(e["message"] for e in response.json()["errors"] if e["field"] == "sort")
    return message.removeprefix("must be one of ").split(", ")


def test_lists_and_ledger_are_served_by_indexes(
    client: TestClient[Any], owner: Account, database: Any
) -> None:
    """Every list in every sort order, first page and a page after a cursor, and the ledger:
    PostgreSQL's plan uses an index for each table it reads (no sequential scan even with
    seq scans discouraged), and a page's ORDER BY comes from the index (no Sort step)."""
    if database.backend != "postgresql":
        pytest.skip("query plans are checked on PostgreSQL")
    made = _grow(client, owner, 3)
    queries: list[tuple[str, str]] = [("ledger", f"/api/v1/leases/{made[0]['id']}/ledger")]
    for path in LISTS:
        short = path.replace("?limit=50", "?limit=2")
        for sort in _sorts_of(client, owner, short):
            first = client.get(f"{short}&sort={sort}", headers=owner.headers).json()
            assert first["nextCursor"], (path, sort)
            queries.append((f"{path} sort={sort}", f"{short}&sort={sort}"))
            queries.append(
                (
                    f"{path} sort={sort} after a cursor",
                    f"{short}&sort={sort}&cursor={first['nextCursor']}",
                )
            )
    problems = []
    for label, path in queries:
        with captured(client) as statements:
            assert client.get(path, headers=owner.headers).status_code == 200, label
        selects = [(s, p) for s, p in statements if s.lstrip().upper().startswith("SELECT")]
        assert selects, label
        for index, nodes in enumerate(_explain(database.url, selects)):
            scanned = [n.get("Relation Name") for n in nodes if n["Node Type"] == "Seq Scan"]
            if scanned:
                problems.append((label, "sequential scan of", scanned))
            page = index == 0 and label != "ledger"
            if page and any(n["Node Type"] == "Sort" for n in nodes):
                problems.append((label, "sorted outside an index", selects[0][0][:200]))
    assert problems == [], "\n".join(
        f"{label}: {what} {detail}" for label, what, detail in problems
    )
