"""Costs that stay flat as a portfolio grows (issue 19), counted, never timed.

* a list page runs the same statements whatever its size (limit 1 or 100) and however many
  rows the organization has, first page or after a cursor; a lease's ledger likewise;
* the rent roll CSV streams: a chunk per batch of properties, no Content-Length, and the
  body is the report's rows in the report's order;
* the billing job reads and commits leases in batches: N leases in ceil(N / size) batches,
  the charges the unbatched plan (a dry run) names, and a re-run posts nothing twice.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import event

from haven.billing.job import run_billing
from haven.reports import service as reports
from haven.services import services_of
from support import Account, register
from support_leases import active_lease, charge, ledger, pay

PAGES = ["/api/v1/properties", "/api/v1/units", "/api/v1/leases"]
SILENT = {"SELECT 1"}


@contextlib.contextmanager
def counted(client: TestClient[Any]) -> Iterator[list[str]]:
    """Every statement the app's engines send meanwhile (the dependency monitor's aside)."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.strip().upper() not in SILENT:
            statements.append(statement)

    services = services_of(client.app)
    engines = {id(e.sync_engine): e.sync_engine for e in (services.engine, services.read_engine)}
    for engine in engines.values():
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines.values():
            event.remove(engine, "before_cursor_execute", record)


def statements_for(client: TestClient[Any], account: Account, path: str) -> int:
    with counted(client) as statements:
        response = client.get(path, headers=account.headers)
        assert response.status_code == 200, response.text
    return len(statements)


def _leases(client: TestClient[Any], account: Account, n: int) -> list[dict[str, Any]]:
    start = (datetime.now(UTC).date() - timedelta(days=60)).isoformat()
    return [active_lease(client, account, startDate=start, endDate=None) for _ in range(n)]


def _page_counts(client: TestClient[Any], account: Account, path: str) -> dict[str, int]:
    """Statements for a page of 1 and of 100, and for the page after the first one's cursor."""
    first = client.get(f"{path}?limit=1", headers=account.headers).json()
    counts = {
        "limit=1": statements_for(client, account, f"{path}?limit=1"),
        "limit=100": statements_for(client, account, f"{path}?limit=100"),
    }
    if first["nextCursor"]:
        counts["after a cursor"] = statements_for(
            client, account, f"{path}?limit=1&cursor={first['nextCursor']}"
        )
    return counts


def test_list_pages_run_constant_statements_whatever_the_page_and_data_size(
    client: TestClient[Any],
) -> None:
    account = register(client)
    _leases(client, account, 2)
    few = {path: _page_counts(client, account, path) for path in PAGES}
    _leases(client, account, 12)
    for path in PAGES:
        assert len(client.get(f"{path}?limit=100", headers=account.headers).json()["items"]) >= 14
        many = _page_counts(client, account, path)
        assert set(many.values()) == {few[path]["limit=1"]}, (path, few[path], many)
        assert set(few[path].values()) == {few[path]["limit=1"]}, (path, few[path])


def test_a_ledger_page_runs_constant_statements_whatever_its_entries(
    client: TestClient[Any],
) -> None:
    account = register(client)
    [lease] = _leases(client, account, 1)
    path = f"/api/v1/leases/{lease['id']}/ledger"
    few = statements_for(client, account, path)
    today = datetime.now(UTC).date()
    for month in range(1, 16):
        due = (today - timedelta(days=30 * month)).isoformat()
        charge(client, account, lease["id"], 1000, due)
        assert pay(client, account, lease["id"], 1000, due).status_code == 201
    assert len(ledger(client, account, lease["id"])["entries"]) >= 30
    assert statements_for(client, account, path) == few


