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
from sqlalchemy import (
    Column,
    Float,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from conftest import Database
from haven.audit.service import EMAILS, _Email
from haven.config import Settings
from haven.db.engine import create_engine, read_only_engine
from haven.db.fastpath import send_alone
from haven.db.reader import Reader
from haven.errors import map_exception
from haven.properties.service import LIST
from haven.services import services_of
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


def test_a_keyed_post_sends_its_one_statement_to_the_driver(
    client: TestClient[Any], owner: Account, database: Database
) -> None:
    """A POST whose commit is one statement alone (a tenant) sends it straight to asyncpg on
    PostgreSQL: the engine's listeners hear it (the statement counter counts it), SQLAlchemy's
    own execution does not run for it, and the write is whole: the row, its audit row and
    the key's record, the answer equal to a GET and a resend replayed."""
    engine = services_of(client.app).engine.sync_engine
    before: list[str] = []
    after: list[str] = []

    def heard_before(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        before.append(statement)

    def heard_after(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        after.append(statement)

    event.listen(engine, "before_cursor_execute", heard_before)
    event.listen(engine, "after_cursor_execute", heard_after)
    key = {**owner.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    body = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"}
    try:
        created = client.post("/api/v1/tenants", headers=key, json=body)
    finally:
        event.remove(engine, "before_cursor_execute", heard_before)
        event.remove(engine, "after_cursor_execute", heard_after)
    assert created.status_code == 201, created.text
    tails = [s for s in before if "idempotency_records" in s]
    assert len(tails) == 1
    assert (tails[0] in after) is (database.backend == "sqlite")
    shown = client.get(f"/api/v1/tenants/{created.json()['id']}", headers=owner.headers)
    assert shown.json() == created.json()
    again = client.post("/api/v1/tenants", headers=key, json=body)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == created.json()
    trail = client.get(
        "/api/v1/audit-events",
        headers=owner.headers,
        params={"entityId": created.json()["id"]},
    )
    assert [e["action"] for e in trail.json()["items"]] == ["tenant.created"]


def test_a_statement_the_server_refuses_is_left_to_sqlalchemy(
    database: Database, settings_factory: Callable[..., Settings]
) -> None:
    """`send_alone` answers False for a statement PostgreSQL refuses (nothing was written: a
    statement alone in autocommit is atomic), and SQLAlchemy's execution of it on the same
    connection then raises its usual error; a good one it sends and answers True. A statement
    leaving a column to a Python-side default (SQLAlchemy computes it before executing) is
    not the fast path's: False, nothing sent."""
    if database.backend != "postgresql":
        pytest.skip("the driver fast path is asyncpg's")
    settings = settings_factory()
    probe = Table(
        f"haven_probe_{uuid.uuid4().hex[:8]}",
        MetaData(),
        Column("id", Uuid, primary_key=True),
        Column("name", String(50), nullable=False),
        Column("note", String(50), default=lambda: "set by SQLAlchemy"),
    )
    bound = insert(probe).values(
        id=bindparam("id", type_=Uuid()),
        name=bindparam("name", type_=String()),
        note=bindparam("note", type_=String()),
    )
    defaulted = insert(probe).values(id=bindparam("id", type_=Uuid()), name=bindparam("name"))
    row = uuid.uuid4()

    async def run() -> tuple[tuple[bool, bool, str, bool], list[Any]]:
        engine = create_engine(settings)
        try:
            async with engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await auto.run_sync(probe.create)

                def calls(sync: Any) -> tuple[bool, bool, str, bool]:
                    sent = send_alone(sync, bound, {"id": row, "name": "a", "note": "b"})
                    again = {"id": row, "name": "again", "note": "c"}
                    refused = send_alone(sync, bound, again)
                    try:
                        sync.execute(bound, again)
                        error = "no error"
                    except IntegrityError as exc:
                        error = type(exc).__name__
                    left = send_alone(sync, defaulted, {"id": uuid.uuid4(), "name": "d"})
                    return sent, refused, error, left

                answers = await auto.run_sync(calls)
                rows = list(await auto.execute(select(probe.c.id, probe.c.name, probe.c.note)))
                await auto.run_sync(probe.drop)
                return answers, rows
        finally:
            await engine.dispose()

    answers, rows = asyncio.run(run())
    assert answers == (True, False, "IntegrityError", False)
    assert [tuple(r) for r in rows] == [(row, "a", "b")]


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


class _SlowReplies:
    """A TCP relay between the driver and PostgreSQL whose next reply can be held back for a
    while (a network that stalls once): the server runs and commits what it is sent at once,
    the driver hears of it only later."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.delay = 0.0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(self.host, self.port)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter, held: bool) -> None:
            try:
                while data := await r.read(65536):
                    if held and self.delay:  # one stall: this answer only
                        delay, self.delay = self.delay, 0.0
                        await asyncio.sleep(delay)
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(client_r, server_w, False), pipe(server_r, client_w, True))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


def test_a_statement_the_server_ran_is_never_sent_again(
    database: Database, settings_factory: Callable[..., Settings]
) -> None:
    """The commit's one statement sent alone (haven.uow.tail.write) whose answer the driver
    did not get in time (its command timeout, over a slow network) may have run and
    committed: it is not sent a second time through SQLAlchemy. Only a statement the server
    refused (nothing written) is. A queued change (add_change: an UPDATE moving a count by
    one, such as a property's unit count) sent twice would move it twice."""
    if database.backend != "postgresql":
        pytest.skip("the driver fast path is asyncpg's")
    from sqlalchemy import Integer, update
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from haven.uow import tail

    url = make_url(settings_factory().database_url)
    counts = Table(
        f"haven_counts_{uuid.uuid4().hex[:8]}",
        MetaData(),
        Column("id", Uuid, primary_key=True),
        Column("n", Integer, nullable=False),
    )
    bump = (
        update(counts)
        .where(counts.c.id == bindparam("count_id", type_=Uuid()))
        .values(n=counts.c.n + bindparam("count_by", type_=Integer()))
    )
    row = uuid.uuid4()

    async def run() -> tuple[tuple[str, bool], list[Any]]:
        relay = _SlowReplies(url.host or "127.0.0.1", url.port or 5432)
        port = await relay.start()
        engine = create_async_engine(
            url.set(host="127.0.0.1", port=port), connect_args={"command_timeout": 0.5}
        )
        try:
            async with engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await auto.run_sync(counts.create)
                await auto.execute(insert(counts).values(id=row, n=0))

                def commit(sync: Any) -> tuple[str, bool]:
                    # Once on time (the driver has it prepared, as it has a tail's shape after
                    # its first request), then over the slow network.
                    tail.write(
                        sync,
                        [],
                        {},
                        None,
                        [],
                        [(bump, {"count_id": row, "count_by": 0})],
                        alone=True,
                    )
                    relay.delay = 0.8  # the statement runs now; its answer comes in 0.8 s
                    try:
                        tail.write(
                            sync,
                            [],
                            {},
                            None,
                            [],
                            [(bump, {"count_id": row, "count_by": 1})],
                            alone=True,
                        )
                        return "no error", sync.invalidated
                    except Exception as exc:
                        return type(exc).__name__, sync.invalidated
                    finally:
                        relay.delay = 0.0

                outcome = await auto.run_sync(commit)
            await asyncio.sleep(1.5)  # every held answer arrived
            async with engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                rows = [tuple(r) for r in await auto.execute(select(counts.c.n))]
                await auto.run_sync(counts.drop)
            return outcome, rows
        finally:
            await engine.dispose()
            await relay.stop()

    outcome, rows = asyncio.run(run())
    assert rows == [(1,)], f"the count moved {rows[0][0]} times ({outcome})"
    # The driver never heard it ran: the database's 503 (a keyed request answers with its
    # record if it did), the connection not put back for the next request.
    assert outcome == ("DependencyUnavailableError", True), outcome
