"""A statement the app prepares costs the same in a large organization as in a small one.

Haven's statements are prepared (asyncpg keeps them per connection) and PostgreSQL, after
five executions, may switch a prepared statement to a generic plan: one chosen without the
parameters' values, from average selectivities. Every statement names an organization, and
organizations are skewed (one with 100,000 leases among a thousand with ten): the generic
plan prices `organization_id = $2` at the average organization's rows. For a lookup by id
that needs only columns of an `(organization_id, created_at, id)` index, such as a lease's
ledger joining its lease, that plan walks the organization's whole index range to find one
id: 719 buffers and 2.5 ms at 100,000 leases against 17 buffers through the primary key
(bench/RESULTS-scale.md, "a lease's ledger"). The app's connections therefore plan each
execution for its own parameters (`plan_cache_mode = force_custom_plan`,
haven.db.engine).

Counted, not timed: the buffers PostgreSQL touches for the ledger statement, executed as
the app executes it (prepared, past the five custom plans), for a lease of a large
organization and one of a small organization, in a throwaway database seeded like the
scale bench's.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from bench.scale import seed as seeding
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from haven.config import load_settings
from haven.db.engine import create_engine
from haven.db.migrate import upgrade
from haven.ledger.repository import LEDGER

PG_ENV = "HAVEN_TEST_DATABASE_URL"
BIG_UNITS = 4_000  # 80,000 ledger entries: the big organization's index range spans pages
SMALL_ORGS = 200


@pytest.fixture(scope="module")
def skewed() -> Iterator[tuple[str, uuid.UUID]]:
    """(DATABASE_URL, the big organization's id) of a throwaway database: one organization
    with BIG_UNITS leased units and SMALL_ORGS organizations of a few units each."""
    configured = os.environ.get(PG_ENV)
    if not configured:
        pytest.skip(f"query plans are PostgreSQL's (set {PG_ENV})")
    base, _, _ = configured.rpartition("/")
    admin = configured.replace("postgresql+asyncpg://", "postgresql://")
    name = f"haven_plans_{secrets.token_hex(4)}"
    url = f"{base}/{name}"
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")

    async def admin_exec(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def seed(big: uuid.UUID) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "INSERT INTO organizations (id, name, currency, timezone, created_at,"
                " updated_at, version) VALUES ($1, 'Big', 'USD', 'UTC', now(), now(), 1)",
                big,
            )
        finally:
            await conn.close()
        await seeding.seed(dsn, big, BIG_UNITS, SMALL_ORGS, datetime.now(UTC).date())
        # As autovacuum leaves a table that has settled: its visibility map set, which is
        # what makes an index-only scan of the organization's range look cheap.
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("VACUUM ANALYZE leases")
        finally:
            await conn.close()

    asyncio.run(admin_exec(f'CREATE DATABASE "{name}"'))
    try:
        upgrade(load_settings({"DATABASE_URL": url}))
        big = uuid.uuid4()
        asyncio.run(seed(big))
        yield url, big
    finally:
        asyncio.run(admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _buffers(plan: dict[str, Any]) -> int:
    """Shared buffers the plan's nodes touched (hit or read), its children included."""
    return int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))


def _ledger_buffers(url: str, leases: dict[str, tuple[uuid.UUID, uuid.UUID]]) -> dict[str, int]:
    """Per lease: the buffers its ledger statement touches on one of the app's connections,
    prepared and executed seven times first (past the five custom plans)."""
    compiled = LEDGER.compile(dialect=asyncpg_dialect())
    sql = str(compiled)
    positions = list(compiled.positiontup or ())
    assert sorted(positions) == ["lease_id", "org_id"], positions

    async def run() -> dict[str, int]:
        engine = create_engine(load_settings({"DATABASE_URL": url}))
        try:
            async with engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                assert raw is not None
                touched = {}
                for label, (lease_id, org_id) in leases.items():
                    named = {"lease_id": lease_id, "org_id": org_id}
                    params = [named[p] for p in positions]
                    name = f"ledger_{label}"
                    await raw.execute(f"PREPARE {name} AS {sql}")
                    for _ in range(7):
                        await raw.fetch(f"EXECUTE {name}({_literal(params)})")
                    (explained,) = await raw.fetchrow(
                        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
                        f"EXECUTE {name}({_literal(params)})"
                    )
                    # The app's connections decode json themselves (SQLAlchemy's codec).
                    plans = json.loads(explained) if isinstance(explained, str) else explained
                    touched[label] = _buffers(plans[0]["Plan"])
                return touched
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _literal(params: list[uuid.UUID]) -> str:
    return ", ".join(f"'{p}'::uuid" for p in params)


def _a_lease(url: str, org_id: uuid.UUID | None) -> tuple[uuid.UUID, uuid.UUID]:
    """(lease id, organization id): the big organization's newest lease, or a small one's."""

    async def pick() -> tuple[uuid.UUID, uuid.UUID]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            if org_id is not None:
                row = await conn.fetchrow(
                    "SELECT id, organization_id FROM leases WHERE organization_id = $1"
                    " ORDER BY created_at DESC, id DESC LIMIT 1",
                    org_id,
                )
            else:
                row = await conn.fetchrow(
                    "SELECT l.id, l.organization_id FROM leases l JOIN organizations o"
                    " ON o.id = l.organization_id WHERE o.name LIKE 'Small %' LIMIT 1"
                )
            assert row is not None
            return row["id"], row["organization_id"]
        finally:
            await conn.close()

    return asyncio.run(pick())


def test_a_ledger_costs_the_same_in_a_large_organization(
    skewed: tuple[str, uuid.UUID],
) -> None:
    url, big = skewed
    leases = {"big": _a_lease(url, big), "small": _a_lease(url, None)}
    touched = _ledger_buffers(url, leases)
    # The big lease has 20 entries, the small one 2: a few more heap buffers, never the
    # big organization's whole index range (about 30 buffers at 4,000 leases).
    assert touched["big"] <= touched["small"] + 8, touched


def test_the_apps_connections_plan_each_execution_for_its_parameters(
    skewed: tuple[str, uuid.UUID],
) -> None:
    url, _ = skewed

    async def mode() -> str:
        engine = create_engine(load_settings({"DATABASE_URL": url}))
        try:
            async with engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                assert raw is not None
                return str(await raw.fetchval("SHOW plan_cache_mode"))
        finally:
            await engine.dispose()

    assert asyncio.run(mode()) == "force_custom_plan"
