"""Every operation of /openapi.json x every kind of caller: the status written down in
matrix_table.py, asserted against a real request (valid body, real ids, Idempotency-Key).

The table must name exactly the operations of the live document: a new endpoint cannot ship
without its row, a removed one cannot leave a stale row. One app and one session per column
for the whole module; a cell that uses up what it touches (a delete, a transition, a logout,
a password change) gets throwaway records or a throwaway session of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from haven.app import create_app
from haven.config import load_settings
from integration.authz.matrix_table import COLUMNS, EXPECTED, RESIDENT_COLUMNS
from support import Account
from support_matrix import (
    PUBLIC_WEBHOOK,
    RESIDENTS,
    MatrixWorld,
    build_matrix_world,
    fresh_actor,
    fresh_session,
    unique,
)
from support_scoping import Private, unseen_failures

OPERATOR_TOKEN = "matrix-operator-token-0123456789abcdef"
EXAMPLES = json.loads(
    (Path(__file__).parents[3] / "src" / "haven" / "openapi_examples.json").read_text()
)
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Call:
    """How to call an operation, where the defaults do not do: `fresh` names throwaway
    records (support_matrix.FRESH) for the path; `body` (placeholders `{name}` filled with
    the cell's ids and `{uniq}` with a unique word) replaces the recorded example's body;
    `actor` is "fresh" (a new person of the caller's role) or "session" (a new session of
    the caller)."""

    fresh: str | None = None
    body: Any = "example"
    params: dict[str, str] = field(default_factory=dict)
    actor: str | None = None


CALLS: dict[str, Call] = {
    "POST /api/v1/auth/register": Call(
        body={
            "organizationName": "Matrix {uniq}",
            "name": "New Owner",
            "email": "matrix-{uniq}@example.com",
            "password": "correct horse battery",
        }
    ),
    "POST /api/v1/auth/login": Call(
        body={"email": "{caller_email}", "password": "{caller_password}"}
    ),
    "POST /api/v1/auth/logout": Call(actor="session"),
    "POST /api/v1/auth/token": Call(actor="session"),
    "POST /api/v1/auth/password": Call(
        actor="fresh",
        body={"currentPassword": "{caller_password}", "newPassword": "a brand new passphrase"},
    ),
    "DELETE /api/v1/auth/sessions/{session_id}": Call(fresh="session"),
    "DELETE /api/v1/api-keys/{key_id}": Call(fresh="key"),
    "POST /api/v1/members": Call(
        body={
            "email": "member-{uniq}@example.com",
            "name": "New Member",
            "role": "viewer",
            "password": "member password 1",
        }
    ),
    "PATCH /api/v1/members/{member_id}": Call(fresh="member", body={"name": "Renamed"}),
    "DELETE /api/v1/members/{member_id}": Call(fresh="member"),
    "POST /api/v1/members/{member_id}/password": Call(fresh="member"),
    "PATCH /api/v1/organization": Call(body={"name": "Matrix Homes"}),
    "DELETE /api/v1/properties/{property_id}": Call(fresh="property"),
    "POST /api/v1/properties/{property_id}/units": Call(body={"label": "M-{uniq}"}),
    "DELETE /api/v1/units/{unit_id}": Call(fresh="unit"),
    "DELETE /api/v1/tenants/{tenant_id}": Call(fresh="tenant"),
    "POST /api/v1/tenants": Call(
        body={"firstName": "Tom", "lastName": "Tenant", "email": "tenant-{uniq}@example.com"}
    ),
    "POST /api/v1/leases": Call(
        body={
            "unitId": "{unit_id}",
            "tenantIds": ["{tenant_id}"],
            "startDate": "2027-08-01",
            "rent": 125000,
            "dueDay": 1,
        }
    ),
    "POST /api/v1/leases/{lease_id}/activate": Call(fresh="draft_lease"),
    "POST /api/v1/leases/{lease_id}/terminate": Call(fresh="active_lease"),
    "POST /api/v1/leases/{lease_id}/renew": Call(
        fresh="active_lease",
        body={"startDate": "2027-01-01", "endDate": "2027-12-31", "rent": 130000},
    ),
    "POST /api/v1/leases/{lease_id}/deposit-disposition": Call(fresh="ended_lease"),
    "POST /api/v1/leases/{lease_id}/recurring-charges": Call(fresh="active_lease"),
    "PATCH /api/v1/leases/{lease_id}/recurring-charges/{charge_id}": Call(
        fresh="recurring_charge", body={"endDate": "2026-11-30"}
    ),
    "DELETE /api/v1/leases/{lease_id}/recurring-charges/{charge_id}": Call(
        fresh="recurring_charge"
    ),
    "POST /api/v1/leases/{lease_id}/rent-changes": Call(
        fresh="active_lease", body={"effectiveDate": "2026-12-01", "rent": 130000}
    ),
    "DELETE /api/v1/leases/{lease_id}/rent-changes/{change_id}": Call(fresh="rent_change"),
    "POST /api/v1/ledger-entries/{entry_id}/reverse": Call(fresh="entry"),
    "POST /api/v1/maintenance-requests": Call(
        body={"propertyId": "{property_id}", "unitId": "{unit_id}", "title": "Leaking tap"}
    ),
    "DELETE /api/v1/maintenance-requests/{request_id}": Call(fresh="request"),
    "POST /api/v1/maintenance-requests/{request_id}/transition": Call(fresh="request"),
    "POST /api/v1/webhooks": Call(body={"url": PUBLIC_WEBHOOK}),
    "DELETE /api/v1/webhooks/{webhook_id}": Call(fresh="webhook"),
    "POST /api/v1/webhooks/{webhook_id}/redeliver": Call(body={"eventId": "{event_id}"}),
    "POST /api/v1/tenants/{tenant_id}/invitations": Call(fresh="leased_tenant", body={}),
    "DELETE /api/v1/tenants/{tenant_id}/access": Call(fresh="resident_tenant"),
    "POST /api/v1/invitations/accept": Call(
        fresh="invitation", body={"token": "{token}", "password": "matrix password {uniq}"}
    ),
    "DELETE /api/v1/owners/{owner_id}": Call(fresh="owner"),
    "POST /api/v1/vendors": Call(
        body={"name": "Matrix {uniq}", "trade": "hvac", "insuranceExpiresOn": "2099-12-31"}
    ),
    "DELETE /api/v1/vendors/{vendor_id}": Call(fresh="vendor"),
    "POST /api/v1/maintenance-requests/{request_id}/work-orders": Call(
        body={"title": "Matrix job", "estimate": 5000, "vendorId": "{vendor_id}"}
    ),
    "PATCH /api/v1/work-orders/{work_order_id}": Call(body={"description": "Under the sink"}),
    "POST /api/v1/work-orders/{work_order_id}/transition": Call(
        fresh="work_order", body={"to": "cancelled"}
    ),
    "POST /api/v1/bills": Call(
        body={
            "vendorId": "{vendor_id}",
            "propertyId": "{property_id}",
            "amount": 12500,
            "issuedOn": "2026-10-01",
            "dueOn": "2026-10-31",
        }
    ),
    "PATCH /api/v1/bills/{bill_id}": Call(fresh="bill", body={"description": "Matrix"}),
    "POST /api/v1/bills/{bill_id}/void": Call(fresh="bill"),
    "POST /api/v1/bills/{bill_id}/payments": Call(
        fresh="bill", body={"amount": 700, "method": "check"}
    ),
    "POST /api/v1/bills/{bill_id}/payments/{payment_id}/reverse": Call(fresh="bill_payment"),
    "GET /api/v1/reports/property-pl": Call(params={"from": "2026-01-01", "to": "2026-10-31"}),
    "POST /api/v1/owners/{owner_id}/payouts/{payout_id}/reverse": Call(fresh="payout"),
    "PUT /api/v1/properties/{property_id}/ownership": Call(
        body={
            "effectiveFrom": "2026-03-01",
            "shares": [{"ownerId": "{owner_id}", "basisPoints": 10000}],
        }
    ),
    "GET /api/v1/units": Call(params={"propertyId": "{property_id}"}),
    "GET /api/v1/leases": Call(params={"unitId": "{unit_id}"}),
    "GET /api/v1/maintenance-requests": Call(params={"propertyId": "{property_id}"}),
}


def operations(doc: dict[str, Any]) -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }


@pytest.fixture(scope="module")
def world(database: Any, valkey: Any, secret_key: str) -> Iterator[MatrixWorld]:
    env = {
        "HAVEN_ENV": "test",
        "DATABASE_URL": database.url,
        "REDIS_URL": valkey.url,
        "SECRET_KEY": secret_key,
        "OPERATOR_TOKEN": OPERATOR_TOKEN,  # the operator endpoints exist, and refuse members
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "warning",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "5",
    }
    settings = load_settings(env, instance_id=f"matrix-{database.backend}", webhook_worker=False)
    with TestClient(create_app(settings)) as client:
        yield build_matrix_world(client)


def test_the_table_names_exactly_the_documents_operations(world: MatrixWorld) -> None:
    response = world.client.get("/openapi.json")
    assert response.status_code == 200
    documented = operations(response.json())
    missing = sorted(documented - set(EXPECTED))
    stale = sorted(set(EXPECTED) - documented)
    assert not missing, f"operations without a row in matrix_table.TABLE: {missing}"
    assert not stale, f"rows for operations /openapi.json no longer has: {stale}"
    assert not set(CALLS) - documented, f"CALLS for unknown operations: {set(CALLS) - documented}"


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _caller(w: MatrixWorld, column: str, call: Call) -> Account:
    if call.actor == "fresh":
        return fresh_actor(w, column)
    if call.actor == "session":
        return fresh_session(w, column)
    return w.accounts[column]


def request_cell(
    w: MatrixWorld,
    operation: str,
    column: str,
    override: dict[str, str] | None = None,
    *,
    refused: bool = False,
    extra_headers: dict[str, str] | None = None,
) -> Any:
    """Make the cell's request: the caller, the path with its ids, a valid body."""
    method, template = operation.split(" ", 1)
    call = CALLS.get(operation, Call())
    caller = _caller(w, column, call)
    ids = {**w.ids, **(w.fresh(call.fresh, column, refused=refused) if call.fresh else {})}
    ids.update(uniq=unique(), caller_email=caller.email, caller_password=caller.password)
    ids.update(override or {})
    example = EXAMPLES.get(operation, {})
    body = example.get("requestBody") if call.body == "example" else _fill(call.body, ids)
    headers = {**caller.headers, **(extra_headers or {})}
    if method == "POST":
        headers["Idempotency-Key"] = f"matrix-{unique()}"
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    try:
        return w.client.request(
            method,
            _fill(template, ids),
            headers=headers,
            params=_fill(call.params, ids),
            **kwargs,
        )
    finally:
        w.client.cookies.clear()  # sign-in and sign-up set cookies; every cell says its own


CELLS = [(op, column) for op in sorted(EXPECTED) for column in (*COLUMNS, *RESIDENT_COLUMNS)]


@pytest.mark.parametrize(("operation", "column"), CELLS, ids=[f"{o} | {c}" for o, c in CELLS])
def test_cell(world: MatrixWorld, operation: str, column: str) -> None:
    if column in RESIDENT_COLUMNS and not RESIDENTS:
        pytest.skip(
            "resident columns wait for the resident role (haven.models.organization ROLES or "
            "MEMBER_ROLES); "
            "they are asserted as soon as it exists"
        )
    expected = EXPECTED[operation][column]
    response = request_cell(world, operation, column, refused=expected >= 400)
    assert response.status_code == expected, (
        f"{operation} as {column}: expected {expected}, got {response.status_code}: "
        f"{response.text[:500]}"
    )
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
    if column.startswith("other_org") and response.status_code < 300:
        leaked = sorted(i for i in world.secrets if i in response.text)
        assert not leaked, f"{operation} as {column} shows organization A's {leaked}"


@pytest.mark.parametrize("operation", ["POST /api/v1/leases", "POST /api/v1/maintenance-requests"])
def test_another_organizations_id_in_a_body_is_answered_as_one_that_never_existed(
    world: MatrixWorld, operation: str
) -> None:
    """The 422 other_org gets for A's ids in a body tells nothing: a made-up id gets the same."""
    foreign = request_cell(world, operation, "other_org")
    missing = "00000000-0000-4000-8000-000000000000"
    ids = dict.fromkeys(("unit_id", "tenant_id", "property_id"), missing)
    made_up = request_cell(world, operation, "other_org", ids)
    assert foreign.status_code == made_up.status_code == 422, (foreign.text, made_up.text)
    assert foreign.json()["errors"] == made_up.json()["errors"]


def test_another_organization_never_sees_the_lease_ledger_request_or_comment(
    world: MatrixWorld,
) -> None:
    """The scoping helper residents reuse, run here for organization B's owner."""
    ids = world.ids
    private = Private(
        lease_id=ids["lease_id"],
        request_id=ids["request_id"],
        comment_id=ids["comment_id"],
        entry_ids=(ids["entry_id"],),
        tenant_id=ids["tenant_id"],
        unit_id=ids["unit_id"],
        property_id=ids["property_id"],
        search_terms=("Matrix",),
    )
    assert unseen_failures(world.client, world.accounts["other_org"], private) == []
    # ... and the helper does see what is there: the owner of A is shown every record.
    assert unseen_failures(world.client, world.owner, private) != []


GETS = sorted(op for op in EXPECTED if op.startswith("GET ") and EXPECTED[op]["owner"] == 200)


@pytest.fixture(scope="module")
def document(world: MatrixWorld) -> dict[str, Any]:
    return dict(world.client.get("/openapi.json").json())


@pytest.mark.parametrize("operation", GETS)
def test_every_representation_a_read_answers_is_in_the_document(
    world: MatrixWorld, document: dict[str, Any], operation: str
) -> None:
    """Asked for CSV or PDF, a read answers a type its 200 documents, or 406; and every type
    the document lists for it is one the server really gives."""
    _, template = operation.split(" ", 1)
    documented = set(document["paths"][template]["get"]["responses"]["200"]["content"])
    for kind in ("text/csv", "application/pdf", "application/json"):
        response = request_cell(world, operation, "owner", extra_headers={"Accept": kind})
        given = response.headers.get("content-type", "").split(";")[0].strip()
        if kind in documented:
            assert response.status_code == 200, (kind, response.text[:300])
            assert given == kind, f"{operation} documents {kind}, answers {given}"
        elif response.status_code == 200:
            assert given in documented, f"{operation} answers {given}, documents {documented}"
        else:
            assert response.status_code == 406, (kind, response.status_code, response.text[:300])
