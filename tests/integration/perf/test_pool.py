"""The PostgreSQL pool: connections are reused under steady concurrency, warmed at start,
and a connection the server closed while idle is replaced without failing a request.

Real PostgreSQL backends are observed through pg_backend_pid() and pg_terminate_backend().
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from conftest import Database
from haven.config import Settings
from haven.db.engine import create_engine, read_only_engine, warm_pool


def _postgres(database: Database) -> None:
    if database.backend != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's (SQLite opens its file per connection)")


def _admin_dsn(database: Database) -> str:
    return database.url.replace("postgresql+asyncpg://", "postgresql://")


async def _backend_pid(engine: Any, hold: float = 0.0) -> int:
    async with engine.connect() as connection:
        pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await asyncio.sleep(hold)
        return int(pid)


def test_busy_pool_reuses_its_connections(
    database: Database, settings_factory: Callable[..., Settings]
) -> None:
    """Six requests at a time with DB_POOL_MIN=2, DB_POOL_MAX=6, for five rounds: the same
    six PostgreSQL backends serve every round (before, connections above the minimum were
    closed on return and a new backend was started for the next busy request)."""
    _postgres(database)
    settings = settings_factory(db_pool_min=2, db_pool_max=6)

    async def run() -> list[set[int]]:
        engine = read_only_engine(create_engine(settings), settings)
        try:
            rounds = []
            for _ in range(5):
                pids = await asyncio.gather(*(_backend_pid(engine, hold=0.05) for _ in range(6)))
                rounds.append(set(pids))
            return rounds
        finally:
            await engine.dispose()

    rounds = asyncio.run(run())
    assert all(len(pids) == 6 for pids in rounds), rounds  # six at once really were concurrent
    assert set().union(*rounds) == rounds[0], rounds  # and no backend was ever replaced


def test_warm_pool_opens_the_minimum_at_start(
    database: Database, settings_factory: Callable[..., Settings]
) -> None:
    _postgres(database)
    settings = settings_factory(db_pool_min=3, db_pool_max=6)

    async def run() -> tuple[int, int]:
        engine = create_engine(settings)
        try:
            await warm_pool(engine, settings.db_pool_min)
            admin = await asyncpg.connect(_admin_dsn(database))
            try:
                backends = await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                    f"haven:{settings.instance_id}",
                )
            finally:
                await admin.close()
            return engine.sync_engine.pool.checkedin(), int(backends)  # type: ignore[attr-defined]
        finally:
            await engine.dispose()

    idle_in_pool, backends = asyncio.run(run())
    assert idle_in_pool == 3
    assert backends == 3


def test_idle_connection_closed_by_the_server_is_replaced_without_an_error(
    database: Database, settings_factory: Callable[..., Settings]
) -> None:
    """pg_terminate_backend (as in a failover or an idle timeout) on every pooled connection:
    the next reads succeed on new backends, with no pre-ping round trip per checkout."""
    _postgres(database)
    settings = settings_factory(db_pool_min=3, db_pool_max=3)

    async def run() -> tuple[set[int], set[int]]:
        engine = read_only_engine(create_engine(settings), settings)
        try:
            before = set(await asyncio.gather(*(_backend_pid(engine, hold=0.05) for _ in range(3))))
            admin = await asyncpg.connect(_admin_dsn(database))
            try:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = $1",
                    f"haven:{settings.instance_id}",
                )
            finally:
                await admin.close()
            assert killed == 3
            await asyncio.sleep(0.2)  # the event loop reads each closed socket's EOF
            after = set(await asyncio.gather(*(_backend_pid(engine) for _ in range(3))))
            return before, after
        finally:
            await engine.dispose()

    before, after = asyncio.run(run())
    assert len(before) == 3
    assert after
    assert not after & before, "a connection the server closed was handed out again"
