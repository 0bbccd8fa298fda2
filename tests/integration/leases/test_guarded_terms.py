"""A recurring charge reads its lease's terms without a lock (PostgreSQL) and its commit
writes only if the lease's row is still the version it read (haven.leases.service
`get_guarded`). A change of the terms that commits in between (here: the lease's end date
moved before the charge's start) makes the commit write nothing; the request runs once more,
locking the lease, and answers what the new terms say: the 422 a charge outside the lease
gets, nothing written, the Idempotency-Key not used up. Without the guard the charge was
written outside the lease (201)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from haven.config import Settings
from haven.db.engine import create_engine
from support import assert_problem, register, until_a_statement_waits_for_a_lock
from support_leases import active_lease

CHARGE = {"kind": "parking", "amount": 5000, "startDate": "2026-11-01"}


def test_a_recurring_charge_answers_the_terms_that_changed_before_its_commit(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    database: Any,
) -> None:
    if database.backend != "postgresql":
        pytest.skip("SQLite's writer holds the database's lock from BEGIN: no such wait")
    client = app_factory()
    owner = register(client)
    lease = active_lease(client, owner)  # 2026-01-01 .. 2026-12-31
    path = f"/api/v1/leases/{lease['id']}/recurring-charges"
    headers = {**owner.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    settings = settings_factory()

    async def scenario() -> Any:
        engine = create_engine(settings)
        try:
            async with engine.connect() as other, engine.connect() as watcher:
                await other.execute(  # a change of the terms, not committed yet
                    text("UPDATE leases SET end_date = '2026-06-30' WHERE id = :id"),
                    {"id": uuid.UUID(lease["id"])},
                )
                waiting = asyncio.create_task(
                    asyncio.to_thread(client.post, path, headers=headers, json=CHARGE)
                )
                await until_a_statement_waits_for_a_lock(watcher)  # its commit waits
                await other.commit()
                return await waiting
        finally:
            await engine.dispose()

    response = asyncio.run(scenario())
    problem = assert_problem(response, 422)
    assert "startDate" in response.text, problem
    listed = client.get(path, headers=owner.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json() == []

    # The key was not used up: once the lease runs to the charge's start again, the same
    # request with the same key adds the charge.
    async def restore() -> None:
        engine = create_engine(settings)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE leases SET end_date = '2026-12-31' WHERE id = :id"),
                    {"id": uuid.UUID(lease["id"])},
                )
        finally:
            await engine.dispose()

    asyncio.run(restore())
    retried = client.post(path, headers=headers, json=CHARGE)
    assert retried.status_code == 201, retried.text
    assert [c["startDate"] for c in client.get(path, headers=owner.headers).json()] == [
        "2026-11-01"
    ]