def test_rent_roll_csv_streams_a_chunk_per_batch_with_the_reports_rows(
    client: TestClient[Any], monkeypatch: Any
) -> None:
    account = register(client)
    made = _leases(client, account, 5)
    charge(client, account, made[0]["id"], 777, datetime.now(UTC).date().isoformat())
    monkeypatch.setattr(reports, "PROPERTY_BATCH", 2)
    report = client.get("/api/v1/reports/rent-roll", headers=account.headers).json()
    as_csv = client.get(
        "/api/v1/reports/rent-roll", headers={**account.headers, "Accept": "text/csv"}
    )
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "content-length" not in as_csv.headers  # streamed, not one body
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["unitLabel"], r["leaseId"], int(r["rent"]), int(r["balance"])) for r in rows] == [
        (i["unitLabel"], i["leaseId"] or "", i["rent"], i["balance"]) for i in report["items"]
    ]
    [first] = [i for i in report["items"] if i["leaseId"] == made[0]["id"]]
    assert first["balance"] == ledger(client, account, made[0]["id"])["balance"] != 0
    properties = len({i["propertyId"] for i in report["items"]})
    assert properties >= 5

    services = services_of(client.app)
    org_id = uuid.UUID(account.organization_id)

    async def chunks() -> list[bytes]:
        stream = reports.rent_roll_csv_stream(
            lambda: services.sessionmaker(bind=services.read_engine),
            org_id,
            datetime.now(UTC).date(),
            batch=2,
        )
        return [chunk async for chunk in stream]

    parts = client.blocking_portal.call(chunks)
    assert len(parts) == 1 + math.ceil(properties / 2)  # the header, then a chunk per batch
    assert b"".join(parts).decode() == as_csv.text


def test_billing_job_commits_leases_in_batches_and_posts_each_charge_once(
    client: TestClient[Any], settings_factory: Any
) -> None:
    account = register(client)
    made = [active_lease(client, account, dueDay=1 + i, rent=1000 * (i + 1)) for i in range(5)]
    on = date(2026, 3, 2)
    plan = client.post(
        "/api/v1/billing/run",
        headers=account.headers,
        json={"date": on.isoformat(), "dryRun": True},
    ).json()
    planned = sorted((c["leaseId"], c["kind"], c["amount"], c["dueDate"]) for c in plan["charges"])
    assert len(planned) == 5
    settings = settings_factory()
    org_id = uuid.UUID(account.organization_id)

    def run() -> Any:
        results = client.blocking_portal.call(
            run_billing, settings, on, settings.redis_url, None, 2
        )
        [mine] = [r for r in results if r.organization_id == org_id]
        return mine

    first = run()
    assert (first.leases, first.batches) == (5, 3)  # 2 + 2 + 1 leases
    assert (first.posted, first.already_posted) == (5, 0)
    posted = sorted(
        (lease["id"], e["kind"], e["amount"], e["date"])
        for lease in made
        for e in ledger(client, account, lease["id"])["entries"]
    )
    assert posted == planned  # what the unbatched plan said, nothing more
    again = run()
    assert (again.posted, again.already_posted, again.batches) == (0, 5, 3)
    assert (
        sum(len(ledger(client, account, lease["id"])["entries"]) for lease in made) == 5
    )  # nothing twice


def _dashboard_miss(client: TestClient[Any], account: Account) -> list[str]:
    """The statements of a dashboard read that misses the cache (a write just bumped it)."""
    with counted(client) as statements:
        response = client.get("/api/v1/dashboard", headers=account.headers)
        assert response.status_code == 200, response.text
    return statements


def test_a_dashboard_miss_runs_the_same_statements_for_one_lease_or_many(
    client: TestClient[Any],
) -> None:
    """Neither the leases nor the ledger's length show in the dashboard's statements: it adds
    up the totals kept with the writes (haven.ledger.totals), reading no ledger entry."""
    account = register(client)
    today = datetime.now(UTC).date()
    first = active_lease(client, account, startDate=(today - timedelta(days=90)).isoformat())
    charge(client, account, first["id"], 1000, today.isoformat())
    one = _dashboard_miss(client, account)
    for i in range(6):
        lease = active_lease(client, account, startDate=(today - timedelta(days=90)).isoformat())
        for month in range(3):
            due = (today - timedelta(days=30 * month + i)).isoformat()
            charge(client, account, lease["id"], 1000 + i, due)
            assert pay(client, account, lease["id"], 700, today.isoformat()).status_code == 201
    many = _dashboard_miss(client, account)
    assert _dashboard_miss(client, account) == []  # a hit: no statement at all
    assert len(many) == len(one), (one, many)
    assert not [s for s in many if "ledger_entries" in s], many
