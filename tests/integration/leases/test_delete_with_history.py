"""Deleting a unit, property or tenant never takes lease or ledger history with it."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from support import Account, assert_problem, create_tenant
from support_leases import active_lease, charge, draft_lease, ledger, new_unit


def _terminated_lease_with_ledger(client: TestClient[Any], owner: Account) -> dict[str, Any]:
    lease = active_lease(client, owner)
    charge(client, owner, lease["id"], 120000, "2026-01-01")
    response = client.post(
        f"/api/v1/leases/{lease['id']}/terminate",
        headers=owner.headers,
        json={"date": "2026-02-01"},
    )
    assert response.status_code == 200, response.text
    return lease


def test_unit_property_and_tenant_with_an_active_lease_cannot_be_deleted(
    client: TestClient[Any], owner: Account
) -> None:
    lease = active_lease(client, owner)
    unit = client.get(f"/api/v1/units/{lease['unitId']}", headers=owner.headers).json()
    for path in (
        f"/api/v1/units/{unit['id']}",
        f"/api/v1/properties/{unit['propertyId']}",
        f"/api/v1/tenants/{lease['tenantIds'][0]}",
    ):
        body = assert_problem(client.delete(path, headers=owner.headers), 409, "conflict")
        assert "active lease" in body["detail"]
        assert client.get(path, headers=owner.headers).status_code == 200


def test_lease_history_survives_attempts_to_delete_what_it_belongs_to(
    client: TestClient[Any], owner: Account
) -> None:
    lease = _terminated_lease_with_ledger(client, owner)
    before = ledger(client, owner, lease["id"])
    unit = client.get(f"/api/v1/units/{lease['unitId']}", headers=owner.headers).json()
    for path in (
        f"/api/v1/units/{unit['id']}",
        f"/api/v1/properties/{unit['propertyId']}",
        f"/api/v1/tenants/{lease['tenantIds'][0]}",
    ):
        body = assert_problem(client.delete(path, headers=owner.headers), 409, "conflict")
        assert "lease history" in body["detail"]
    assert ledger(client, owner, lease["id"]) == before


def test_only_draft_leases_go_with_a_deleted_unit_or_tenant(
    client: TestClient[Any], owner: Account
) -> None:
    unit = new_unit(client, owner)
    tenant = create_tenant(client, owner)
    lease = draft_lease(client, owner, unit_id=unit["id"], tenant_ids=[tenant["id"]])
    assert (
        client.delete(f"/api/v1/tenants/{tenant['id']}", headers=owner.headers).status_code == 204
    )
    assert client.delete(f"/api/v1/units/{unit['id']}", headers=owner.headers).status_code == 204
    assert client.get(f"/api/v1/leases/{lease['id']}", headers=owner.headers).status_code == 404
