"""Factories for leases and the ledger (tests of leases, ledger, billing, dashboard, reports)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.testing import TestClient

from support import Account, create_property, create_tenant, create_unit


def new_unit(client: TestClient[Any], account: Account, **changes: Any) -> dict[str, Any]:
    prop = create_property(client, account)
    return create_unit(client, account, prop["id"], **changes)


def draft_lease(
    client: TestClient[Any],
    account: Account,
    *,
    unit_id: str | None = None,
    tenant_ids: list[str] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    unit_id = unit_id or new_unit(client, account)["id"]
    tenant_ids = tenant_ids or [create_tenant(client, account)["id"]]
    body = {
        "unitId": unit_id,
        "tenantIds": tenant_ids,
        "startDate": "2026-01-01",
        "endDate": "2026-12-31",
        "rent": 120000,
        "deposit": 240000,
        "dueDay": 1,
        "graceDays": 5,
        "lateFee": {"kind": "flat", "amount": 5000},
        **changes,
    }
    response = client.post("/api/v1/leases", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def active_lease(client: TestClient[Any], account: Account, **changes: Any) -> dict[str, Any]:
    lease = draft_lease(client, account, **changes)
    response = client.post(f"/api/v1/leases/{lease['id']}/activate", headers=account.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def post_entry(
    client: TestClient[Any], account: Account, lease_id: str, what: str, **body: Any
) -> dict[str, Any]:
    response = client.post(f"/api/v1/leases/{lease_id}/{what}", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def charge(
    client: TestClient[Any],
    account: Account,
    lease_id: str,
    amount: int,
    due: str,
    kind: str = "rent",
) -> dict[str, Any]:
    return post_entry(client, account, lease_id, "charges", kind=kind, amount=amount, dueDate=due)


def pay(
    client: TestClient[Any],
    account: Account,
    lease_id: str,
    amount: int,
    on: str = "2026-01-02",
    headers: dict[str, str] | None = None,
) -> Any:
    return client.post(
        f"/api/v1/leases/{lease_id}/payments",
        headers={**account.headers, **(headers or {})},
        json={"amount": amount, "receivedOn": on, "method": "bank_transfer"},
    )


def ledger(client: TestClient[Any], account: Account, lease_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/leases/{lease_id}/ledger", headers=account.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}
