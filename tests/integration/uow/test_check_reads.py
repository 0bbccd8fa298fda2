"""A write's check read (haven.db.reader: no lock, before the unit of work sends anything)
racing a delete of what it read: the row it checked is deleted after the check and before
the write. The foreign key refuses the new row at the commit; the client gets a clean 409
problem+json (never a 500), nothing is written, and a retry gets the plain refusal.

On SQLite the delete holds the one write lock (BEGIN IMMEDIATE) while the POST checks: the
check reads the last committed state (WAL) without waiting, the POST's own BEGIN IMMEDIATE
then waits for the lock, and nothing deadlocks. On PostgreSQL the new row's foreign key
check waits for the deleting transaction's row lock, then fails.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import delete, event, func, select

from haven.config import Settings
from haven.db.base import Base
from haven.db.engine import WRITE_OPTION, create_engine
from haven.models import (
    Lease,
    MaintenanceComment,
    MaintenanceRequest,
    Owner,
    OwnerPayout,
    Property,
    Tenant,
    Unit,
)
from haven.services import services_of
from support import Account, assert_problem, create_property, create_tenant, register
from support_leases import new_unit

# The POST, what it checks (deleted under it), the row it adds, the retry's refusal.
Race = tuple[str, dict[str, Any], type[Base], str, type[Base], int]


def _request(client: TestClient[Any], owner: Account) -> Race:
    prop = create_property(client, owner)
    body = {"propertyId": prop["id"], "title": "Leaking tap"}
    return "/api/v1/maintenance-requests", body, Property, prop["id"], MaintenanceRequest, 422


def _comment(client: TestClient[Any], owner: Account) -> Race:
    prop = create_property(client, owner)
    made = client.post(
        "/api/v1/maintenance-requests",
        headers=owner.headers,
        json={"propertyId": prop["id"], "title": "Leaking tap"},
    )
    assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    path = f"/api/v1/maintenance-requests/{request_id}/comments"
    return path, {"body": "On my way"}, MaintenanceRequest, request_id, MaintenanceComment, 404


def _payout(client: TestClient[Any], owner: Account) -> Race:
    made = client.post(
        "/api/v1/owners", headers=owner.headers, json={"kind": "person", "name": "O"}
    )
    assert made.status_code == 201, made.text
    owner_id = made.json()["id"]
    body = {"amount": 10000, "paidOn": "2026-01-15"}
    return f"/api/v1/owners/{owner_id}/payouts", body, Owner, owner_id, OwnerPayout, 404


def _lease(client: TestClient[Any], owner: Account) -> tuple[str, str, dict[str, Any]]:
    unit = new_unit(client, owner)
    tenants = [create_tenant(client, owner)["id"] for _ in range(2)]
    body = {"unitId": unit["id"], "tenantIds": tenants, "startDate": "2026-01-01", "rent": 120000}
    return unit["id"], tenants[1], body


def _lease_unit(client: TestClient[Any], owner: Account) -> Race:
    unit_id, _, body = _lease(client, owner)
    return "/api/v1/leases", body, Unit, unit_id, Lease, 422


def _lease_tenant(client: TestClient[Any], owner: Account) -> Race:
    """The lease's row is fine; its second tenant's (lease_tenants) fails its foreign key."""
    _, tenant_id, body = _lease(client, owner)
    return "/api/v1/leases", body, Tenant, tenant_id, Lease, 422


RACES: dict[str, Callable[[TestClient[Any], Account], Race]] = {
    "maintenance-requests": _request,
    "comments": _comment,
    "payouts": _payout,
    "leases-unit": _lease_unit,
    "leases-tenant": _lease_tenant,
}


def _rows(settings: Settings, model: type[Base], organization_id: str) -> int:
    async def count() -> int:
        engine = create_engine(settings)
        table: Any = model
        try:
            async with engine.connect() as conn:
                stmt = select(func.count()).select_from(table)
                stmt = stmt.where(table.organization_id == uuid.UUID(organization_id))
                return int((await conn.execute(stmt)).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())


@pytest.mark.parametrize("name", list(RACES))
def test_a_row_deleted_between_the_check_and_the_write_is_a_409(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    database: Any,
    name: str,
) -> None:
    client = app_factory(webhook_worker=False)
    owner = register(client)
    path, body, checked, checked_id, added, refusal = RACES[name](client, owner)

    # The moment the POST starts its write, its check read is done: BEGIN IMMEDIATE on
    # SQLite (it waits there for the delete's lock), the one statement on PostgreSQL.
    writing = threading.Event()
    first = "BEGIN IMMEDIATE" if database.backend == "sqlite" else "WITH"

    @event.listens_for(services_of(client.app).engine.sync_engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith(first):
            writing.set()

    answers: list[Any] = []

    def post() -> None:
        answers.append(client.post(path, headers=owner.headers, json=body))

    async def delete_under_it() -> bool:
        engine = create_engine(settings_factory())
        table: Any = checked
        try:
            async with engine.connect() as conn:
                await conn.execution_options(**{WRITE_OPTION: True})  # SQLite: the write lock
                await conn.begin()
                await conn.execute(delete(table).where(table.id == uuid.UUID(checked_id)))
                poster = threading.Thread(target=post)
                poster.start()
                reached = await asyncio.to_thread(writing.wait, 30)
                await conn.commit()
            await asyncio.to_thread(poster.join, 60)
            return reached
        finally:
            await engine.dispose()

    assert asyncio.run(delete_under_it()), "the POST never reached its write"
    (response,) = answers
    assert_problem(response, 409)
    assert _rows(settings_factory(), added, owner.organization_id) == 0

    retry = client.post(path, headers=owner.headers, json=body)
    assert retry.status_code == refusal, retry.text
