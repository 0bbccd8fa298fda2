"""Changes queued with `uow.add_change` (a property's unit count, moved by each unit write):
written with the commit, after the rows they change are locked in the order every writer
takes them, and once each however many the transaction queued."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select, text

from haven.db.engine import WRITE_OPTION, create_engine
from haven.db.reader import Reader
from haven.models import EventCounter
from haven.units import service as units
from haven.units.schemas import UnitIn
from haven.uow import Actor, as_actor, create_sessionmaker
from support import (
    Account,
    create_property,
    create_tenant,
    until_a_statement_waits_for_a_lock,
)
from support_leases import new_unit


def test_a_unit_post_waits_for_a_property_writer_before_it_locks_the_event_counter(
    client: TestClient[Any],
    owner: Account,
    settings_factory: Callable[..., Any],
    database: Any,
) -> None:
    """A flushed write of a property (a PATCH) locks its row, then the organization's event
    counter in its tail. The unit POST's one statement changes the property's row (its unit
    count) and numbers its event: it takes them in the same order, so while it waits for the
    property it holds nothing the writer needs. Were the counter's upsert run first (as
    PostgreSQL runs a CTE the statement's SELECT reads), the two would deadlock."""
    if database.backend != "postgresql":
        pytest.skip("SQLite's writer holds the database's lock from BEGIN: no such wait")
    prop = create_property(client, owner)
    settings = settings_factory()
    path = f"/api/v1/properties/{prop['id']}/units"
    org = uuid.UUID(owner.organization_id)

    async def scenario() -> tuple[Any, Any]:
        engine = create_engine(settings)
        try:
            async with engine.connect() as other, engine.connect() as watcher:
                await other.execute(text("SET lock_timeout = '5s'"))  # a wait fails the test
                await other.execute(
                    text("SELECT id FROM properties WHERE id = :id FOR UPDATE"),
                    {"id": uuid.UUID(prop["id"])},
                )
                waiting = asyncio.create_task(
                    asyncio.to_thread(
                        client.post, path, headers=owner.headers, json={"label": "7A"}
                    )
                )
                await until_a_statement_waits_for_a_lock(watcher)
                counter = await other.execute(
                    select(EventCounter.position)
                    .where(EventCounter.organization_id == org)
                    .with_for_update()
                )
                position = counter.scalar_one()
                await other.rollback()
                return position, await waiting
        finally:
            await engine.dispose()

    _position, response = asyncio.run(scenario())
    assert response.status_code == 201, response.text
    shown = client.get(f"/api/v1/properties/{prop['id']}", headers=owner.headers).json()
    assert (shown["unitCount"], shown["version"]) == (1, prop["version"] + 1)


def test_a_lease_post_waits_for_its_unit_before_it_locks_the_event_counter(
    client: TestClient[Any],
    owner: Account,
    settings_factory: Callable[..., Any],
    database: Any,
) -> None:
    """A unit's DELETE locks the unit's row, then the organization's event counter in its
    tail. A lease POST's one statement adds a row naming that unit: it takes the unit's key
    share lock (which the foreign key needs) before the counter, so while it waits for the
    unit it holds nothing the DELETE needs. Were the foreign key checked only at the
    statement's end, after the counter's upsert, the two would deadlock: PostgreSQL aborts
    one of them after its deadlock_timeout (1 s), the DELETE's request or the POST's."""
    if database.backend != "postgresql":
        pytest.skip("SQLite's writer holds the database's lock from BEGIN: no such wait")
    unit = new_unit(client, owner)
    tenant = create_tenant(client, owner)
    settings = settings_factory()
    org = uuid.UUID(owner.organization_id)
    body = {
        "unitId": unit["id"],
        "tenantIds": [tenant["id"]],
        "startDate": "2026-01-01",
        "rent": 120000,
        "deposit": 0,
        "dueDay": 1,
    }

    async def scenario() -> Any:
        engine = create_engine(settings)
        try:
            async with engine.connect() as other, engine.connect() as watcher:
                await other.execute(text("SET lock_timeout = '5s'"))  # a wait fails the test
                await other.execute(  # what a unit DELETE holds before its tail
                    text("SELECT id FROM units WHERE id = :id FOR UPDATE"),
                    {"id": uuid.UUID(unit["id"])},
                )
                waiting = asyncio.create_task(
                    asyncio.to_thread(
                        client.post, "/api/v1/leases", headers=owner.headers, json=body
                    )
                )
                await until_a_statement_waits_for_a_lock(watcher)
                # The counter is free while the POST waits: NOWAIT fails at once were it held.
                await other.execute(
                    select(EventCounter.position)
                    .where(EventCounter.organization_id == org)
                    .with_for_update(nowait=True)
                )
                await other.rollback()
                return await waiting
        finally:
            await engine.dispose()

    response = asyncio.run(scenario())
    assert response.status_code == 201, response.text
    shown = client.get(f"/api/v1/leases/{response.json()['id']}", headers=owner.headers)
    assert shown.json()["unitId"] == unit["id"]


def test_one_change_queued_twice_is_written_twice(
    client: TestClient[Any], owner: Account, settings_factory: Callable[..., Any]
) -> None:
    """Two units of one property in one transaction (a script's, which has not loaded the
    property) queue the same UPDATE twice: it cannot be two CTEs of one statement (their
    parameters would share names), so that commit writes it statement by statement, and the
    count is right."""
    prop = create_property(client, owner)
    settings = settings_factory()

    async def add_two() -> None:
        engine = create_engine(settings)
        try:
            maker = create_sessionmaker(engine.execution_options(**{WRITE_OPTION: True}))
            async with maker() as session:
                as_actor(session, Actor.system("test"), "test")
                for label in ("1A", "1B"):
                    await units.create(
                        session,
                        Reader.inside(session),
                        uuid.UUID(owner.organization_id),
                        uuid.UUID(prop["id"]),
                        UnitIn(label=label),
                    )
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(add_two())
    shown = client.get(f"/api/v1/properties/{prop['id']}", headers=owner.headers).json()
    assert (shown["unitCount"], shown["version"]) == (2, prop["version"] + 2)
    listed = client.get(f"/api/v1/properties/{prop['id']}/units", headers=owner.headers).json()
    assert [u["label"] for u in listed["items"]] == ["1A", "1B"]
