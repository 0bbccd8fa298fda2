"""The asyncpg fast path (haven.db.fastpath) against SQLAlchemy's execute: same rows for
every list shape, the statement counter hears it, and what it cannot take falls back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import asyncpg
import pytest
from litestar.testing import TestClient
from sqlalchemy import Float, bindparam, event, func, select

from conftest import Database
from haven.audit.service import EMAILS, _Email
from haven.config import Settings
from haven.db.engine import create_engine, read_only_engine
from haven.db.reader import Reader
from haven.errors import map_exception
from haven.properties.service import LIST
from support import Account, create_property


def test_fast_path_reads_what_sqlalchemy_reads(
    client: TestClient[Any],
    owner: Account,
    database: Database,
    settings_factory: Callable[..., Settings],
) -> None:
    for name in ("100% Oak", "Under_score Hall", "Plain House", "Corner Shop"):
        create_property(client, owner, name=name)
    settings = settings_factory()
    shapes: list[dict[str, Any]] = [
        {"sort": None},
        {"sort": "-createdAt"},
        {"sort": "name", "search": "%"},
        {"sort": "name", "search": "_"},
        {"sort": "name", "type": "residential"},
    ]

    async def run() -> tuple[bool, list[Any], list[Any], list[str], list[Any]]:
        engine = read_only_engine(create_engine(settings), settings)
        heard: list[str] = []

        def hear(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
            heard.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", hear)
        fast, slow = Reader(engine), Reader(engine, fast_path=False)
        try:
            pages: dict[Reader, list[Any]] = {fast: [], slow: []}
            for reader, out in pages.items():
                for shape in shapes:
                    first = await LIST.page(reader, owner_org, limit=2, cursor=None, **shape)
                    out.append((first.items, first.next_cursor))
                    if first.next_cursor:
                        rest = await LIST.page(
                            reader, owner_org, limit=2, cursor=first.next_cursor, **shape
                        )
                        out.append((rest.items, rest.next_cursor))
            emails = await fast.rows(EMAILS, {"ids": [owner_user]}, _Email)
            return fast.fast, pages[fast], pages[slow], heard, emails
        finally:
            await engine.dispose()

    owner_org = uuid.UUID(owner.organization_id)
    owner_user = uuid.UUID(owner.user_id)
    used_fast, fast_pages, slow_pages, heard, emails = asyncio.run(run())
    assert used_fast is (database.backend == "postgresql")
    assert fast_pages == slow_pages
    names = [[row.name for row in items] for items, _ in fast_pages]
    assert ["100% Oak"] in names  # search "%" matched the literal percent sign only
    assert ["Under_score Hall"] in names
    # Every page statement was heard by the engine's listeners, on both paths.
    selects = [s for s in heard if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2 * len(fast_pages) + 1
    # An expanding IN is not the fast path's: it falls back to SQLAlchemy and still works.
    assert [row.email for row in emails] == [owner.email]


class _Pid(NamedTuple):
    pid: int


class _Slept(NamedTuple):
    slept: Any


_PID = select(func.pg_backend_pid().label("pid"))
_SLEEP = select(func.pg_sleep(bindparam("seconds", type_=Float)).label("slept"))


def test_fast_path_gives_its_connection_back_whatever_happens(
    database: Database, settings_factory: Callable[..., Settings]
) -> None:
    """The fast path takes a connection from the engine's pool for one statement and puts it
    back after a read, after a read cancelled mid-statement (the next read on it waits for
    the cancellation and succeeds) and after the server ended the backend mid-statement
    (an error, and the next read runs on a new backend); the pool's checkout listener
    still drops a connection the server closed while it sat idle."""
    if database.backend != "postgresql":
        pytest.skip("the fast path is asyncpg's")
    settings = settings_factory(db_pool_min=1, db_pool_max=1)
    admin_dsn = database.url.replace("postgresql+asyncpg://", "postgresql://")

    async def terminate(sleeping: bool) -> int:
        admin = await asyncpg.connect(admin_dsn)
        try:
            killed: int = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1 AND (NOT $2 OR query LIKE '%pg_sleep%')",
                f"haven:{settings.instance_id}",
                sleeping,
            )
        finally:
            await admin.close()
        return killed

    async def run() -> dict[str, Any]:
        engine = read_only_engine(create_engine(settings), settings)
        pool: Any = engine.sync_engine.pool
        reader = Reader(engine)
        seen: dict[str, Any] = {"fast": reader.fast}
        try:
            first = (await reader.rows(_PID, {}, _Pid))[0].pid
            seen["after a read"] = pool.checkedout()

            cancelled = asyncio.ensure_future(reader.rows(_SLEEP, {"seconds": 30}, _Slept))
            await asyncio.sleep(0.3)
            cancelled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            seen["after a cancelled read"] = pool.checkedout()
            seen["same backend after the cancel"] = (await reader.rows(_PID, {}, _Pid))[
                0
            ].pid == first

            ended = asyncio.ensure_future(reader.rows(_SLEEP, {"seconds": 30}, _Slept))
            await asyncio.sleep(0.3)
            seen["killed mid-statement"] = await terminate(sleeping=True)
            with pytest.raises(Exception) as failed:  # an outage, however it is reported
                await ended
            seen["outage"] = map_exception(failed.value).status
            seen["after a failed read"] = pool.checkedout()
            second = (await reader.rows(_PID, {}, _Pid))[0].pid
            seen["new backend after the failure"] = second != first

            seen["killed while idle"] = await terminate(sleeping=False)
            await asyncio.sleep(0.2)  # the event loop reads the closed socket's EOF
            seen["new backend after an idle kill"] = (await reader.rows(_PID, {}, _Pid))[
                0
            ].pid not in (first, second)
            seen["at the end"] = pool.checkedout()
            return seen
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == {
        "fast": True,
        "after a read": 0,
        "after a cancelled read": 0,
        "same backend after the cancel": True,
        "killed mid-statement": 1,
        "outage": 503,
        "after a failed read": 0,
        "new backend after the failure": True,
        "killed while idle": 1,
        "new backend after an idle kill": True,
        "at the end": 0,
    }
