"""Factories for owners, ownership and statements (tests/integration/owners).

`pay_bill` is the ONE place tests create vendor bills and bill payments: until the vendors
API is on this branch it writes them through the ORM; switch it to the API there."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from conftest import Database
from support import Account


def create_owner(client: TestClient[Any], account: Account, **changes: Any) -> dict[str, Any]:
    body = {"kind": "person", "name": f"Owen Owner {uuid.uuid4().hex[:6]}", **changes}
    response = client.post("/api/v1/owners", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def put_shares(
    client: TestClient[Any],
    account: Account,
    property_id: str,
    effective_from: str,
    shares: list[tuple[str, int]],
) -> dict[str, Any]:
    response = client.put(
        f"/api/v1/properties/{property_id}/ownership",
        headers=account.headers,
        json={
            "effectiveFrom": effective_from,
            "shares": [{"ownerId": o, "basisPoints": p} for o, p in shares],
        },
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def statement(
    client: TestClient[Any], account: Account, owner_id: str, month: str, accept: str | None = None
) -> Any:
    headers = {**account.headers, **({"Accept": accept} if accept else {})}
    return client.get(f"/api/v1/owners/{owner_id}/statements/{month}", headers=headers)


def pay_bill(
    database: Database,
    organization_id: str,
    property_id: str,
    amount: int,
    paid_on: date,
    *,
    reverse: bool = False,
) -> None:
    """A vendor bill of `amount` for the property, paid on `paid_on` (and, with `reverse`,
    that payment reversed the same day): an expense of the property."""
    from haven.models import Bill, BillPayment, Vendor

    async def run() -> None:
        engine = create_async_engine(database.url)
        try:
            async with AsyncSession(engine) as session, session.begin():
                org, prop = uuid.UUID(organization_id), uuid.UUID(property_id)
                vendor = Vendor(organization_id=org, name="Pipes & Co", trade="plumbing")
                session.add(vendor)
                await session.flush()
                bill = Bill(
                    organization_id=org,
                    vendor_id=vendor.id,
                    property_id=prop,
                    amount=amount,
                    issued_on=paid_on,
                    due_on=paid_on,
                    status="paid",
                    amount_paid=amount,
                )
                session.add(bill)
                await session.flush()
                payment = BillPayment(
                    organization_id=org,
                    bill_id=bill.id,
                    property_id=prop,
                    amount=amount,
                    paid_on=paid_on,
                    method="bank_transfer",
                )
                session.add(payment)
                await session.flush()
                if reverse:
                    session.add(
                        BillPayment(
                            organization_id=org,
                            bill_id=bill.id,
                            property_id=prop,
                            amount=-amount,
                            paid_on=paid_on,
                            reverses_id=payment.id,
                        )
                    )
                    bill.status, bill.amount_paid = "open", 0
        finally:
            await engine.dispose()

    asyncio.run(run())
