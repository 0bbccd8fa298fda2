"""Rows added with `uow.add_new` are written once, with their audit rows and events, on
every path: in the commit's one statement, flushed by a query first, or flushed at the
commit when they are too many for one statement (haven.uow.tail MAX_ROWS)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import func, select

from haven.db.engine import WRITE_OPTION, create_engine
from haven.models import AuditEvent, Event, Tenant
from haven.uow import Actor, add_new, as_actor, create_sessionmaker
from haven.uow.tail import MAX_ROWS
from support import Account


def _counts(settings: Any, organization_id: uuid.UUID, last_name: str) -> tuple[int, int, int]:
    async def count() -> tuple[int, int, int]:
        engine = create_engine(settings)
        try:
            async with engine.connect() as conn:
                tenants = (
                    await conn.execute(
                        select(func.count())
                        .select_from(Tenant)
                        .where(Tenant.organization_id == organization_id)
                        .where(Tenant.last_name == last_name)
                    )
                ).scalar_one()
                # Scoped to this organization: other tests (and earlier runs on the
                # same database) add tenants with the same last name.
                ids = (
                    select(Tenant.id)
                    .where(Tenant.organization_id == organization_id)
                    .where(Tenant.last_name == last_name)
                )
                audits = (
                    await conn.execute(
                        select(func.count())
                        .select_from(AuditEvent)
                        .where(AuditEvent.entity_id.in_(ids))
                    )
                ).scalar_one()
                events = (
                    await conn.execute(
                        select(func.count()).select_from(Event).where(Event.resource_id.in_(ids))
                    )
                ).scalar_one()
                return tenants, audits, events
        finally:
            await engine.dispose()

    return asyncio.run(count())


def _add(
    settings: Any,
    organization_id: uuid.UUID,
    last_name: str,
    n: int,
    query: bool,
    first_name: Any = "A",
) -> None:
    async def add() -> None:
        engine = create_engine(settings)
        try:
            maker = create_sessionmaker(engine.execution_options(**{WRITE_OPTION: True}))
            async with maker() as session:
                as_actor(session, Actor.system("test"), "test")
                for _ in range(n):
                    add_new(
                        session,
                        Tenant(
                            organization_id=organization_id,
                            first_name=first_name,
                            last_name=last_name,
                        ),
                    )
                if query:  # a query sees them: autoflushed
                    stmt = (
                        select(func.count())
                        .where(Tenant.organization_id == organization_id)
                        .where(Tenant.last_name == last_name)
                    )
                    assert (await session.execute(stmt)).scalar_one() == n
                await session.commit()
                # The session goes on: a second commit writes nothing more.
                add_new(
                    session,
                    Tenant(organization_id=organization_id, first_name="B", last_name="Other"),
                )
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(add())


def test_add_new_rows_are_written_once_on_every_path(
    client: TestClient[Any], owner: Account, settings_factory: Callable[..., Any]
) -> None:
    settings = settings_factory()
    org = uuid.UUID(owner.organization_id)
    for name, n, query in (("One", 1, False), ("Queried", 2, True), ("Many", MAX_ROWS + 1, False)):
        _add(settings, org, name, n, query)
        assert _counts(settings, org, name) == (n, n, n), name


def test_a_row_holding_a_sql_expression_is_flushed_not_bound(
    client: TestClient[Any], owner: Account, settings_factory: Callable[..., Any]
) -> None:
    """The tail binds plain values; a column set to an expression is the database's to
    compute, so such a row goes the flush's way, still once, with its audit row and event."""
    settings = settings_factory()
    org = uuid.UUID(owner.organization_id)
    _add(settings, org, "Computed", 1, False, first_name=func.upper("ada"))
    assert _counts(settings, org, "Computed") == (1, 1, 1)

    async def first_name() -> str:
        engine = create_engine(settings)
        try:
            async with engine.connect() as conn:
                stmt = (
                    select(Tenant.first_name)
                    .where(Tenant.organization_id == org)
                    .where(Tenant.last_name == "Computed")
                )
                return str((await conn.execute(stmt)).scalar_one())
        finally:
            await engine.dispose()

    assert asyncio.run(first_name()) == "ADA"
