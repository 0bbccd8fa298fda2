"""Helpers for the vendor, work-order, bill and P&L tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import TestClient

from support import Account
from support_maintenance import create_request

VENDORS = "/api/v1/vendors"
WORK_ORDERS = "/api/v1/work-orders"
BILLS = "/api/v1/bills"
PL = "/api/v1/reports/property-pl"


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def days_from_today(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def create_vendor(client: TestClient[Any], account: Account, **changes: Any) -> dict[str, Any]:
    body = {
        "name": "Ace Plumbing",
        "trade": "plumbing",
        "insuranceExpiresOn": days_from_today(365),
        **changes,
    }
    response = client.post(VENDORS, headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_work_order(
    client: TestClient[Any], account: Account, property_id: str, **changes: Any
) -> dict[str, Any]:
    request = create_request(client, account, property_id)
    body = {"title": "Replace washer", "estimate": 12000, **changes}
    response = client.post(
        f"/api/v1/maintenance-requests/{request['id']}/work-orders",
        headers=account.headers,
        json=body,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def wo_transition(
    client: TestClient[Any], account: Account, order_id: str, to: str, **fields: Any
) -> Any:
    return client.post(
        f"{WORK_ORDERS}/{order_id}/transition",
        headers=account.headers,
        json={"to": to, **fields},
    )


SCHEDULE = {"scheduledStart": "2026-12-01T09:00:00Z", "scheduledEnd": "2026-12-01T12:00:00Z"}


def create_bill(
    client: TestClient[Any],
    account: Account,
    vendor_id: str,
    property_id: str,
    amount: int = 11500,
    **changes: Any,
) -> dict[str, Any]:
    body = {
        "vendorId": vendor_id,
        "propertyId": property_id,
        "amount": amount,
        "issuedOn": days_from_today(-10),
        "dueOn": days_from_today(20),
        **changes,
    }
    response = client.post(BILLS, headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def pay_bill(
    client: TestClient[Any], account: Account, bill_id: str, amount: int, **changes: Any
) -> Any:
    return client.post(
        f"{BILLS}/{bill_id}/payments",
        headers=account.headers,
        json={"amount": amount, "method": "bank_transfer", **changes},
    )


def reverse_payment(client: TestClient[Any], account: Account, bill_id: str, pid: str) -> Any:
    return client.post(f"{BILLS}/{bill_id}/payments/{pid}/reverse", headers=account.headers)


AUDIT = "/api/v1/audit-events"


def listing(client: TestClient[Any], account: Account, path: str, **params: Any) -> list[Any]:
    """Every item of a list endpoint, following cursors (bounded)."""
    items: list[Any] = []
    cursor = None
    for _ in range(50):
        query = {"limit": 100, **params}
        if cursor:
            query["cursor"] = cursor
        response = client.get(path, headers=account.headers, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["nextCursor"]
        if not cursor:
            return items
    raise AssertionError(f"{path} did not end within 50 pages")


def everything(client: TestClient[Any], account: Account) -> Any:
    """What a refused write must leave untouched: every vendor, work order, bill, payment and
    audit event of the organization."""
    bills = listing(client, account, BILLS)
    payments = [listing(client, account, f"{BILLS}/{b['id']}/payments") for b in bills]
    return (
        listing(client, account, VENDORS),
        listing(client, account, WORK_ORDERS),
        bills,
        payments,
        listing(client, account, AUDIT),
    )
