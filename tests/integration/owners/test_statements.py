"""Owner statements: JSON, CSV and PDF, reconciled with the ledger and the bills."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pypdf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from conftest import Database
from support import Account, assert_problem, create_property, create_unit, register
from support_leases import active_lease, ledger, pay
from support_owners import create_owner, pay_bill, put_shares, statement


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def add_months(day: date, n: int) -> date:
    index = day.year * 12 + day.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def collected(client: TestClient[Any], owner: Account, lease_ids: list[str], month: str) -> int:
    """Rent collected in a month straight from the ledger: payments less their reversals."""
    total = 0
    for lease_id in lease_ids:
        entries = ledger(client, owner, lease_id)["entries"]
        payments = {e["id"] for e in entries if e["type"] == "payment"}
        for e in entries:
            if not e["date"].startswith(month):
                continue
            if e["type"] == "payment" or (e["type"] == "reversal" and e["reverses"] in payments):
                total -= e["amount"]
    return total


def reverse_entry(client: TestClient[Any], owner: Account, entry_id: str) -> dict[str, Any]:
    response = client.post(f"/api/v1/ledger-entries/{entry_id}/reverse", headers=owner.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def money(amount: int) -> str:
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def test_a_statement_reconciles_and_renders(
    client: TestClient[Any], owner: Account, database: Database
) -> None:
    today = date.today()
    m0 = add_months(today.replace(day=1), -3)
    m1 = add_months(m0, 1)
    prop = create_property(
        client, owner, name="Maple Court", managementFee={"kind": "percent", "amount": 1000}
    )
    u1 = create_unit(client, owner, prop["id"], label="1A")
    u2 = create_unit(client, owner, prop["id"], label="2B")
    start = {"startDate": m0.isoformat(), "endDate": None}
    l1 = active_lease(client, owner, unit_id=u1["id"], **start)
    l2 = active_lease(client, owner, unit_id=u2["id"], **start)
    a = create_owner(client, owner, name="Alice Owner")
    b = create_owner(client, owner, name="Bob Owner")
    put_shares(client, owner, prop["id"], m0.isoformat(), [(a["id"], 6667), (b["id"], 3333)])
    put_shares(client, owner, prop["id"], (m1 + timedelta(days=14)).isoformat(), [(a["id"], 10000)])

    def paid(lease: dict[str, Any], amount: int, day: date) -> dict[str, Any]:
        response = pay(client, owner, lease["id"], amount, day.isoformat())
        assert response.status_code == 201, response.text
        return dict(response.json())

    paid(l1, 100001, m0 + timedelta(days=4))
    paid(l2, 50000, m0 + timedelta(days=9))
    paid(l1, 30000, m1 + timedelta(days=2))
    paid(l2, 20000, m1 + timedelta(days=20))
    wrong = paid(l1, 7000, m1 + timedelta(days=3))
    reversal = reverse_entry(client, owner, wrong["id"])
    pay_bill(database, owner.organization_id, prop["id"], 10000, m0 + timedelta(days=19))
    pay_bill(
        database, owner.organization_id, prop["id"], 5000, m1 + timedelta(days=19), reverse=True
    )
    payout = client.post(
        f"/api/v1/owners/{a['id']}/payouts",
        headers=owner.headers,
        json={"amount": 40000, "paidOn": (m0 + timedelta(days=27)).isoformat()},
    )
    assert payout.status_code == 201, payout.text

    months = sorted({month_of(m0), month_of(m1), reversal["date"][:7]})
    closing = {a["id"]: 0, b["id"]: 0}
    for month in months:
        bodies = {}
        for o in (a, b):
            response = statement(client, owner, o["id"], month)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["month"] == month
            assert body["currency"] == "USD"
            assert body["openingBalance"] == closing[o["id"]]
            assert body["closingBalance"] == (
                body["openingBalance"] + body["net"] - body["payouts"]
            )
            assert body["net"] == body["rentCollected"] - body["expenses"] - body["managementFee"]
            (line,) = body["properties"]
            assert sum(u["rentCollected"] for u in line["units"]) == line["rentCollected"]
            closing[o["id"]] = body["closingBalance"]
            bodies[o["id"]] = body
        rent = collected(client, owner, [l1["id"], l2["id"]], month)
        assert sum(x["rentCollected"] for x in bodies.values()) == rent
        fee = sum(x["managementFee"] for x in bodies.values())
        assert fee == (rent // 10 if rent % 10 < 5 else rent // 10 + 1)  # 10%, half up
        expected_expenses = 10000 if month == month_of(m0) else 0
        assert sum(x["expenses"] for x in bodies.values()) == expected_expenses

    jan = statement(client, owner, a["id"], month_of(m0)).json()
    # 150,001 split 66.67% / 33.33% by largest remainder, per payment
    assert jan["rentCollected"] == 66671 + 33335
    assert {u["unitLabel"]: u["rentCollected"] for u in jan["properties"][0]["units"]} == {
        "1A": 66671,
        "2B": 33335,
    }
    assert jan["expenses"] == 6667
    assert jan["payouts"] == 40000
    assert jan["properties"][0]["basisPoints"] == 6667
    assert jan["properties"][0]["managementFee"] == {"kind": "percent", "amount": 1000}

    as_csv = statement(client, owner, a["id"], month_of(m0), "text/csv")
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    summary = {r["item"]: int(r["amount"]) for r in rows if r["section"] == "summary"}
    assert summary["closingBalance"] == jan["closingBalance"]
    assert summary["openingBalance"] == 0
    units = {r["unitLabel"]: int(r["amount"]) for r in rows if r["section"] == "unit"}
    assert units == {"1A": 66671, "2B": 33335}

    as_pdf = statement(client, owner, a["id"], month_of(m0), "application/pdf")
    assert as_pdf.status_code == 200
    assert as_pdf.headers["content-type"] == "application/pdf"
    text = "\n".join(
        page.extract_text() for page in pypdf.PdfReader(io.BytesIO(as_pdf.content)).pages
    )
    assert "Alice Owner" in text
    assert "Maple Court" in text
    lines = {
        line.rsplit(" ", 1)[0].strip(): line.rsplit(" ", 1)[1]
        for line in text.splitlines()
        if " " in line
    }
    assert lines["Closing balance"] == money(jan["closingBalance"])
    assert lines["Unit 1A"] == money(66671)
    assert lines["Payouts"] == money(-40000)
    assert lines["Net owed"] == money(jan["net"])


def test_bad_months_formats_and_other_organizations(
    client: TestClient[Any], owner: Account
) -> None:
    o = create_owner(client, owner)
    future = add_months(date.today().replace(day=1), 2)
    for month in (
        "2026-13",
        "2026-00",
        "26-01",
        "2026-1",
        "\uff12\uff10\uff12\uff16-01",  # fullwidth digits
        "2026-0\u0661",  # an Arabic-Indic one
        "abcd-ef",
        "2026-01-01",
        month_of(future),
    ):
        assert_problem(statement(client, owner, o["id"], month), 422)
    empty = statement(client, owner, o["id"], "2025-06")
    assert empty.status_code == 200
    assert empty.json()["closingBalance"] == 0
    assert empty.json()["properties"] == []
    assert_problem(statement(client, owner, o["id"], "2025-06", "image/png"), 406)
    other = register(client, organization="Elsewhere")
    assert_problem(statement(client, other, o["id"], "2025-06"), 404)


MONTHS = 4


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    fee=st.sampled_from([None, ("percent", 850), ("flat", 12345)]),
)
def test_statements_of_all_owners_reconcile_with_the_ledger_and_bills(
    client: TestClient[Any], owner: Account, database: Database, data: st.DataObject, fee: Any
) -> None:
    """Random payments, payment reversals, bill payments and share sets: the owners'
    statements add up to the ledger's and the bills' figures, month by month, to the cent."""
    # The organization's date (it registered in UTC), not this machine's: with TZ east of
    # UTC, on the 1st the local month has not begun for the organization and its statement
    # is a 422.
    today = datetime.now(UTC).date()
    first = add_months(today.replace(day=1), -MONTHS)
    days = (today - first).days
    day = st.integers(0, days).map(lambda n: first + timedelta(days=n))
    prop = create_property(
        client,
        owner,
        **({"managementFee": {"kind": fee[0], "amount": fee[1]}} if fee else {}),
    )
    unit = create_unit(client, owner, prop["id"])
    lease = active_lease(
        client, owner, unit_id=unit["id"], startDate=first.isoformat(), endDate=None
    )
    owners = [create_owner(client, owner) for _ in range(3)]
    for n in range(data.draw(st.integers(1, 3))):
        count = data.draw(st.integers(1, 3))
        cuts = sorted(
            data.draw(st.sets(st.integers(1, 9999), min_size=count - 1, max_size=count - 1))
        )
        bounds = [0, *cuts, 10000]
        shares = [(owners[i]["id"], bounds[i + 1] - bounds[i]) for i in range(count)]
        effective = first if n == 0 else data.draw(day)
        put_shares(client, owner, prop["id"], effective.isoformat(), shares)
    for amount, on, undo in data.draw(
        st.lists(st.tuples(st.integers(1, 300_000), day, st.booleans()), max_size=6)
    ):
        response = pay(client, owner, lease["id"], amount, on.isoformat())
        assert response.status_code == 201, response.text
        if undo:
            reverse_entry(client, owner, response.json()["id"])
    bills: list[tuple[int, date, bool]] = data.draw(
        st.lists(st.tuples(st.integers(1, 90_000), day, st.booleans()), max_size=4)
    )
    for amount, on, undo in bills:
        pay_bill(database, owner.organization_id, prop["id"], amount, on, reverse=undo)
    for o in owners:
        for amount, on in data.draw(st.lists(st.tuples(st.integers(1, 50_000), day), max_size=2)):
            response = client.post(
                f"/api/v1/owners/{o['id']}/payouts",
                headers=owner.headers,
                json={"amount": amount, "paidOn": on.isoformat()},
            )
            assert response.status_code == 201

    closing = {o["id"]: 0 for o in owners}
    for k in range(MONTHS + 1):
        month = month_of(add_months(first, k))
        bodies = []
        for o in owners:
            body = statement(client, owner, o["id"], month).json()
            assert body["openingBalance"] == closing[o["id"]]
            assert body["closingBalance"] == body["openingBalance"] + body["net"] - body["payouts"]
            closing[o["id"]] = body["closingBalance"]
            bodies.append(body)
        rent = collected(client, owner, [lease["id"]], month)
        assert sum(b["rentCollected"] for b in bodies) == rent
        spent = sum(a for a, on, undo in bills if month_of(on) == month and not undo)
        assert sum(b["expenses"] for b in bodies) == spent
        fees = sum(b["managementFee"] for b in bodies)
        if fee and fee[0] == "percent":
            exact = rent * 850
            assert abs(fees * 10000 - exact) <= 5000  # rounded to the cent
        elif fee:
            assert fees == 12345
        else:
            assert fees == 0
