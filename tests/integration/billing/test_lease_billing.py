"""Billing that matches the lease: proration, due dates, termination, dry-run statuses, audit."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from support import Account, add_member, assert_problem, register
from support_leases import active_lease, ledger, pay


def _run(client: TestClient[Any], account: Account, **body: Any) -> Any:
    response = client.post("/api/v1/billing/run", headers=account.headers, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _charges(client: TestClient[Any], account: Account, lease_id: str) -> list[tuple[Any, ...]]:
    return [
        (e["type"], e["kind"], e["amount"], e["date"])
        for e in ledger(client, account, lease_id)["entries"]
    ]


def test_lease_starting_on_the_25th_is_prorated_and_due_on_its_start(
    client: TestClient[Any], owner: Account
) -> None:
    fee = {"kind": "flat", "amount": 5000}
    lease = active_lease(client, owner, startDate="2026-03-25", endDate=None, rent=310000,
                         dueDay=1, graceDays=5, lateFee=fee)  # fmt: skip
    # Before the lease begins nothing is due, and no late fee can follow.
    assert _run(client, owner, date="2026-03-01")["charges"] == []
    assert _run(client, owner, date="2026-03-24")["charges"] == []
    first = _run(client, owner, date="2026-03-25")
    assert [(c["kind"], c["amount"], c["dueDate"], c["status"]) for c in first["charges"]] == [
        ("rent", 70000, "2026-03-25", "posted")  # 310000 x 7 / 31
    ]
    assert first["charges"][0]["description"] == "Rent 2026-03 (2026-03-25 to 2026-03-31)"
    assert _run(client, owner, date="2026-03-30")["posted"] == 0  # within grace
    _run(client, owner, date="2026-04-01")
    assert _charges(client, owner, lease["id"]) == [
        ("charge", "rent", 70000, "2026-03-25"),
        ("charge", "rent", 310000, "2026-04-01"),
    ]


def test_termination_mid_month_credits_the_days_after_it(
    client: TestClient[Any], owner: Account
) -> None:
    lease = active_lease(client, owner, startDate="2026-01-01", endDate=None, rent=300000,
                         lateFee=None)  # fmt: skip
    _run(client, owner, date="2026-06-01")
    done = client.post(
        f"/api/v1/leases/{lease['id']}/terminate",
        headers=owner.headers,
        json={"date": "2026-06-10"},
    )
    assert done.status_code == 200, done.text
    # June now owes 10 of 30 days: 100000; 200000 comes back as an adjustment credit.
    assert _charges(client, owner, lease["id"]) == [
        ("charge", "rent", 300000, "2026-06-01"),
        ("credit", "rent", -200000, _today(client, owner)),
    ]
    assert ledger(client, owner, lease["id"])["balance"] == 100000
    # Later runs neither bill July nor adjust June again.
    assert _run(client, owner, date="2026-07-01")["charges"] == []
    assert _run(client, owner, date="2026-06-20")["posted"] == 0
    assert ledger(client, owner, lease["id"])["balance"] == 100000


def test_an_earlier_end_credits_the_days_billed_past_it(
    client: TestClient[Any], owner: Account
) -> None:
    lease = active_lease(client, owner, startDate="2026-01-01", endDate="2026-12-31",
                         rent=300000, lateFee=None)  # fmt: skip
    _run(client, owner, date="2026-06-01")
    moved = client.patch(f"/api/v1/leases/{lease['id']}", headers=owner.headers,
                         json={"endDate": "2026-06-20"})  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert [(e["type"], e["amount"]) for e in ledger(client, owner, lease["id"])["entries"]] == [
        ("charge", 300000),
        ("credit", -100000),  # 10 of 30 days no longer owed
    ]


def _today(client: TestClient[Any], owner: Account) -> str:
    return str(_run(client, owner, dryRun=True)["date"])


def test_dry_run_tells_would_post_from_already_posted(
    client: TestClient[Any], owner: Account
) -> None:
    lease = active_lease(client, owner, startDate="2026-01-01", endDate=None, rent=90000,
                         lateFee=None)  # fmt: skip
    preview = _run(client, owner, date="2026-05-03", dryRun=True)["charges"]
    assert [(c["status"], c["entryId"]) for c in preview] == [("would_post", None)]
    posted = _run(client, owner, date="2026-05-03")["charges"]
    assert posted[0]["status"] == "posted"
    entry_id = posted[0]["entryId"]
    assert entry_id == ledger(client, owner, lease["id"])["entries"][0]["id"]
    again = _run(client, owner, date="2026-05-04", dryRun=True)["charges"]
    assert [(c["status"], c["entryId"], c["posted"]) for c in again] == [
        ("already_posted", entry_id, False)
    ]


def test_every_billed_entry_is_audited_with_who_posted_it(
    client: TestClient[Any], owner: Account
) -> None:
    lease = active_lease(client, owner, startDate="2026-01-01", endDate=None, rent=1000,
                         lateFee=None)  # fmt: skip
    entry_id = _run(client, owner, date="2026-02-01")["charges"][0]["entryId"]
    events = client.get(
        "/api/v1/audit-events", headers=owner.headers, params={"entityId": entry_id}
    ).json()["items"]
    assert [(e["action"], e["actorId"], e["systemActor"]) for e in events] == [
        ("ledger_entry.created", owner.user_id, None)
    ]
    assert lease["id"]


def test_rent_changes_split_the_month_and_only_future_ones_can_go(
    client: TestClient[Any], owner: Account
) -> None:
    lease = active_lease(client, owner, startDate="2026-01-01", endDate=None, rent=300000,
                         lateFee=None)  # fmt: skip
    path = f"/api/v1/leases/{lease['id']}/rent-changes"
    made = client.post(path, headers=owner.headers, json={"effectiveDate": "2030-06-11",
                                                            "rent": 330000})  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["source"] == "manual"
    june = _run(client, owner, date="2030-06-01")["charges"]
    assert [c["amount"] for c in june] == [320000]  # 10 days at 300000, 20 at 330000, / 30
    assert [c["amount"] for c in _run(client, owner, date="2030-07-01")["charges"]] == [330000]
    # The same date twice is a conflict; one already in force cannot be deleted.
    again = client.post(path, headers=owner.headers, json={"effectiveDate": "2030-06-11",
                                                             "rent": 1})  # fmt: skip
    assert_problem(again, 409)
    past = client.post(path, headers=owner.headers, json={"effectiveDate": "2026-02-01",
                                                            "rent": 310000})  # fmt: skip
    assert past.status_code == 201
    assert_problem(client.delete(f"{path}/{past.json()['id']}", headers=owner.headers), 409)
    # A future one goes; the list shows what is left, by date.
    future = made.json()["id"]
    assert client.delete(f"{path}/{future}", headers=owner.headers).status_code == 204
    listed = client.get(path, headers=owner.headers).json()
    assert [(c["effectiveDate"], c["rent"]) for c in listed] == [("2026-02-01", 310000)]
    # June and July 2030 were billed with the deleted change in them: adjusted to 310000 each.
    assert ledger(client, owner, lease["id"])["balance"] == 2 * 310000
    # The rent roll and the dashboard show the rent in force today, not the lease's first.
    roll = client.get("/api/v1/reports/rent-roll", headers=owner.headers).json()
    assert [r["rent"] for r in roll["items"] if r["leaseId"] == lease["id"]] == [310000]
    board = client.get("/api/v1/dashboard", headers=owner.headers).json()
    assert board["monthlyRentRoll"] == 310000


def test_rent_change_rules_and_guards(client: TestClient[Any], owner: Account) -> None:
    lease = active_lease(client, owner, startDate="2026-01-01", endDate="2026-12-31")
    path = f"/api/v1/leases/{lease['id']}/rent-changes"
    before = client.get(path, headers=owner.headers).json()
    for body, status in [
        ({"effectiveDate": "2025-12-31", "rent": 1}, 422),  # before the lease starts
        ({"effectiveDate": "2027-01-01", "rent": 1}, 422),  # after it ends
        ({"effectiveDate": "2026-05-01", "rent": -1}, 422),
        ({"effectiveDate": "2026-05-01", "rent": 10.5}, 422),
        ({"effectiveDate": "2026-05-01"}, 422),
    ]:
        assert_problem(client.post(path, headers=owner.headers, json=body), status)
    staff = add_member(client, owner, "staff")
    ok = {"effectiveDate": "2026-05-01", "rent": 1}
    assert_problem(client.post(path, headers=staff.headers, json=ok), 403)
    other = register(client)
    assert_problem(client.post(path, headers=other.headers, json=ok), 404)
    assert_problem(client.get(path, headers=other.headers), 404)
    assert client.get(path, headers=owner.headers).json() == before
    done = client.post(
        f"/api/v1/leases/{lease['id']}/terminate",
        headers=owner.headers,
        json={"date": "2026-03-01"},
    )
    assert done.status_code == 200
    assert_problem(client.post(path, headers=owner.headers, json=ok), 409)
    assert client.get(path, headers=owner.headers).json() == before


def test_escalation_generates_yearly_rent_changes(client: TestClient[Any], owner: Account) -> None:
    lease = active_lease(client, owner, startDate="2026-01-01", endDate="2028-12-31",
                         rent=100000, escalation={"percentBasisPoints": 300})  # fmt: skip
    assert lease["escalation"] == {"percentBasisPoints": 300, "everyMonths": 12}
    listed = client.get(f"/api/v1/leases/{lease['id']}/rent-changes", headers=owner.headers)
    assert [(c["effectiveDate"], c["rent"], c["source"]) for c in listed.json()] == [
        ("2027-01-01", 103000, "escalation"),
        ("2028-01-01", 106090, "escalation"),
    ]
    assert [c["amount"] for c in _run(client, owner, date="2027-03-01")["charges"]] == [103000]


def test_recurring_charges_bill_with_the_rent_prorated(
    client: TestClient[Any], owner: Account
) -> None:
    lease = active_lease(client, owner, startDate="2026-01-01", endDate=None, rent=100000,
                         lateFee=None)  # fmt: skip
    path = f"/api/v1/leases/{lease['id']}/recurring-charges"
    made = client.post(path, headers=owner.headers, json={
        "kind": "parking", "amount": 6200, "startDate": "2026-03-10", "endDate": "2026-04-30",
        "description": "Parking space 4"})  # fmt: skip
    assert made.status_code == 201, made.text
    march = _run(client, owner, date="2026-03-15")["charges"]
    assert [(c["kind"], c["amount"], c["dueDate"]) for c in march] == [
        ("rent", 100000, "2026-03-01"),
        ("parking", 4400, "2026-03-10"),  # 6200 x 22 / 31
    ]
    assert [c["amount"] for c in _run(client, owner, date="2026-04-01")["charges"]] == [
        100000,
        6200,
    ]
    assert [c["kind"] for c in _run(client, owner, date="2026-05-01")["charges"]] == ["rent"]
    # Billed: it stays (history), but it can end; months billed past its end are credited.
    charge_path = f"{path}/{made.json()['id']}"
    stale = client.patch(charge_path, headers={**owner.headers, "If-Match": '"9"'},
                         json={"endDate": "2026-04-15"})  # fmt: skip
    assert_problem(stale, 412)
    ended = client.patch(charge_path, headers={**owner.headers, "If-Match": '"1"'},
                         json={"endDate": "2026-04-15"})  # fmt: skip
    assert ended.status_code == 200, ended.text
    assert (ended.json()["endDate"], ended.json()["version"]) == ("2026-04-15", 2)
    assert ended.headers["etag"] == '"2"'
    credits = [e for e in ledger(client, owner, lease["id"])["entries"] if e["type"] == "credit"]
    assert [(c["kind"], c["amount"]) for c in credits] == [("parking", -3100)]  # 16 of 30 days
    outside = client.patch(charge_path, headers=owner.headers, json={"endDate": "2026-03-01"})
    assert_problem(outside, 422)  # before the charge starts
    other = active_lease(client, owner)
    assert_problem(client.patch(f"/api/v1/leases/{other['id']}/recurring-charges/"
                                f"{made.json()['id']}", headers=owner.headers,
                                json={"endDate": None}), 404)  # fmt: skip
    assert_problem(client.delete(f"{path}/{made.json()['id']}", headers=owner.headers), 409)
    pet = {"kind": "pet", "amount": 2500, "startDate": "2027-01-01"}
    later = client.post(path, headers=owner.headers, json=pet)
    assert client.delete(f"{path}/{later.json()['id']}", headers=owner.headers).status_code == 204
    assert [c["kind"] for c in client.get(path, headers=owner.headers).json()] == ["parking"]


def test_aging_report_as_csv(client: TestClient[Any], owner: Account) -> None:
    lease = active_lease(client, owner, startDate="2026-01-01", endDate=None, rent=50000,
                         lateFee=None)  # fmt: skip
    _run(client, owner, date="2026-01-01")
    response = client.get("/api/v1/reports/aging", headers={**owner.headers, "Accept": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().split("\r\n")
    assert lines[0].startswith("lease_id,status,property,unit,tenants,balance,current")
    assert lines[1].startswith(lease["id"])
    assert ",50000," in lines[1]
    assert lines[-1].startswith("total,")
    bad = client.get("/api/v1/reports/aging", headers={**owner.headers, "Accept": "image/png"})
    assert_problem(bad, 406)
    assert pay(client, owner, lease["id"], 1).status_code == 201
