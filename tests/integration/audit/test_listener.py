"""The write recorder on a bare session (as CLI jobs use it): savepoints, rollbacks, context."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select

from haven.config import load_settings
from haven.db.engine import WRITE_OPTION, create_engine
from haven.models import AuditEvent, Organization, Property, Tenant
from haven.uow import Actor, as_actor, create_sessionmaker


def _property(org: Organization) -> Property:
    return Property(
        organization_id=org.id,
        name="Listener Court",
        type="residential",
        address_line1="1 Hook Street",
        city="Springfield",
        country="US",
        unit_count=0,
    )


async def _scenario(url: str) -> tuple[list[tuple[str, str | None, str | None]], list[Any]]:
    engine = create_engine(load_settings({"DATABASE_URL": url}))
    maker = create_sessionmaker(engine.execution_options(**{WRITE_OPTION: True}))
    actor = uuid.uuid4()
    try:
        async with maker() as session:
            as_actor(session, Actor("user", user_id=actor), "job-1", "r-1")
            org = Organization(name="Listener Org", currency="USD", timezone="UTC")
            session.add(org)
            await session.flush()
            prop = _property(org)
            session.add(prop)
            await session.flush()
            savepoint = await session.begin_nested()
            session.add(Tenant(organization_id=org.id, first_name="Undone", last_name="Tenant"))
            await session.flush()
            await savepoint.rollback()
            prop.name = "Listener Court II"  # flushed by the commit itself
            await session.commit()

        async with maker() as session:
            session.add(Tenant(organization_id=org.id, first_name="Rolled", last_name="Back"))
            await session.flush()
            await session.rollback()

        async with maker() as session:
            rows = (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.organization_id == org.id)
                )
            ).scalars()
            events = sorted(rows, key=lambda e: e.action)
            return [(e.action, e.instance_id, e.request_id) for e in events], [
                (e.actor_id == actor, e.changes) for e in events
            ]
    finally:
        await engine.dispose()


def test_savepoint_and_full_rollbacks_leave_no_events_and_context_is_recorded(
    database: Any,
) -> None:
    events, details = asyncio.run(_scenario(database.url))
    assert events == [
        ("organization.created", "job-1", "r-1"),
        ("property.created", "job-1", "r-1"),
        ("property.updated", "job-1", "r-1"),
    ]
    assert all(is_actor for is_actor, _ in details)
    assert details[2][1] == ["name"]


async def _api_key_scenario(url: str, key_id: uuid.UUID) -> list[tuple[Any, ...]]:
    engine = create_engine(load_settings({"DATABASE_URL": url}))
    maker = create_sessionmaker(engine.execution_options(**{WRITE_OPTION: True}))
    try:
        async with maker() as session:
            org = Organization(name="Key Org", currency="USD", timezone="UTC")
            session.add(org)
            await session.flush()
            as_actor(session, Actor.api_key(key_id, org.id), "api-1")
            session.add(_property(org))
            await session.commit()
        async with maker() as session:
            rows = await session.execute(
                select(
                    AuditEvent.action,
                    AuditEvent.actor_id,
                    AuditEvent.system_actor,
                    AuditEvent.api_key_id,
                )
                .where(AuditEvent.organization_id == org.id)
                .order_by(AuditEvent.action)
            )
            return [tuple(row) for row in rows]
    finally:
        await engine.dispose()


def test_a_write_by_an_api_key_names_the_key(database: Any) -> None:
    key_id = uuid.uuid4()
    rows = asyncio.run(_api_key_scenario(database.url, key_id))
    assert rows == [
        ("organization.created", None, None, key_id),
        ("property.created", None, None, key_id),
    ]
