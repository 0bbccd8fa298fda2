"""A write's check read (haven.db.reader: no lock, before the unit of work sends anything)
racing a delete of what it read: the row it checked is deleted after the check and before
the write. The foreign key refuses the new row at the commit; the client gets a clean 409
problem+json (never a 500), nothing is written, and a retry gets the plain refusal. A
member's email, free when checked and taken by another account before the write, is the
same race the other way round: the unique email index refuses the new user, and nothing of
the member (user or membership) is written.

On SQLite the delete holds the one write lock (BEGIN IMMEDIATE) while the POST checks: the
check reads the last committed state (WAL) without waiting, the POST's own BEGIN IMMEDIATE
then waits for the lock, and nothing deadlocks. On PostgreSQL the new row's foreign key
check waits for the deleting transaction's row lock (the unique index, for the inserting
one's), then fails.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import delete, event, func, insert, select

from haven.config import Settings
from haven.db.base import Base
from haven.db.engine import WRITE_OPTION, create_engine
from haven.models import (
    AuditEvent,
    Bill,
    Event,
    IdempotencyRecord,
    Lease,
    MaintenanceComment,
    MaintenanceRequest,
    Membership,
    Owner,
    OwnerPayout,
    Property,
    Tenant,
    Unit,
    User,
    Vendor,
    WorkOrder,
)
from haven.services import services_of
from support import Account, assert_problem, create_property, create_tenant, register
from support_leases import new_unit

# The POST, what is done under it (a delete of a row it checks, or a row that takes what it
# checked was free), the row it adds, the retry's refusal.
Race = tuple[str, dict[str, Any], Any, type[Base], int]


def _deleted(model: Any, row_id: str) -> Any:
    return delete(model).where(model.id == uuid.UUID(row_id))


def _request(client: TestClient[Any], owner: Account) -> Race:
    prop = create_property(client, owner)
    body = {"propertyId": prop["id"], "title": "Leaking tap"}
    return (
        "/api/v1/maintenance-requests",
        body,
        _deleted(Property, prop["id"]),
        MaintenanceRequest,
        422,
    )


def _made_request(client: TestClient[Any], owner: Account) -> str:
    prop = create_property(client, owner)
    made = client.post(
        "/api/v1/maintenance-requests",
        headers=owner.headers,
        json={"propertyId": prop["id"], "title": "Leaking tap"},
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _comment(client: TestClient[Any], owner: Account) -> Race:
    request_id = _made_request(client, owner)
    path = f"/api/v1/maintenance-requests/{request_id}/comments"
    under = _deleted(MaintenanceRequest, request_id)
    return path, {"body": "On my way"}, under, MaintenanceComment, 404


def _payout(client: TestClient[Any], owner: Account) -> Race:
    made = client.post(
        "/api/v1/owners", headers=owner.headers, json={"kind": "person", "name": "O"}
    )
    assert made.status_code == 201, made.text
    owner_id = made.json()["id"]
    body = {"amount": 10000, "paidOn": "2026-01-15"}
    return f"/api/v1/owners/{owner_id}/payouts", body, _deleted(Owner, owner_id), OwnerPayout, 404


def _vendor(client: TestClient[Any], owner: Account) -> str:
    made = client.post(
        "/api/v1/vendors",
        headers=owner.headers,
        json={"name": "Ace", "trade": "plumbing", "insuranceExpiresOn": "2099-01-01"},
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _work_order(client: TestClient[Any], owner: Account) -> Race:
    request_id = _made_request(client, owner)
    path = f"/api/v1/maintenance-requests/{request_id}/work-orders"
    body = {"title": "Replace washer", "vendorId": _vendor(client, owner)}
    return path, body, _deleted(MaintenanceRequest, request_id), WorkOrder, 404


def _bill(client: TestClient[Any], owner: Account) -> Race:
    vendor_id = _vendor(client, owner)
    body = {
        "vendorId": vendor_id,
        "propertyId": create_property(client, owner)["id"],
        "amount": 11500,
        "issuedOn": "2026-01-10",
        "dueOn": "2026-02-10",
    }
    return "/api/v1/bills", body, _deleted(Vendor, vendor_id), Bill, 422


def _member(client: TestClient[Any], owner: Account) -> Race:
    email = f"m-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "name": "Mo", "role": "viewer", "password": "long enough password"}
    # Another account with the email, committed after the check saw it free.
    taken = insert(User).values(email=email, name="Other", password_hash="x", version=1)
    return "/api/v1/members", body, taken, Membership, 409


def _lease(client: TestClient[Any], owner: Account) -> tuple[str, str, dict[str, Any]]:
    unit = new_unit(client, owner)
    tenants = [create_tenant(client, owner)["id"] for _ in range(2)]
    body = {"unitId": unit["id"], "tenantIds": tenants, "startDate": "2026-01-01", "rent": 120000}
    return unit["id"], tenants[1], body


def _lease_unit(client: TestClient[Any], owner: Account) -> Race:
    unit_id, _, body = _lease(client, owner)
    return "/api/v1/leases", body, _deleted(Unit, unit_id), Lease, 422


def _lease_tenant(client: TestClient[Any], owner: Account) -> Race:
    """The lease's row is fine; its second tenant's (lease_tenants) fails its foreign key."""
    _, tenant_id, body = _lease(client, owner)
    return "/api/v1/leases", body, _deleted(Tenant, tenant_id), Lease, 422


def _unit(client: TestClient[Any], owner: Account) -> Race:
    """The property (its row, and its unit count in the same statement on PostgreSQL)."""
    prop = create_property(client, owner)
    path = f"/api/v1/properties/{prop['id']}/units"
    return path, {"label": "7A"}, _deleted(Property, prop["id"]), Unit, 404


RACES: dict[str, Callable[[TestClient[Any], Account], Race]] = {
    "maintenance-requests": _request,
    "comments": _comment,
    "payouts": _payout,
    "work-orders": _work_order,
    "bills": _bill,
    "members": _member,
    "leases-unit": _lease_unit,
    "leases-tenant": _lease_tenant,
    "units": _unit,
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


def _raced(
    client: TestClient[Any],
    settings: Settings,
    backend: str,
    under: Any,
    send: Callable[[], Any],
) -> Any:
    """`send`'s answer when `under` is done in a transaction that commits only once the
    request has started its write (its check read done)."""
    # The moment the POST starts its write, its check read is done: BEGIN IMMEDIATE on
    # SQLite (it waits there for the delete's lock), the one statement on PostgreSQL.
    writing = threading.Event()
    first = "BEGIN IMMEDIATE" if backend == "sqlite" else "WITH"

    @event.listens_for(services_of(client.app).engine.sync_engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith(first):
            writing.set()

    answers: list[Any] = []

    def post() -> None:
        answers.append(send())

    async def change_under_it() -> bool:
        engine = create_engine(settings)
        try:
            async with engine.connect() as conn:
                await conn.execution_options(**{WRITE_OPTION: True})  # SQLite: the write lock
                await conn.begin()
                await conn.execute(under)
                poster = threading.Thread(target=post)
                poster.start()
                reached = await asyncio.to_thread(writing.wait, 30)
                await conn.commit()
            await asyncio.to_thread(poster.join, 60)
            return reached
        finally:
            await engine.dispose()

    try:
        assert asyncio.run(change_under_it()), "the POST never reached its write"
    finally:
        event.remove(services_of(client.app).engine.sync_engine, "before_cursor_execute", _seen)
    (response,) = answers
    return response


@pytest.mark.parametrize("name", list(RACES))
def test_a_row_deleted_between_the_check_and_the_write_is_a_409(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    database: Any,
    name: str,
) -> None:
    client = app_factory(webhook_worker=False)
    owner = register(client)
    path, body, under, added, refusal = RACES[name](client, owner)
    before = _rows(settings_factory(), added, owner.organization_id)
    trail = _trail(settings_factory(), owner.organization_id)

    response = _raced(
        client,
        settings_factory(),
        database.backend,
        under,
        lambda: client.post(path, headers=owner.headers, json=body),
    )
    assert_problem(response, 409)
    assert _rows(settings_factory(), added, owner.organization_id) == before
    assert _trail(settings_factory(), owner.organization_id) == trail  # no audit row, event, record

    retry = client.post(path, headers=owner.headers, json=body)
    assert retry.status_code == refusal, retry.text


def _trail(settings: Settings, organization_id: str) -> tuple[int, int, int]:
    """(audit rows, events, Idempotency-Key records) of the organization."""

    async def count() -> tuple[int, int, int]:
        engine = create_engine(settings)
        org = uuid.UUID(organization_id)
        try:
            async with engine.connect() as conn:
                counts = []
                for model in (AuditEvent, Event, IdempotencyRecord):
                    stmt = select(func.count()).where(model.organization_id == org)
                    counts.append(int((await conn.execute(stmt)).scalar_one()))
                return counts[0], counts[1], counts[2]
        finally:
            await engine.dispose()

    return asyncio.run(count())


def _raced_post(
    client: TestClient[Any],
    settings: Settings,
    backend: str,
    under: Any,
    path: str,
    headers: dict[str, str],
    body: dict[str, Any],
) -> dict[str, Any]:
    """The POST with `under` committed between its check read and its write: its 409
    conflict problem."""
    response = _raced(
        client, settings, backend, under, lambda: client.post(path, headers=headers, json=body)
    )
    return assert_problem(response, 409, "conflict")


def _assert_same_problem(raced: dict[str, Any], sequential: dict[str, Any]) -> None:
    """The race answers what the check itself answers when the row was there before it."""
    kept = ("type", "title", "status", "detail", "errors")
    assert {k: raced.get(k) for k in kept} == {k: sequential.get(k) for k in kept}


def test_a_unit_label_taken_between_the_check_and_the_write_is_the_label_409(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    database: Any,
) -> None:
    """The label is free when the POST checks it; a unit with it commits before the POST's
    write. The unique index refuses the new unit at the commit, and the client hears what a
    label taken before the check answers (the same problem, the field named); nothing is
    written (no unit, no count, no audit row, event or key record), and the key is not used
    up: once the label is free again, the same request with the same key adds the unit."""
    client = app_factory(webhook_worker=False)
    owner = register(client)
    prop = create_property(client, owner)
    path = f"/api/v1/properties/{prop['id']}/units"
    body = {"label": "7A", "bedrooms": 2}
    unit_id = uuid.uuid4()
    taken = insert(Unit).values(
        id=unit_id,
        organization_id=uuid.UUID(owner.organization_id),
        property_id=uuid.UUID(prop["id"]),
        label="7A",
        version=1,
    )
    settings = settings_factory()
    before = _trail(settings, owner.organization_id)
    keyed = {**owner.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}

    problem = _raced_post(client, settings, database.backend, taken, path, keyed, body)
    sequential = assert_problem(client.post(path, headers=owner.headers, json=body), 409)
    _assert_same_problem(problem, sequential)
    assert problem["errors"] == [
        {"field": "label", "message": "must be unique within the property"}
    ]
    assert _rows(settings, Unit, owner.organization_id) == 1  # the one committed under it
    assert _trail(settings, owner.organization_id) == before
    shown = client.get(f"/api/v1/properties/{prop['id']}", headers=owner.headers).json()
    assert (shown["unitCount"], shown["version"]) == (prop["unitCount"], prop["version"])

    async def free_the_label() -> None:
        engine = create_engine(settings)
        try:
            async with engine.begin() as conn:
                await conn.execute(delete(Unit).where(Unit.id == unit_id))
        finally:
            await engine.dispose()

    asyncio.run(free_the_label())
    retry = client.post(path, headers=keyed, json=body)
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers
    shown = client.get(f"/api/v1/properties/{prop['id']}", headers=owner.headers).json()
    assert shown["unitCount"] == prop["unitCount"] + 1


def test_a_member_email_taken_between_the_check_and_the_write_is_the_email_409(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    database: Any,
) -> None:
    """The email is free when the POST checks it; another account with it commits before the
    POST's write. The unique email index refuses the new user at the commit, and the client
    hears what an email taken before the check answers (the field named, not a bare 409);
    neither the user nor the membership is written, nor an audit row, event or key record,
    and the key is not used up: the same request with the same key answers the plain 409."""
    client = app_factory(webhook_worker=False)
    owner = register(client)
    path, body, taken, _added, _refusal = _member(client, owner)
    settings = settings_factory()
    before = _trail(settings, owner.organization_id)
    members = _rows(settings, Membership, owner.organization_id)
    keyed = {**owner.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}

    problem = _raced_post(client, settings, database.backend, taken, path, keyed, body)
    assert problem["errors"] == [{"field": "email", "message": "is already registered"}]
    assert _rows(settings, Membership, owner.organization_id) == members
    assert _trail(settings, owner.organization_id) == before

    retry = client.post(path, headers=keyed, json=body)  # the key was not used up
    sequential = assert_problem(retry, 409, "conflict")
    assert "idempotent-replayed" not in retry.headers
    _assert_same_problem(problem, sequential)
