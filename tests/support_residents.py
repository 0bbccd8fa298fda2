"""Factories for residents: a tenant on a lease, invited, accepted and signed in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.testing import TestClient

from support import Account, create_tenant, unique_email
from support_leases import active_lease, new_unit

RESIDENT_PASSWORD = "resident passphrase 1"


@dataclass
class Resident:
    account: Account
    tenant_id: str
    lease: dict[str, Any]


def invite(client: TestClient[Any], staff: Account, tenant_id: str, **body: Any) -> Any:
    return client.post(f"/api/v1/tenants/{tenant_id}/invitations", headers=staff.headers, json=body)


def accept(client: TestClient[Any], token: str, password: str = RESIDENT_PASSWORD) -> Any:
    response = client.post(
        "/api/v1/invitations/accept", json={"token": token, "password": password}
    )
    client.cookies.clear()
    return response


def account_of(login: Any, email: str, password: str = RESIDENT_PASSWORD) -> Account:
    body = login.json()
    return Account(
        email=email,
        password=password,
        token=body["accessToken"],
        csrf=body["csrfToken"],
        session_cookie=login.cookies["haven_session"],
        organization_id=body["organization"]["id"],
        user_id=body["user"]["id"],
        body=body,
    )


def resident(
    client: TestClient[Any], staff: Account, *, unit_id: str | None = None, **lease: Any
) -> Resident:
    """A tenant with an active lease (month-to-month unless `endDate` is given), signed in."""
    tenant = create_tenant(client, staff, email=unique_email("resident"))
    lease.setdefault("endDate", None)
    lease.setdefault("startDate", "2026-01-01")
    made = active_lease(
        client,
        staff,
        unit_id=unit_id or new_unit(client, staff)["id"],
        tenant_ids=[tenant["id"]],
        **lease,
    )
    invited = invite(client, staff, tenant["id"])
    assert invited.status_code == 201, invited.text
    accepted = accept(client, invited.json()["token"])
    assert accepted.status_code == 201, accepted.text
    return Resident(account_of(accepted, tenant["email"]), tenant["id"], made)
