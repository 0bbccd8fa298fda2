"""Engine construction for PostgreSQL (asyncpg) and the embedded SQLite default."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from haven.config import Settings

log = structlog.get_logger("haven.db")

# Execution option a write transaction sets; on SQLite it turns BEGIN into BEGIN IMMEDIATE.
WRITE_OPTION = "haven_write"


def sqlite_path(url: str) -> Path | None:
    """The file behind a sqlite URL, or None for an in-memory database."""
    _, _, path = url.partition(":///")
    if not path or path.startswith(":memory:"):
        return None
    return Path(path.split("?", 1)[0])


def behind_pgbouncer(url: str) -> bool:
    """DATABASE_URL carries `prepared_statement_cache_size=0`: the PgBouncer switch."""
    return "prepared_statement_cache_size=0" in url.partition("?")[2].split("&")


def _unique_statement_name() -> str:
    return f"__haven_{uuid.uuid4().hex}__"


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        return _sqlite_engine(settings.database_url)
    return _postgres_engine(settings)


def _postgres_engine(settings: Settings) -> AsyncEngine:
    connect_args: dict[str, Any] = {
        "timeout": 5,
        "command_timeout": 30,
        "server_settings": {"application_name": f"haven:{settings.instance_id}"[:63]},
    }
    if behind_pgbouncer(settings.database_url):
        # PgBouncer in transaction mode (1.18-1.20 have no protocol-level prepared
        # statements) hands each transaction any server connection. SQLAlchemy still
        # prepares every statement (to learn its result columns): a unique name per
        # statement never collides with one another client left on that server
        # connection, and asyncpg's own cache off makes it re-prepare, not reuse.
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unique_statement_name
    # The pool keeps every connection it opened, up to DB_POOL_MAX. An "overflow" above a
    # smaller pool_size would be closed on return and reopened by the next busy request: a
    # new PostgreSQL backend (fork, authentication) per request under steady concurrency.
    # DB_POOL_MIN connections are opened at start (warm_pool). Last in, first out: requests
    # one after another reuse the same connection and its prepared statements, instead of
    # preparing each statement again on every connection in turn (each one's cache holds a
    # billing run's statements of hundreds of parameters; bench/RESULTS-memory.md).
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_max,
        max_overflow=0,
        pool_recycle=1800,
        pool_use_lifo=True,
        pool_timeout=10,
        connect_args=connect_args,
    )

    if not behind_pgbouncer(settings.database_url):

        @event.listens_for(engine.sync_engine, "connect")
        def _plan_for_the_parameters(dbapi_connection: Any, _record: Any) -> None:
            # Plan every execution of a prepared statement for its own parameters. After
            # five executions PostgreSQL may keep a generic plan, priced for the average
            # organization; organizations are skewed (one with 100,000 leases among many
            # with ten), and for a lookup by id that plan can walk the large organization's
            # whole `(organization_id, created_at, id)` index range
            # (tests/integration/scale/test_flat_plans.py). A SET once per new connection,
            # not a startup parameter, which poolers may refuse. Behind PgBouncer in
            # transaction mode every statement is prepared afresh and executed once, so it
            # is planned for its parameters anyway (and a SET would not stick).
            dbapi_connection.run_async(
                lambda conn: conn.execute("SET plan_cache_mode = force_custom_plan")
            )

    @event.listens_for(engine.sync_engine, "checkout")
    def _drop_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # Instead of pool_pre_ping, which costs three round trips per checkout on asyncpg
        # (BEGIN, ping, ROLLBACK): when the server ends a session (pg_terminate_backend, a
        # restart, idle_session_timeout) it closes the socket, and asyncpg marks the
        # connection closed as soon as the event loop reads the EOF. The pool then discards it
        # and connects afresh, so an idle pooled connection never fails a request. A statement
        # that meets a disconnect mid-flight invalidates the whole pool (SQLAlchemy's default).
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("PostgreSQL closed this pooled connection")

    return engine


async def warm_pool(engine: AsyncEngine, count: int) -> None:
    """Open `count` pooled connections now, so the first requests do not pay for connecting.

    Best effort: a database that is down at start is reported by /ready, not by a crash.
    """
    connections = []
    try:
        for _ in range(count):
            connections.append(await engine.connect())  # noqa: PERF401 - close all on failure
    except Exception as exc:
        log.warning("db_pool_warm_up_failed", opened=len(connections), error=repr(exc))
    finally:
        for connection in connections:
            await connection.close()


def _sqlite_engine(url: str) -> AsyncEngine:
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Several processes share the file: a deferred transaction that later upgrades
        # to a write lock fails with "database is locked", so writers lock up front.
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def read_only_engine(engine: AsyncEngine, settings: Settings) -> AsyncEngine:
    """The engine safe-method requests read through.

    On PostgreSQL it runs in autocommit: no BEGIN and ROLLBACK round trips around a read.
    Nothing is lost: under READ COMMITTED (the default) each statement takes its own snapshot
    inside a transaction too, and a read request never writes. SQLite keeps its BEGIN.
    Behind PgBouncer in transaction mode reads keep their transaction too: outside one,
    PgBouncer may send a statement's execution to another server connection than the one
    it was prepared on ("prepared statement ... does not exist").
    """
    if settings.is_sqlite or behind_pgbouncer(settings.database_url):
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")
