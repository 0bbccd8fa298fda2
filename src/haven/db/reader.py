"""Reads that need no ORM objects: list pages and assembled views such as a ledger.

A safe-method route that only reads rows takes `reader: Reader` instead of the request's
`db: AsyncSession`: no unit of work, no identity map, no session to set up and tear down.
Each statement runs on a pooled connection of its own, which goes back to the pool as
soon as its rows are read. On PostgreSQL the read engine is in autocommit, so that is
the snapshot a statement would get inside a READ COMMITTED transaction anyway; on SQLite
each statement runs in its own deferred transaction.

Rows come back as named tuples with the columns' names (`haven.db.query.plain_rows`),
so the `*_out` functions that build response bodies read them like model objects.

On asyncpg a statement is compiled once (`Prepared`) and its SQL sent straight to the
driver on a connection from the engine's pool (unless behind PgBouncer, see `Reader`):
SQLAlchemy's per-execution work (cursor adaptation, result metadata, row objects) was a
third of the CPU a list page cost. The engine's `before_cursor_execute` listeners (the
statement counter behind haven_db_statements_total, test probes) still hear every
statement. Results are the driver's own values (uuid.UUID subclasses, aware datetimes,
Decimal, date), which is what the column types produce on PostgreSQL anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable, Select

from haven.db.query import PlainRow, plain_rows, row_type
from haven.errors import DependencyUnavailableError

_PREPARED_LIMIT = 512  # statements are built once per shape; this only bounds misuse


class Prepared:
    """One SELECT compiled for asyncpg: its SQL, how to order its parameters, its row type."""

    __slots__ = ("_binds", "_compiled", "_processors", "make", "sql")

    def __init__(self, statement: Select[Any], engine: AsyncEngine) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self._compiled = compiled
        self.sql = compiled.string
        self._binds: Sequence[str] = compiled.positiontup or ()
        self._processors: dict[str, Callable[[Any], Any]] = {}
        for name in self._binds:
            processor = compiled.binds[name].type.bind_processor(dialect)
            if processor is not None:
                self._processors[name] = processor
        self.make = row_type(tuple(statement.selected_columns.keys()))._make

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = self._compiled.construct_params(dict(params))
        processors = self._processors
        return [
            processors[name](values[name]) if name in processors else values[name]
            for name in self._binds
        ]


def _broken(exc: BaseException) -> bool:
    """Whether the driver's connection is unusable, whatever the statement was."""
    if isinstance(exc, asyncpg.InternalClientError | asyncpg.PostgresConnectionError | OSError):
        return True
    text = str(exc)
    return "closed" in text or "in progress" in text


class Reader:
    __slots__ = ("_engine", "_native", "_prepared")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # Behind PgBouncer in transaction mode DATABASE_URL carries
        # prepared_statement_cache_size=0 (docs/troubleshooting.md): the driver's own cached
        # prepared statements would not survive a change of server connection, so reads then
        # keep SQLAlchemy's execution path, which honours that setting.
        self._native = (
            engine.dialect.driver == "asyncpg"
            and engine.url.query.get("prepared_statement_cache_size") != "0"
        )
        self._prepared: dict[Select[Any], Prepared] = {}  # a SELECT hashes by identity

    async def rows(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> list[PlainRow]:
        async with self._engine.connect() as connection:
            if self._native and isinstance(statement, Select):
                return await self._native_rows(connection, statement, params or {})
            return plain_rows(await connection.execute(statement, params))

    async def _native_rows(
        self, connection: AsyncConnection, statement: Select[Any], params: Mapping[str, Any]
    ) -> list[PlainRow]:
        prepared = self._prepared.get(statement)
        if prepared is None:
            if len(self._prepared) >= _PREPARED_LIMIT:
                self._prepared.clear()
            prepared = self._prepared[statement] = Prepared(statement, self._engine)
        arguments = prepared.arguments(params)
        raw = await connection.get_raw_connection()
        self._engine.sync_engine.dispatch.before_cursor_execute(
            connection.sync_connection, None, prepared.sql, arguments, None, False
        )
        try:
            records = await raw.driver_connection.fetch(prepared.sql, *arguments)  # type: ignore[union-attr]
        except (
            asyncpg.InternalClientError,
            asyncpg.InterfaceError,
            asyncpg.PostgresConnectionError,
            OSError,
        ) as exc:
            if not _broken(exc):
                raise  # a wrong statement or argument is a bug: a 500, logged
            # The connection broke mid-use (the server restarted or went away, leaving the
            # driver mid-operation): it must not go back to the pool for the next request.
            await connection.invalidate(exc)
            raise DependencyUnavailableError("The database is unavailable; retry shortly") from exc
        make = prepared.make
        return [make(record) for record in records]
