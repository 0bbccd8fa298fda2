"""Bad input on every lease, ledger, billing and insight endpoint: its 4xx problem, no change."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import TestClient

from support import Account, assert_problem, create_tenant, register
from support_leases import active_lease, charge, draft_lease, new_unit, pay
from support_portfolio import app_client

HUGE = "x" * 10_000
NUL = "bad\x00value"


@dataclass
class LeaseWorld:
    client: TestClient[Any]
    owner: Account
    unit: dict[str, Any]
    tenant: dict[str, Any]
    draft: dict[str, Any]
    active: dict[str, Any]
    entry: dict[str, Any]
    renewable: dict[str, Any]
    moved_out: dict[str, Any]

    def get(self, path: str) -> Any:
        response = self.client.get(path, headers=self.owner.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def ledger(self) -> Any:
        return self.get(f"/api/v1/leases/{self.active['id']}/ledger")["entries"]

    def moved_out_ledger(self) -> Any:
        return self.get(f"/api/v1/leases/{self.moved_out['id']}/ledger")


def _moved_out(client: TestClient[Any], owner: Account) -> dict[str, Any]:
    """A terminated lease whose 240000 deposit was charged and paid."""
    lease = active_lease(client, owner, chargeDeposit=True, deposit=240000)
    assert pay(client, owner, lease["id"], 240000, on="2026-01-01").status_code == 201
    done = client.post(
        f"/api/v1/leases/{lease['id']}/terminate",
        headers=owner.headers,
        json={"date": "2026-06-30"},
    )
    assert done.status_code == 200, done.text
    return dict(done.json())


@pytest.fixture(scope="module")
def world(database: Any, valkey: Any, secret_key: str) -> Iterator[LeaseWorld]:
    with app_client(database, valkey, secret_key, "lease-bad-input") as client:
        owner = register(client)
        active = active_lease(client, owner, startDate="2026-01-01", endDate=None)
        yield LeaseWorld(
            client=client,
            owner=owner,
            unit=new_unit(client, owner),
            tenant=create_tenant(client, owner),
            draft=draft_lease(client, owner),
            active=active,
            entry=charge(client, owner, active["id"], 1000, "2026-01-01"),
            renewable=active_lease(client, owner, endDate="2026-12-31"),
            moved_out=_moved_out(client, owner),
        )


@dataclass(frozen=True)
class Target:
    name: str
    path: Callable[[LeaseWorld], str]
    state: Callable[[LeaseWorld], Any]
    valid: Callable[[LeaseWorld], dict[str, Any]]
    wrong_type: dict[str, Any]
    out_of_range: dict[str, Any]
    text_field: str
    method: str = "POST"


def _leases(w: LeaseWorld) -> Any:
    return w.get("/api/v1/leases?limit=100")


TARGETS = [
    Target(
        "create-lease",
        lambda w: "/api/v1/leases",
        _leases,
        lambda w: {
            "unitId": w.unit["id"],
            "tenantIds": [w.tenant["id"]],
            "startDate": "2027-01-01",
            "rent": 1000,
        },
        {"unitId": "u", "tenantIds": [], "startDate": "2027-01-01", "rent": "1000"},
        {"unitId": "u", "tenantIds": ["t"], "startDate": "2027-01-01", "rent": 1, "dueDay": 29},
        "startDate",
    ),
    Target(
        "patch-lease",
        lambda w: f"/api/v1/leases/{w.draft['id']}",
        lambda w: w.get(f"/api/v1/leases/{w.draft['id']}"),
        lambda w: {"rent": 4321},
        {"rent": "4321"},
        {"graceDays": 61},
        "startDate",
        method="PATCH",
    ),
    Target(
        "billing-run",
        lambda w: "/api/v1/billing/run",
        lambda w: w.ledger(),
        lambda w: {"date": "2026-02-01"},
        {"date": "2026-02-01", "dryRun": "yes"},
        {"date": "2026-13-01"},
        "date",
    ),
    Target(
        "charge",
        lambda w: f"/api/v1/leases/{w.active['id']}/charges",
        lambda w: w.ledger(),
        lambda w: {"kind": "utility", "amount": 100, "dueDate": "2026-01-05"},
        {"kind": "utility", "amount": "100", "dueDate": "2026-01-05"},
        {"kind": "utility", "amount": 0, "dueDate": "2026-01-05"},
        "description",
    ),
    Target(
        "credit",
        lambda w: f"/api/v1/leases/{w.active['id']}/credits",
        lambda w: w.ledger(),
        lambda w: {"amount": 100, "description": "Goodwill"},
        {"amount": 1.5},
        {"amount": -1},
        "description",
    ),
    Target(
        "payment",
        lambda w: f"/api/v1/leases/{w.active['id']}/payments",
        lambda w: w.ledger(),
        lambda w: {"amount": 100, "receivedOn": "2026-01-03", "method": "cash"},
        {"amount": 100, "receivedOn": "2026-01-03", "method": 5},
        {"amount": 10**12, "receivedOn": "2026-01-03", "method": "cash"},
        "reference",
    ),
    Target(
        "reverse",
        lambda w: f"/api/v1/ledger-entries/{w.entry['id']}/reverse",
        lambda w: w.ledger(),
        lambda w: {"description": "Posted by mistake"},
        {"description": 5},
        {"description": "d" * 501},
        "description",
    ),
    Target(
        "rent-change",
        lambda w: f"/api/v1/leases/{w.active['id']}/rent-changes",
        lambda w: w.get(f"/api/v1/leases/{w.active['id']}/rent-changes"),
        lambda w: {"effectiveDate": "2026-07-01", "rent": 130000},
        {"effectiveDate": "2026-07-01", "rent": 1300.5},
        {"effectiveDate": "2026-07-01", "rent": -1},
        "effectiveDate",
    ),
    Target(
        "recurring-charge",
        lambda w: f"/api/v1/leases/{w.active['id']}/recurring-charges",
        lambda w: w.get(f"/api/v1/leases/{w.active['id']}/recurring-charges"),
        lambda w: {"kind": "parking", "amount": 5000, "startDate": "2026-02-01"},
        {"kind": "parking", "amount": "5000", "startDate": "2026-02-01"},
        {"kind": "parking", "amount": 0, "startDate": "2026-02-01"},
        "description",
    ),
    Target(
        "renew",
        lambda w: f"/api/v1/leases/{w.renewable['id']}/renew",
        _leases,
        lambda w: {"rent": 125000, "endDate": "2027-12-31"},
        {"rent": 125000.5},
        {"rent": -5},
        "startDate",
    ),
    Target(
        "deposit-disposition",
        lambda w: f"/api/v1/leases/{w.moved_out['id']}/deposit-disposition",
        lambda w: w.moved_out_ledger(),
        lambda w: {"refundMethod": "check", "deductions": [{"reason": "Cleaning", "amount": 1000}]},
        {"refundMethod": "check", "deductions": [{"reason": "Cleaning", "amount": 10.5}]},
        {"refundMethod": "check", "deductions": [{"reason": "Cleaning", "amount": -1}]},
        "refundMethod",
    ),
    Target(
        "terminate",
        lambda w: f"/api/v1/leases/{w.active['id']}/terminate",
        lambda w: w.get(f"/api/v1/leases/{w.active['id']}"),
        lambda w: {"date": "2026-12-31"},
        {"date": 20261231},
        {"date": "2026-02-30"},
        "date",
    ),
]

CASES = [
    "malformed-json",
    "wrong-content-type",
    "unknown-field",
    "wrong-type",
    "out-of-range",
    "10k-string",
    "nul-byte",
    "not-an-object",
]


def _case(target: Target, w: LeaseWorld, case: str) -> tuple[bytes, str, int, str]:
    valid = target.valid(w)
    as_json = "application/json"
    if case == "malformed-json":
        return json.dumps(valid).encode()[:-1] + b",}", as_json, 400, "malformed-request"
    if case == "wrong-content-type":
        return json.dumps(valid).encode(), "text/plain", 415, "unsupported-media-type"
    if case == "unknown-field":
        return json.dumps({**valid, "isAdmin": True}).encode(), as_json, 422, "validation"
    if case == "wrong-type":
        return json.dumps(target.wrong_type).encode(), as_json, 422, "validation"
    if case == "out-of-range":
        return json.dumps(target.out_of_range).encode(), as_json, 422, "validation"
    if case == "10k-string":
        return json.dumps({**valid, target.text_field: HUGE}).encode(), as_json, 422, "validation"
    if case == "nul-byte":
        return json.dumps({**valid, target.text_field: NUL}).encode(), as_json, 422, "validation"
    if case == "not-an-object":
        return json.dumps([valid]).encode(), as_json, 422, "validation"
    raise AssertionError(case)


def _send(w: LeaseWorld, target: Target, content: bytes, content_type: str) -> Any:
    headers = {**w.owner.headers, "Content-Type": content_type}
    return w.client.request(target.method, target.path(w), content=content, headers=headers)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_bad_body_gets_its_problem_and_changes_nothing(
    world: LeaseWorld, target: Target, case: str
) -> None:
    before = target.state(world)
    content, content_type, status, slug = _case(target, world, case)
    assert_problem(_send(world, target, content, content_type), status, slug)
    assert target.state(world) == before


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_each_rows_valid_body_is_accepted_and_its_change_is_seen(
    world: LeaseWorld, target: Target
) -> None:
    before = target.state(world)
    response = _send(world, target, json.dumps(target.valid(world)).encode(), "application/json")
    assert response.status_code < 300, response.text
    assert target.state(world) != before


BAD_IDS = ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", "%00"]
ID_PATHS = [
    ("GET", "/api/v1/leases/{}"),
    ("PATCH", "/api/v1/leases/{}"),
    ("POST", "/api/v1/leases/{}/activate"),
    ("POST", "/api/v1/leases/{}/terminate"),
    ("GET", "/api/v1/leases/{}/ledger"),
    ("POST", "/api/v1/leases/{}/charges"),
    ("POST", "/api/v1/leases/{}/credits"),
    ("POST", "/api/v1/leases/{}/payments"),
    ("POST", "/api/v1/ledger-entries/{}/reverse"),
    ("GET", "/api/v1/leases/{}/rent-changes"),
    ("POST", "/api/v1/leases/{}/rent-changes"),
    ("GET", "/api/v1/leases/{}/recurring-charges"),
    ("POST", "/api/v1/leases/{}/recurring-charges"),
    ("POST", "/api/v1/leases/{}/renew"),
    ("POST", "/api/v1/leases/{}/deposit-disposition"),
    ("GET", "/api/v1/leases/{}/deposit-statement"),
]


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize(("method", "template"), ID_PATHS)
def test_invalid_uuid_in_path_is_404_and_changes_nothing(
    world: LeaseWorld, method: str, template: str, bad_id: str
) -> None:
    before = (_leases(world), world.ledger())
    kwargs: dict[str, Any] = {"headers": world.owner.headers}
    if method in ("POST", "PATCH"):
        kwargs["json"] = {"amount": 1}
    assert_problem(world.client.request(method, template.format(bad_id), **kwargs), 404)
    assert (_leases(world), world.ledger()) == before


def test_unknown_uuid_and_other_organizations_lease_are_404(world: LeaseWorld) -> None:
    other = register(world.client)
    before = world.ledger()
    for account in (other,):
        for method, template in ID_PATHS:
            kwargs: dict[str, Any] = {"headers": account.headers}
            if method in ("POST", "PATCH"):
                kwargs["json"] = {}
            target = world.entry["id"] if "ledger-entries" in template else world.active["id"]
            response = world.client.request(method, template.format(target), **kwargs)
            assert response.status_code in (404, 422), (template, response.text)
            if response.status_code == 404:
                assert_problem(response, 404, "not-found")
    assert world.ledger() == before


BAD_QUERIES = [
    ({"limit": "0"}, "limit"),
    ({"limit": "10000"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"cursor": "garbage"}, "cursor"),
    ({"cursor": "x" * 2000}, "cursor"),
    ({"sort": "rent"}, "sort"),
    ({"status": "paused"}, "status"),
    ({"unitId": "not-a-uuid"}, "unitId"),
    ({"tenantId": "1"}, "tenantId"),
    ({"propertyId": "%00"}, "propertyId"),
]


@pytest.mark.parametrize(("query", "field"), BAD_QUERIES, ids=lambda v: str(v)[:30])
def test_bad_lease_list_query_is_422(world: LeaseWorld, query: dict[str, str], field: str) -> None:
    response = world.client.get("/api/v1/leases", headers=world.owner.headers, params=query)
    body = assert_problem(response, 422, "validation")
    assert field in {e["field"] for e in body["errors"]}, body


@pytest.mark.parametrize(
    "path", ["/api/v1/dashboard", "/api/v1/reports/rent-roll", "/api/v1/reports/aging"]
)
def test_insight_endpoints_refuse_writes_and_anonymous_reads(world: LeaseWorld, path: str) -> None:
    assert_problem(world.client.get(path), 401)
    assert_problem(world.client.post(path, headers=world.owner.headers, json={}), 405)
