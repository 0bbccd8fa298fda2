"""Bad input on every vendor, work-order, bill and P&L endpoint: a 4xx problem, nothing changed.

"Nothing changed" includes the audit trail: a refused write records no event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from support import assert_problem, create_property, register
from support_portfolio import app_client
from support_vendors import (
    BILLS,
    PL,
    SCHEDULE,
    VENDORS,
    WORK_ORDERS,
    create_bill,
    create_vendor,
    create_work_order,
    everything,
    pay_bill,
    today,
)

HUGE = "x" * 10_000
NUL = "bad\x00value"
MISSING = str(uuid.uuid4())


@pytest.fixture(scope="module")
def world(database: Any, valkey: Any, secret_key: str) -> Iterator[dict[str, Any]]:
    with app_client(database, valkey, secret_key, "vendors-bad-input") as client:
        owner = register(client, organization="Bad Vendor Input")
        prop = create_property(client, owner)
        vendor = create_vendor(client, owner)
        order = create_work_order(client, owner, prop["id"], vendorId=vendor["id"])
        bill = create_bill(client, owner, vendor["id"], prop["id"], 1000)
        paid = create_bill(client, owner, vendor["id"], prop["id"], 500)
        payment = pay_bill(client, owner, paid["id"], 200).json()["payment"]
        other = register(client, organization="Other Org")
        yield {
            "client": client,
            "owner": owner,
            "property": prop,
            "vendor": vendor,
            "order": order,
            "bill": bill,
            "paid": paid,
            "payment": payment,
            "other": other,
            "other_vendor": create_vendor(client, other),
            "other_property": create_property(client, other),
        }


@dataclass(frozen=True)
class Target:
    name: str
    method: str
    path: Callable[[dict[str, Any]], str]
    valid: Callable[[dict[str, Any]], dict[str, Any]]
    bad: list[tuple[str, dict[str, Any], int]]


def _bill_body(w: dict[str, Any]) -> dict[str, Any]:
    return {
        "vendorId": w["vendor"]["id"],
        "propertyId": w["property"]["id"],
        "amount": 100,
        "issuedOn": today(),
        "dueOn": today(),
    }


MONEY_BAD = [
    ("negative", -1, 422),
    ("float", 10.5, 422),
    ("whole float", 10.0, 422),
    ("string", "100", 422),
    ("too big", 10**15, 422),
    ("bool", True, 422),
]

TARGETS = [
    Target(
        "create-vendor",
        "POST",
        lambda w: VENDORS,
        lambda w: {"name": "New Co", "trade": "general"},
        [
            ("trade", {"trade": "wizardry"}, 422),
            ("name", {"name": ""}, 422),
            ("name", {"name": HUGE}, 422),
            ("name", {"name": NUL}, 422),
            ("email", {"email": "not-an-email"}, 422),
            ("phone", {"phone": "call me"}, 422),
            ("insuranceExpiresOn", {"insuranceExpiresOn": "2026-02-30"}, 422),
            ("insuranceExpiresOn", {"insuranceExpiresOn": 20270101}, 422),
            ("unknown", {"rating": 5}, 422),
        ],
    ),
    Target(
        "patch-vendor",
        "PATCH",
        lambda w: f"{VENDORS}/{w['vendor']['id']}",
        lambda w: {"notes": "ok"},
        [
            ("trade", {"trade": 3}, 422),
            ("name", {"name": None}, 422),
            ("notes", {"notes": HUGE * 2}, 422),
            ("unknown", {"id": MISSING}, 422),
        ],
    ),
    Target(
        "spawn-work-order",
        "POST",
        lambda w: f"/api/v1/maintenance-requests/{w['order']['requestId']}/work-orders",
        lambda w: {"title": "Fix"},
        [
            *(("estimate", {"estimate": v}, s) for _, v, s in MONEY_BAD),
            ("title", {"title": ""}, 422),
            ("title", {"title": NUL}, 422),
            ("vendorId", {"vendorId": "nope"}, 422),
            ("vendorId", {"vendorId": MISSING}, 422),
            ("vendorId", {"vendorId": "<other_vendor>"}, 422),
            ("scheduledStart", {"scheduledStart": "2026-12-01T09:00:00"}, 422),  # no offset
            ("scheduledEnd", {"scheduledEnd": "2026-12-01T09:00:00Z"}, 422),  # end without start
            (
                "scheduledEnd",
                {"scheduledStart": "2026-12-01T09:00:00Z", "scheduledEnd": "2026-12-01T08:00:00Z"},
                422,
            ),
            ("status", {"status": "done"}, 422),
        ],
    ),
    Target(
        "patch-work-order",
        "PATCH",
        lambda w: f"{WORK_ORDERS}/{w['order']['id']}",
        lambda w: {"estimate": 1},
        [
            *(("estimate", {"estimate": v}, s) for _, v, s in MONEY_BAD),
            ("status", {"status": "done"}, 422),
            ("vendorId", {"vendorId": 7}, 422),
            ("vendorId", {"vendorId": "<other_vendor>"}, 422),
            ("requestId", {"requestId": MISSING}, 422),
        ],
    ),
    Target(
        "transition-work-order",
        "POST",
        lambda w: f"{WORK_ORDERS}/{w['order']['id']}/transition",
        lambda w: {"to": "scheduled", **SCHEDULE},
        [
            ("to", {"to": "finished"}, 422),
            ("to", {"to": None}, 422),
            ("to", {"to": "done"}, 409),  # requested -> done skips scheduling
            ("to", {"to": "invoiced"}, 409),
            ("vendorId", {"to": "cancelled", "vendorId": "<vendor>"}, 422),
            ("vendorId", {"vendorId": "<other_vendor>"}, 422),
        ],
    ),
    Target(
        "create-bill",
        "POST",
        lambda w: BILLS,
        _bill_body,
        [
            *(("amount", {"amount": v}, s) for _, v, s in MONEY_BAD),
            ("amount", {"amount": 0}, 422),
            ("dueOn", {"issuedOn": today(), "dueOn": "2000-01-01"}, 422),
            ("issuedOn", {"issuedOn": "yesterday"}, 422),
            ("vendorId", {"vendorId": "<other_vendor>"}, 422),
            ("propertyId", {"propertyId": "<other_property>"}, 422),
            ("workOrderId", {"workOrderId": MISSING}, 422),
            ("status", {"status": "paid"}, 422),
            ("amountPaid", {"amountPaid": 5}, 422),
            ("description", {"description": HUGE}, 422),
            ("reference", {"reference": NUL}, 422),
        ],
    ),
    Target(
        "patch-bill",
        "PATCH",
        lambda w: f"{BILLS}/{w['bill']['id']}",
        lambda w: {"reference": "R-1"},
        [
            *(("amount", {"amount": v}, s) for _, v, s in MONEY_BAD),
            ("amount", {"amount": 0}, 422),
            ("dueOn", {"dueOn": "2000-01-01"}, 422),
            ("vendorId", {"vendorId": "<vendor>"}, 422),
            ("status", {"status": "void"}, 422),
        ],
    ),
    Target(
        "pay-bill",
        "POST",
        lambda w: f"{BILLS}/{w['bill']['id']}/payments",
        lambda w: {"amount": 10},
        [
            *(("amount", {"amount": v}, s) for _, v, s in MONEY_BAD),
            ("amount", {"amount": 0}, 422),
            ("amount", {"amount": 1001}, 409),  # overpaying
            ("paidOn", {"paidOn": "2999-01-01"}, 422),
            ("method", {"method": "barter"}, 422),
            ("reference", {"reference": HUGE}, 422),
        ],
    ),
]


def _fill(value: Any, w: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
        return w[value[1:-1]]["id"]
    return value


CASES = [
    pytest.param(t, field, body, status, id=f"{t.name}-{field}-{i}")
    for t in TARGETS
    for i, (field, body, status) in enumerate(t.bad)
]


@pytest.mark.parametrize(("target", "field", "changes", "status"), CASES)
def test_bad_body_is_refused_and_changes_nothing(
    world: dict[str, Any], target: Target, field: str, changes: dict[str, Any], status: int
) -> None:
    client, owner = world["client"], world["owner"]
    body = {**target.valid(world), **{k: _fill(v, world) for k, v in changes.items()}}
    before = everything(client, owner)
    response = client.request(target.method, target.path(world), headers=owner.headers, json=body)
    problem = assert_problem(response, status)
    if status == 422 and problem.get("errors"):
        named = [e["field"] for e in problem["errors"]]
        assert any(field in f or f == "body" for f in named), problem
    assert everything(client, owner) == before


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_malformed_json_and_wrong_media_type(world: dict[str, Any], target: Target) -> None:
    client, owner = world["client"], world["owner"]
    before = everything(client, owner)
    path = target.path(world)
    broken = client.request(
        target.method,
        path,
        content=b"{not json",
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert_problem(broken, 400)
    as_text = client.request(
        target.method,
        path,
        content=json.dumps(target.valid(world)),
        headers={**owner.headers, "Content-Type": "text/plain"},
    )
    assert response_is_4xx(as_text)
    not_object = client.request(target.method, path, headers=owner.headers, json=[1, 2])
    assert_problem(not_object, 422)
    assert everything(client, owner) == before


def response_is_4xx(response: Any) -> bool:
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return True


def test_foreign_and_missing_ids_are_404_and_change_nothing(world: dict[str, Any]) -> None:
    client, owner, other = world["client"], world["owner"], world["other"]
    before = everything(client, owner)
    bill, paid, payment = world["bill"], world["paid"], world["payment"]
    for method, path, body in (
        ("GET", f"{VENDORS}/{MISSING}", None),
        ("PATCH", f"{VENDORS}/{world['vendor']['id']}", {"name": "Mine now"}),
        ("DELETE", f"{VENDORS}/{world['vendor']['id']}", None),
        ("POST", f"/api/v1/maintenance-requests/{MISSING}/work-orders", {"title": "x"}),
        ("PATCH", f"{WORK_ORDERS}/{world['order']['id']}", {"title": "x"}),
        ("POST", f"{WORK_ORDERS}/{world['order']['id']}/transition", {"to": "cancelled"}),
        ("PATCH", f"{BILLS}/{bill['id']}", {"amount": 5}),
        ("POST", f"{BILLS}/{bill['id']}/payments", {"amount": 5}),
        ("POST", f"{BILLS}/{paid['id']}/payments/{payment['id']}/reverse", None),
        ("POST", f"{BILLS}/{bill['id']}/void", None),
        ("GET", f"{BILLS}/{paid['id']}/payments", None),
    ):
        response = client.request(method, path, headers=other.headers, json=body)
        assert_problem(response, 404)
    # the owner's own ids, but a payment of another bill or no payment at all
    assert_problem(
        client.post(
            f"{BILLS}/{bill['id']}/payments/{payment['id']}/reverse", headers=owner.headers
        ),
        404,
    )
    assert_problem(
        client.post(f"{BILLS}/{paid['id']}/payments/{MISSING}/reverse", headers=owner.headers),
        404,
    )
    assert_problem(client.get(f"{BILLS}/not-a-uuid", headers=owner.headers), 404)
    assert everything(client, owner) == before


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (VENDORS, {"trade": "wizardry"}),
        (VENDORS, {"insured": "maybe"}),
        (VENDORS, {"limit": 0}),
        (VENDORS, {"sort": "rating"}),
        (WORK_ORDERS, {"status": "finished"}),
        (WORK_ORDERS, {"vendorId": "nope"}),
        (WORK_ORDERS, {"requestId": "1"}),
        (BILLS, {"status": "settled"}),
        (BILLS, {"dueBefore": "soon"}),
        (BILLS, {"overdue": "sometimes"}),
        (BILLS, {"propertyId": "x"}),
        (BILLS, {"cursor": "!!"}),
        (PL, {"from": "2026-01-01", "to": "nope"}),
    ],
)
def test_bad_query_is_422(world: dict[str, Any], path: str, params: dict[str, Any]) -> None:
    response = world["client"].get(path, headers=world["owner"].headers, params=params)
    assert_problem(response, 422 if "sort" not in params else response.status_code)
    assert 400 <= response.status_code < 500
