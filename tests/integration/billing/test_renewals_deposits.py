"""Renewals hand the unit over without gap or double charge; deposits are held and settled."""

from __future__ import annotations

import csv
import io
from typing import Any

from litestar.testing import TestClient

from support import Account, assert_problem, register
from support_leases import active_lease, charge, key, ledger, pay


def _run(client: TestClient[Any], account: Account, on: str) -> Any:
    response = client.post("/api/v1/billing/run", headers=account.headers, json={"date": on})
    assert response.status_code == 200, response.text
    return response.json()


def _lease(client: TestClient[Any], account: Account, lease_id: str) -> dict[str, Any]:
    return dict(client.get(f"/api/v1/leases/{lease_id}", headers=account.headers).json())


def test_renewal_takes_over_the_day_after_without_gap_or_double_charge(
    client: TestClient[Any], owner: Account
) -> None:
    old = active_lease(client, owner, startDate="2026-01-01", endDate="2026-06-15",
                       rent=300000, lateFee=None)  # fmt: skip
    path = f"/api/v1/leases/{old['id']}/renew"
    # Overlapping or leaving a gap is refused, and nothing is created.
    assert_problem(client.post(path, headers=owner.headers,
                               json={"rent": 1, "startDate": "2026-06-15"}), 409)  # fmt: skip
    assert_problem(client.post(path, headers=owner.headers,
                               json={"rent": 1, "startDate": "2026-06-20"}), 422)  # fmt: skip
    made = client.post(path, headers={**owner.headers, **key()},
                       json={"rent": 330000, "endDate": "2027-06-15"})  # fmt: skip
    assert made.status_code == 201, made.text
    new = made.json()
    assert (new["status"], new["startDate"], new["renews"]) == ("draft", "2026-06-16", old["id"])
    assert (new["tenantIds"], new["unitId"]) == (old["tenantIds"], old["unitId"])
    assert_problem(client.post(path, headers=owner.headers, json={"rent": 1}), 409)  # one only
    # Moving the end would break the handover: refused while the renewal waits.
    moved = client.patch(f"/api/v1/leases/{old['id']}", headers=owner.headers,
                         json={"endDate": "2026-06-30"})  # fmt: skip
    assert_problem(moved, 409)
    _run(client, owner, "2026-06-01")
    assert _lease(client, owner, new["id"])["status"] == "draft"
    _run(client, owner, "2026-06-16")  # the old lease ends, the renewal activates
    assert _lease(client, owner, old["id"])["status"] == "ended"
    assert _lease(client, owner, new["id"])["status"] == "active"
    _run(client, owner, "2026-07-01")
    old_rent = [e["amount"] for e in ledger(client, owner, old["id"])["entries"]]
    new_rent = [(e["amount"], e["date"]) for e in ledger(client, owner, new["id"])["entries"]]
    assert old_rent == [150000]  # June 1-15 of 30 days
    assert new_rent == [(165000, "2026-06-16"), (330000, "2026-07-01")]  # June 16-30, July
    unit = client.get(f"/api/v1/units/{old['unitId']}", headers=owner.headers).json()
    assert unit["status"] == "occupied"


def test_month_to_month_renewal_ends_the_current_lease_first(
    client: TestClient[Any], owner: Account
) -> None:
    old = active_lease(client, owner, startDate="2026-01-01", endDate=None)
    path = f"/api/v1/leases/{old['id']}/renew"
    assert_problem(client.post(path, headers=owner.headers, json={"rent": 1}), 422)
    made = client.post(path, headers=owner.headers, json={"rent": 2, "startDate": "2026-09-01"})
    assert made.status_code == 201, made.text
    assert _lease(client, owner, old["id"])["endDate"] == "2026-08-31"
    other = register(client)
    assert_problem(client.post(path, headers=other.headers, json={"rent": 1}), 404)


