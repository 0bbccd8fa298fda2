"""Work orders: spawned from a request, an insured vendor only, a state machine of their own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support import add_member, assert_problem, create_property, create_unit, register
from support_maintenance import create_request, transition
from support_portfolio import app_client
from support_vendors import (
    SCHEDULE,
    WORK_ORDERS,
    create_bill,
    create_vendor,
    create_work_order,
    days_from_today,
    everything,
    listing,
    today,
    wo_transition,
)


@pytest.fixture(scope="module")
def world(database: Any, valkey: Any, secret_key: str) -> Iterator[dict[str, Any]]:
    with app_client(database, valkey, secret_key, "work-orders") as client:
        owner = register(client, organization="Work Order Homes")
        prop = create_property(client, owner)
        yield {
            "client": client,
            "owner": owner,
            "staff": add_member(client, owner, "staff"),
            "viewer": add_member(client, owner, "viewer"),
            "other": register(client, organization="Elsewhere"),
            "property": prop,
            "unit": create_unit(client, owner, prop["id"]),
            "vendor": create_vendor(client, owner),
            "lapsed": create_vendor(
                client, owner, name="Lapsed Ltd", insuranceExpiresOn=days_from_today(-1)
            ),
            "uninsured": create_vendor(
                client, owner, name="Never Covered", insuranceExpiresOn=None
            ),
        }


def test_lifecycle_requested_scheduled_done_invoiced(world: dict[str, Any]) -> None:
    client, staff, owner = world["client"], world["staff"], world["owner"]
    request = create_request(client, owner, world["property"]["id"], unitId=world["unit"]["id"])
    created = client.post(
        f"/api/v1/maintenance-requests/{request['id']}/work-orders",
        headers=staff.headers,
        json={"title": "Fix tap", "description": "Kitchen", "estimate": 9000},
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "requested"
    assert order["requestId"] == request["id"]
    assert order["propertyId"] == world["property"]["id"]
    assert order["unitId"] == world["unit"]["id"]
    assert order["vendorId"] is None
    # Scheduling needs a vendor and a schedule.
    assert_problem(wo_transition(client, staff, order["id"], "scheduled", **SCHEDULE), 409)
    no_time = wo_transition(client, staff, order["id"], "scheduled", vendorId=world["vendor"]["id"])
    assert_problem(no_time, 409)
    scheduled = wo_transition(
        client, staff, order["id"], "scheduled", vendorId=world["vendor"]["id"], **SCHEDULE
    )
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["status"] == "scheduled"
    assert scheduled.json()["vendorId"] == world["vendor"]["id"]
    assert scheduled.json()["scheduledStart"] == SCHEDULE["scheduledStart"]
    # invoiced only through a bill
    assert_problem(wo_transition(client, staff, order["id"], "invoiced"), 409, "invalid-transition")
    done = wo_transition(client, staff, order["id"], "done")
    assert done.json()["status"] == "done"
    assert done.json()["completedAt"]
    assert_problem(wo_transition(client, staff, order["id"], "invoiced"), 409, "conflict")
    assert_problem(
        wo_transition(client, staff, order["id"], "cancelled"), 409, "invalid-transition"
    )
    bill = create_bill(
        client, staff, world["vendor"]["id"], world["property"]["id"], workOrderId=order["id"]
    )
    shown = client.get(f"{WORK_ORDERS}/{order['id']}", headers=world["viewer"].headers).json()
    assert shown["status"] == "invoiced"
    # Voiding its only bill moves it back to done; a new bill invoices it again.
    voided = client.post(f"/api/v1/bills/{bill['id']}/void", headers=owner.headers)
    assert voided.status_code == 200, voided.text
    assert (
        client.get(f"{WORK_ORDERS}/{order['id']}", headers=owner.headers).json()["status"] == "done"
    )
    create_bill(
        client, staff, world["vendor"]["id"], world["property"]["id"], workOrderId=order["id"]
    )
    final = client.get(f"{WORK_ORDERS}/{order['id']}", headers=owner.headers).json()
    assert final["status"] == "invoiced"
    events = listing(client, owner, "/api/v1/audit-events", entityId=order["id"])
    actions = [e["action"] for e in events]
    for action in (
        "work_order.created",
        "work_order.scheduled",
        "work_order.completed",
        "work_order.invoiced",
        "work_order.uninvoiced",
    ):
        assert action in actions, actions


def test_explicit_invoiced_transition_once_a_bill_exists(world: dict[str, Any]) -> None:
    client, owner = world["client"], world["owner"]
    vendor, prop = world["vendor"], world["property"]
    order = create_work_order(client, owner, prop["id"], vendorId=vendor["id"], **SCHEDULE)
    assert wo_transition(client, owner, order["id"], "scheduled").status_code == 200
    create_bill(client, owner, vendor["id"], prop["id"], workOrderId=order["id"])
    # A bill recorded before the work was done leaves the order scheduled ...
    shown = client.get(f"{WORK_ORDERS}/{order['id']}", headers=owner.headers).json()
    assert shown["status"] == "scheduled"
    assert wo_transition(client, owner, order["id"], "done").json()["status"] == "done"
    # ... and invoicing it is then an explicit step.
    assert wo_transition(client, owner, order["id"], "invoiced").json()["status"] == "invoiced"


def test_cancel_from_requested_and_scheduled_only(world: dict[str, Any]) -> None:
    client, owner = world["client"], world["owner"]
    first = create_work_order(client, owner, world["property"]["id"])
    assert wo_transition(client, owner, first["id"], "cancelled").json()["status"] == "cancelled"
    assert_problem(wo_transition(client, owner, first["id"], "requested"), 409)
    assert_problem(
        wo_transition(client, owner, first["id"], "scheduled", **SCHEDULE),
        409,
        "invalid-transition",
    )
    second = create_work_order(
        client, owner, world["property"]["id"], vendorId=world["vendor"]["id"], **SCHEDULE
    )
    wo_transition(client, owner, second["id"], "scheduled")
    assert wo_transition(client, owner, second["id"], "cancelled").json()["status"] == "cancelled"
    # A cancelled work order cannot be billed.
    response = client.post(
        "/api/v1/bills",
        headers=owner.headers,
        json={
            "vendorId": world["vendor"]["id"],
            "propertyId": world["property"]["id"],
            "workOrderId": second["id"],
            "amount": 100,
            "issuedOn": today(),
            "dueOn": today(),
        },
    )
    assert_problem(response, 409)


@pytest.mark.parametrize("which", ["lapsed", "uninsured"])
def test_a_vendor_without_insurance_is_never_assigned(world: dict[str, Any], which: str) -> None:
    client, owner = world["client"], world["owner"]
    bad = world[which]["id"]
    request = create_request(client, owner, world["property"]["id"])
    order = create_work_order(client, owner, world["property"]["id"])
    before = everything(client, owner)
    spawn = client.post(
        f"/api/v1/maintenance-requests/{request['id']}/work-orders",
        headers=owner.headers,
        json={"title": "Roof", "vendorId": bad},
    )
    body = assert_problem(spawn, 409, "vendor-uninsured")
    assert "insurance" in body["detail"]
    patched = client.patch(
        f"{WORK_ORDERS}/{order['id']}",
        headers=owner.headers,
        json={"vendorId": bad, "title": "Changed"},
    )
    assert_problem(patched, 409, "vendor-uninsured")
    scheduled = wo_transition(client, owner, order["id"], "scheduled", vendorId=bad, **SCHEDULE)
    assert_problem(scheduled, 409, "vendor-uninsured")
    assert everything(client, owner) == before


def test_insurance_that_lapses_after_assignment_blocks_scheduling(world: dict[str, Any]) -> None:
    client, owner = world["client"], world["owner"]
    vendor = create_vendor(client, owner, name="Soon Lapsed")
    order = create_work_order(client, owner, world["property"]["id"], vendorId=vendor["id"])
    client.patch(
        f"/api/v1/vendors/{vendor['id']}",
        headers=owner.headers,
        json={"insuranceExpiresOn": days_from_today(-3)},
    )
    before = everything(client, owner)
    response = wo_transition(client, owner, order["id"], "scheduled", **SCHEDULE)
    assert_problem(response, 409, "vendor-uninsured")
    assert everything(client, owner) == before


def test_patch_rules(world: dict[str, Any]) -> None:
    client, owner = world["client"], world["owner"]
    order = create_work_order(client, owner, world["property"]["id"])
    stale = client.patch(
        f"{WORK_ORDERS}/{order['id']}", headers={**owner.headers, "If-Match": '"9"'}, json={}
    )
    assert_problem(stale, 412)
    ok = client.patch(
        f"{WORK_ORDERS}/{order['id']}",
        headers={**owner.headers, "If-Match": '"1"'},
        json={"vendorId": world["vendor"]["id"], "estimate": 5, **SCHEDULE},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["estimate"] == 5
    assert_problem(
        client.patch(
            f"{WORK_ORDERS}/{order['id']}", headers=owner.headers, json={"status": "done"}
        ),
        422,
        "validation",
    )
    wo_transition(client, owner, order["id"], "scheduled")
    unassign = client.patch(
        f"{WORK_ORDERS}/{order['id']}", headers=owner.headers, json={"vendorId": None}
    )
    assert_problem(unassign, 409)
    wo_transition(client, owner, order["id"], "done")
    other = create_vendor(client, owner, name="Later Co")
    assert_problem(
        client.patch(
            f"{WORK_ORDERS}/{order['id']}", headers=owner.headers, json={"vendorId": other["id"]}
        ),
        409,
    )
    titled = client.patch(
        f"{WORK_ORDERS}/{order['id']}", headers=owner.headers, json={"title": "Done and dusted"}
    )
    assert titled.json()["title"] == "Done and dusted"


def test_filters_roles_and_isolation(world: dict[str, Any]) -> None:
    client, owner, other = world["client"], world["owner"], world["other"]
    org = register(client, organization="Filterers")
    prop = create_property(client, org)
    vendor = create_vendor(client, org)
    a = create_work_order(client, org, prop["id"], vendorId=vendor["id"])
    b = create_work_order(client, org, prop["id"])
    wo_transition(client, org, b["id"], "cancelled")
    assert {w["id"] for w in listing(client, org, WORK_ORDERS)} == {a["id"], b["id"]}
    assert [w["id"] for w in listing(client, org, WORK_ORDERS, status="cancelled")] == [b["id"]]
    assert [w["id"] for w in listing(client, org, WORK_ORDERS, vendorId=vendor["id"])] == [a["id"]]
    assert len(listing(client, org, WORK_ORDERS, propertyId=prop["id"])) == 2
    assert [w["id"] for w in listing(client, org, WORK_ORDERS, requestId=a["requestId"])] == [
        a["id"]
    ]
    # viewer reads, cannot write
    viewer = world["viewer"]
    mine = create_work_order(client, owner, world["property"]["id"])
    assert client.get(f"{WORK_ORDERS}/{mine['id']}", headers=viewer.headers).status_code == 200
    assert_problem(wo_transition(client, viewer, mine["id"], "cancelled"), 403)
    assert_problem(
        client.patch(f"{WORK_ORDERS}/{mine['id']}", headers=viewer.headers, json={}), 403
    )
    assert_problem(
        client.post(
            f"/api/v1/maintenance-requests/{mine['requestId']}/work-orders",
            headers=viewer.headers,
            json={"title": "x"},
        ),
        403,
    )
    # another organization: 404 on every path, and its vendor cannot be assigned (422)
    before = everything(client, owner)
    assert_problem(client.get(f"{WORK_ORDERS}/{mine['id']}", headers=other.headers), 404)
    assert_problem(wo_transition(client, other, mine["id"], "cancelled"), 404)
    assert_problem(client.patch(f"{WORK_ORDERS}/{mine['id']}", headers=other.headers, json={}), 404)
    assert_problem(
        client.post(
            f"/api/v1/maintenance-requests/{mine['requestId']}/work-orders",
            headers=other.headers,
            json={"title": "x"},
        ),
        404,
    )
    assert_problem(
        client.patch(
            f"{WORK_ORDERS}/{mine['id']}", headers=owner.headers, json={"vendorId": vendor["id"]}
        ),
        422,
    )
    assert everything(client, owner) == before
    assert all(w["id"] != mine["id"] for w in listing(client, other, WORK_ORDERS))


def test_closed_requests_spawn_nothing(world: dict[str, Any]) -> None:
    client, owner = world["client"], world["owner"]
    request = create_request(client, owner, world["property"]["id"])
    transition(client, owner, request["id"], "cancelled")
    before = everything(client, owner)
    response = client.post(
        f"/api/v1/maintenance-requests/{request['id']}/work-orders",
        headers=owner.headers,
        json={"title": "Too late"},
    )
    assert_problem(response, 409)
    assert everything(client, owner) == before
