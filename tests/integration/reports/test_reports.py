"""Reports: rent roll as JSON and CSV, aging by lease and bucket."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import TestClient

from support import Account, assert_problem, create_tenant
from support_leases import active_lease, charge, new_unit, pay


def test_rent_roll_json_and_csv(client: TestClient[Any], owner: Account) -> None:
    tenant = create_tenant(client, owner, firstName="=cmd", lastName="Evil")
    lease = active_lease(client, owner, tenant_ids=[tenant["id"]], rent=90000)
    new_unit(client, owner)
    report = client.get("/api/v1/reports/rent-roll", headers=owner.headers)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["totals"]["units"] == 2
    assert body["totals"]["occupiedUnits"] == 1
    assert body["totals"]["rent"] == 90000
    leased = next(i for i in body["items"] if i["leaseId"] == lease["id"])
    assert leased["tenants"] == "=cmd Evil"
    assert leased["unitStatus"] == "occupied"

    as_csv = client.get(
        "/api/v1/reports/rent-roll", headers={**owner.headers, "Accept": "text/csv"}
    )
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == 2
    row = next(r for r in rows if r["leaseId"] == lease["id"])
    assert row["rent"] == "90000"
    assert row["tenants"] == "'=cmd Evil"  # never a formula in a spreadsheet
    assert_problem(
        client.get("/api/v1/reports/rent-roll", headers={**owner.headers, "Accept": "image/png"}),
        406,
    )


def test_aging_report_buckets_add_up(client: TestClient[Any], owner: Account) -> None:
    today = datetime.now(UTC).date()
    old = active_lease(client, owner)
    charge(client, owner, old["id"], 5000, (today - timedelta(days=100)).isoformat())
    charge(client, owner, old["id"], 3000, (today - timedelta(days=10)).isoformat())
    settled = active_lease(client, owner)
    charge(client, owner, settled["id"], 1000, today.isoformat())
    assert pay(client, owner, settled["id"], 1000).status_code == 201
    report = client.get("/api/v1/reports/aging", headers=owner.headers)
    assert report.status_code == 200, report.text
    body = report.json()
    assert [i["leaseId"] for i in body["items"]] == [old["id"]]
    item = body["items"][0]
    assert item["balance"] == 8000
    assert item["aging"]["over90"] == 5000
    assert item["aging"]["days1to30"] == 3000
    assert body["totals"]["balance"] == 8000
    assert sum(body["totals"]["aging"].values()) == 8000
