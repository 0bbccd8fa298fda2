"""Bills and their payments: append-only movements that keep the bill in step, never overpaid."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from support import add_member, assert_problem, create_property, register
from support_portfolio import app_client
from support_vendors import (
    BILLS,
    create_bill,
    create_vendor,
    create_work_order,
    days_from_today,
    everything,
    listing,
    pay_bill,
    reverse_payment,
    today,
)


@pytest.fixture(scope="module")
def world(database: Any, valkey: Any, secret_key: str) -> Iterator[dict[str, Any]]:
    with app_client(database, valkey, secret_key, "bills") as client:
        owner = register(client, organization="Bill Homes")
        prop = create_property(client, owner)
        yield {
            "client": client,
            "owner": owner,
            "manager": add_member(client, owner, "manager"),
            "staff": add_member(client, owner, "staff"),
            "viewer": add_member(client, owner, "viewer"),
            "other": register(client, organization="Elsewhere"),
            "property": prop,
            "vendor": create_vendor(client, owner),
        }


def _bill(world: dict[str, Any], amount: int = 10000, **changes: Any) -> dict[str, Any]:
    return create_bill(
        world["client"],
        world["staff"],
        world["vendor"]["id"],
        world["property"]["id"],
        amount,
        **changes,
    )


def test_partial_payments_settle_reversal_reopens(world: dict[str, Any]) -> None:
    client, manager = world["client"], world["manager"]
    bill = _bill(world, 10000, description="Boiler service", reference="INV-77")
    assert bill["status"] == "open"
    assert bill["balance"] == 10000
    first = pay_bill(client, manager, bill["id"], 4000, paidOn=days_from_today(-2), reference="c1")
    assert first.status_code == 201, first.text
    assert first.json()["bill"]["amountPaid"] == 4000
    assert first.json()["bill"]["status"] == "open"
    assert first.json()["payment"]["paidOn"] == days_from_today(-2)
    # More than the balance is refused, and nothing changes.
    before = everything(client, manager)
    assert_problem(pay_bill(client, manager, bill["id"], 6001), 409, "conflict")
    assert everything(client, manager) == before
    second = pay_bill(client, manager, bill["id"], 6000)
    assert second.json()["bill"]["status"] == "paid"
    assert second.json()["bill"]["balance"] == 0
    assert second.json()["payment"]["paidOn"] == today()
    assert_problem(pay_bill(client, manager, bill["id"], 1), 409)
    # A paid bill can be neither changed nor voided.
    assert_problem(
        client.patch(f"{BILLS}/{bill['id']}", headers=manager.headers, json={"amount": 20000}), 409
    )
    assert_problem(client.post(f"{BILLS}/{bill['id']}/void", headers=manager.headers), 409)
    reversal = reverse_payment(client, manager, bill["id"], first.json()["payment"]["id"])
    assert reversal.status_code == 201, reversal.text
    rbody = reversal.json()
    assert rbody["payment"]["amount"] == -4000
    assert rbody["payment"]["reverses"] == first.json()["payment"]["id"]
    assert rbody["bill"]["status"] == "open"
    assert rbody["bill"]["amountPaid"] == 6000
    # once only; a reversal is final
    assert_problem(reverse_payment(client, manager, bill["id"], first.json()["payment"]["id"]), 409)
    assert_problem(reverse_payment(client, manager, bill["id"], rbody["payment"]["id"]), 409)
    payments = listing(client, manager, f"{BILLS}/{bill['id']}/payments")
    assert [p["amount"] for p in payments] == [4000, 6000, -4000]
    shown = client.get(f"{BILLS}/{bill['id']}", headers=world["viewer"].headers).json()
    assert shown["amountPaid"] == sum(p["amount"] for p in payments)
    # every movement left an audit event
    audit = listing(client, manager, "/api/v1/audit-events", entityType="bill_payment")
    ids = {e["entityId"] for e in audit}
    assert {p["id"] for p in payments} <= ids
    bill_audit = [
        e["action"] for e in listing(client, manager, "/api/v1/audit-events", entityId=bill["id"])
    ]
    assert "bill.paid" in bill_audit
    assert "bill.reopened" in bill_audit


def test_patch_and_void_while_unpaid(world: dict[str, Any]) -> None:
    client, staff, owner = world["client"], world["staff"], world["owner"]
    bill = _bill(world, 5000)
    stale = client.patch(
        f"{BILLS}/{bill['id']}", headers={**staff.headers, "If-Match": '"4"'}, json={"amount": 5500}
    )
    assert_problem(stale, 412)
    changed = client.patch(
        f"{BILLS}/{bill['id']}",
        headers={**staff.headers, "If-Match": '"1"'},
        json={"amount": 5500, "dueOn": days_from_today(40), "reference": "INV-9"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["amount"] == 5500
    before = everything(client, owner)
    assert_problem(
        client.patch(
            f"{BILLS}/{bill['id']}", headers=staff.headers, json={"dueOn": days_from_today(-30)}
        ),
        422,
    )
    assert everything(client, owner) == before
    assert_problem(client.post(f"{BILLS}/{bill['id']}/void", headers=staff.headers), 403)
    voided = client.post(f"{BILLS}/{bill['id']}/void", headers=owner.headers)
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "void"
    assert voided.json()["balance"] == 0
    before = everything(client, owner)
    assert_problem(pay_bill(client, owner, bill["id"], 100), 409)
    assert_problem(client.post(f"{BILLS}/{bill['id']}/void", headers=owner.headers), 409)
    assert_problem(
        client.patch(f"{BILLS}/{bill['id']}", headers=owner.headers, json={"amount": 1}), 409
    )
    assert everything(client, owner) == before


def test_a_bill_with_reversed_payments_can_be_voided(world: dict[str, Any]) -> None:
    client, owner = world["client"], world["owner"]
    bill = _bill(world, 700)
    paid = pay_bill(client, owner, bill["id"], 700).json()["payment"]
    assert_problem(client.post(f"{BILLS}/{bill['id']}/void", headers=owner.headers), 409)
    reverse_payment(client, owner, bill["id"], paid["id"])
    assert client.post(f"{BILLS}/{bill['id']}/void", headers=owner.headers).json()["status"] == (
        "void"
    )


def test_references_stay_in_the_organization_and_the_property(world: dict[str, Any]) -> None:
    client, owner, other = world["client"], world["owner"], world["other"]
    other_vendor = create_vendor(client, other)
    other_property = create_property(client, other)
    second = create_property(client, owner, name="Second Court")
    order = create_work_order(client, owner, second["id"], vendorId=world["vendor"]["id"])
    other_vendors_order = create_work_order(
        client, owner, world["property"]["id"], vendorId=create_vendor(client, owner)["id"]
    )
    base = {
        "vendorId": world["vendor"]["id"],
        "propertyId": world["property"]["id"],
        "amount": 100,
        "issuedOn": today(),
        "dueOn": today(),
    }
    before = everything(client, owner)
    for changes, field in (
        ({"vendorId": other_vendor["id"]}, "vendorId"),
        ({"propertyId": other_property["id"]}, "propertyId"),
        ({"workOrderId": order["id"]}, "workOrderId"),
        ({"workOrderId": other_vendors_order["id"]}, "workOrderId"),
        ({"dueOn": days_from_today(-1)}, "dueOn"),
    ):
        body = assert_problem(
            client.post(BILLS, headers=owner.headers, json={**base, **changes}), 422, "validation"
        )
        assert body["errors"][0]["field"] == field, body
    assert everything(client, owner) == before


def test_filters_roles_isolation(world: dict[str, Any]) -> None:
    client = world["client"]
    org = register(client, organization="Bill Filters")
    prop = create_property(client, org)
    plumber = create_vendor(client, org)
    painter = create_vendor(client, org, name="Paint Co", trade="painting")
    overdue = create_bill(
        client,
        org,
        plumber["id"],
        prop["id"],
        100,
        issuedOn=days_from_today(-40),
        dueOn=days_from_today(-10),
    )
    upcoming = create_bill(client, org, painter["id"], prop["id"], 200)
    paid_late = create_bill(
        client,
        org,
        painter["id"],
        prop["id"],
        300,
        issuedOn=days_from_today(-40),
        dueOn=days_from_today(-5),
    )
    pay_bill(client, org, paid_late["id"], 300)
    ids = lambda items: {b["id"] for b in items}  # noqa: E731
    assert ids(listing(client, org, BILLS)) == {overdue["id"], upcoming["id"], paid_late["id"]}
    assert ids(listing(client, org, BILLS, overdue="true")) == {overdue["id"]}
    assert ids(listing(client, org, BILLS, overdue="false")) == {upcoming["id"], paid_late["id"]}
    assert ids(listing(client, org, BILLS, status="paid")) == {paid_late["id"]}
    assert ids(listing(client, org, BILLS, vendorId=painter["id"])) == {
        upcoming["id"],
        paid_late["id"],
    }
    assert ids(listing(client, org, BILLS, dueBefore=today())) == {overdue["id"], paid_late["id"]}
    assert len(listing(client, org, BILLS, propertyId=prop["id"], limit=1)) == 3
    # roles
    staff, viewer = world["staff"], world["viewer"]
    mine = _bill(world, 100)
    assert_problem(pay_bill(client, staff, mine["id"], 10), 403)
    valid = {
        "vendorId": world["vendor"]["id"],
        "propertyId": world["property"]["id"],
        "amount": 100,
        "issuedOn": today(),
        "dueOn": today(),
    }
    assert_problem(client.post(BILLS, headers=viewer.headers, json=valid), 403)
    assert client.get(f"{BILLS}/{mine['id']}/payments", headers=viewer.headers).status_code == 200
    paid = pay_bill(client, world["manager"], mine["id"], 10).json()["payment"]
    assert_problem(reverse_payment(client, staff, mine["id"], paid["id"]), 403)
    # another organization
    before = everything(client, world["owner"])
    for response in (
        client.get(f"{BILLS}/{mine['id']}", headers=org.headers),
        client.get(f"{BILLS}/{mine['id']}/payments", headers=org.headers),
        client.patch(f"{BILLS}/{mine['id']}", headers=org.headers, json={"amount": 1}),
        pay_bill(client, org, mine["id"], 1),
        reverse_payment(client, org, mine["id"], paid["id"]),
        reverse_payment(client, world["owner"], overdue["id"], paid["id"]),  # another bill's
        client.post(f"{BILLS}/{mine['id']}/void", headers=org.headers),
    ):
        assert_problem(response, 404)
    assert everything(client, world["owner"]) == before


def test_idempotency_key_pays_once(world: dict[str, Any]) -> None:
    client, owner = world["client"], world["owner"]
    bill = _bill(world, 1000)
    headers = {**owner.headers, "Idempotency-Key": "pay-bill-once-1"}
    body = {"amount": 600}
    first = client.post(f"{BILLS}/{bill['id']}/payments", headers=headers, json=body)
    again = client.post(f"{BILLS}/{bill['id']}/payments", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len(listing(client, owner, f"{BILLS}/{bill['id']}/payments")) == 1
    reused = client.post(f"{BILLS}/{bill['id']}/payments", headers=headers, json={"amount": 1})
    assert_problem(reused, 422, "idempotency-key-reused")


def test_two_instances_paying_at_once_never_overpay(
    world: dict[str, Any], database: Any, valkey: Any, secret_key: str
) -> None:
    owner = world["owner"]
    bill = _bill(world, 1000)
    with app_client(database, valkey, secret_key, "bills-b") as other_instance:
        barrier = threading.Barrier(2)

        def pay(client: Any) -> Any:
            barrier.wait(timeout=10)
            return pay_bill(client, owner, bill["id"], 700)

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(pay, [world["client"], other_instance]))
    assert sorted(r.status_code for r in results) == [201, 409], [r.text for r in results]
    shown = world["client"].get(f"{BILLS}/{bill['id']}", headers=owner.headers).json()
    assert shown["amountPaid"] == 700


def test_a_property_with_bills_is_not_deleted(world: dict[str, Any]) -> None:
    client, owner = world["client"], world["owner"]
    prop = create_property(client, owner, name="Billed Court")
    create_bill(client, owner, world["vendor"]["id"], prop["id"], 100)
    before = everything(client, owner)
    response = client.delete(f"/api/v1/properties/{prop['id']}", headers=owner.headers)
    body = assert_problem(response, 409, "conflict")
    assert "bills" in body["detail"]
    assert everything(client, owner) == before