def test_deposit_is_charged_held_and_settled_with_a_statement(
    client: TestClient[Any], owner: Account
) -> None:
    lease = active_lease(client, owner, startDate="2026-01-01", endDate="2026-06-30",
                         rent=100000, deposit=200000, chargeDeposit=True, lateFee=None)  # fmt: skip
    entries = ledger(client, owner, lease["id"])["entries"]
    assert [(e["kind"], e["amount"], e["date"]) for e in entries] == [
        ("deposit", 200000, "2026-01-01")
    ]
    assert ledger(client, owner, lease["id"])["depositHeld"] == 0  # charged, not yet paid
    assert pay(client, owner, lease["id"], 200000, on="2026-01-01").status_code == 201
    view = ledger(client, owner, lease["id"])
    assert (view["balance"], view["depositHeld"]) == (0, 200000)
    board = client.get("/api/v1/dashboard", headers=owner.headers).json()
    assert board["depositsHeld"] == 200000
    path = f"/api/v1/leases/{lease['id']}/deposit-disposition"
    body = {"refundMethod": "check", "deductions": [{"reason": "Carpet cleaning", "amount": 15000}]}
    assert_problem(client.post(path, headers=owner.headers, json=body), 409)  # still active
    done = client.post(f"/api/v1/leases/{lease['id']}/terminate", headers=owner.headers,
                       json={"date": "2026-03-31"})  # fmt: skip
    assert done.status_code == 200
    _run(client, owner, "2026-03-01")  # March rent 100000, unpaid
    # Damage is charged as usual; the disposition applies the deposit to what is owed.
    charge(client, owner, lease["id"], 15000, "2026-03-31", kind="other")
    before = ledger(client, owner, lease["id"])
    for bad in (
        {"refundMethod": "check", "deductions": [{"reason": "Too much", "amount": 200001}]},
        {"refundMethod": "check", "refundAmount": 200001},
        {"refundMethod": "check", "deductions": [{"reason": "x", "amount": 15000}],
         "refundAmount": 185001},
        {"refundMethod": "check", "deductions": [{"reason": "x", "amount": 0}]},
        {"refundMethod": "check", "deductions": [{"reason": "x", "amount": 1.5}]},
        {"refundMethod": "gold"},
    ):  # fmt: skip
        assert_problem(client.post(path, headers=owner.headers, json=bad), 422)
    assert ledger(client, owner, lease["id"]) == before
    body["deductions"].append({"reason": "Unpaid rent March", "amount": 100000})
    once = key()
    settled = client.post(path, headers={**owner.headers, **once}, json=body)
    assert settled.status_code == 201, settled.text
    statement = settled.json()
    # A retry with the same Idempotency-Key gets the same statement and posts nothing.
    after = ledger(client, owner, lease["id"])
    replay = client.post(path, headers={**owner.headers, **once}, json=body)
    assert (replay.status_code, replay.json()) == (201, statement)
    assert ledger(client, owner, lease["id"]) == after
    assert (statement["depositPaid"], statement["deductions"], statement["refunded"]) == (
        200000,
        115000,
        85000,
    )
    assert (statement["depositHeld"], statement["balance"]) == (0, 0)
    assert [(line["item"], line["amount"]) for line in statement["lines"]] == [
        ("deposit_charged", 200000),
        ("deposit_paid", 200000),
        ("deduction", 15000),
        ("deduction", 100000),
        ("refund", 85000),
    ]
    # Nothing left to settle: a second disposition is refused.
    assert_problem(client.post(path, headers=owner.headers, json={"refundMethod": "check"}), 409)
    assert client.get("/api/v1/dashboard", headers=owner.headers).json()["depositsHeld"] == 0
    as_csv = client.get(f"/api/v1/leases/{lease['id']}/deposit-statement",
                        headers={**owner.headers, "Accept": "text/csv"})  # fmt: skip
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0][:4] == ["date", "item", "description", "amount_usd_minor"]
    assert ["2026-03-31" if False else rows[3][0], "deduction", "Carpet cleaning", "15000"][
        1:4
    ] == (rows[3][1:4])
    assert rows[-2][1:4] == ["deposit_held", "Deposit held", "0"]


def test_deposit_disposition_of_another_organization_is_404(
    client: TestClient[Any], owner: Account
) -> None:
    lease = active_lease(client, owner, chargeDeposit=True)
    other = register(client)
    path = f"/api/v1/leases/{lease['id']}/deposit-disposition"
    assert_problem(client.post(path, headers=other.headers, json={"refundMethod": "cash"}), 404)
    assert_problem(
        client.get(f"/api/v1/leases/{lease['id']}/deposit-statement", headers=other.headers), 404
    )
