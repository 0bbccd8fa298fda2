"""The asyncpg fast path of `haven.db.reader.Reader`: the one place that compiles a SELECT
once and sends its SQL straight to the driver.

Why it exists (bench/PROFILE.md, "One list path"): on the properties page SQLAlchemy's
per-execution work (cursor adaptation, result metadata, row objects) costs about 60 %
more CPU than sending the compiled SQL with asyncpg's `fetch()`.

What it relies on, all from SQLAlchemy's compiled statement: the SQL string,
`positiontup` (the order of the positional parameters), `construct_params` and each
bind's `bind_processor`. Statements with parameters rendered at execution time
(an expanding `IN`) are left to SQLAlchemy (`FastPath.prepared` answers None). The
engine's `before_cursor_execute` listeners are called with the SQL and its arguments,
so the statement counter (haven_db_statements_total) and the statement-count tests see
every statement. tests/integration/db/test_fastpath.py checks both paths give the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import URL, Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable
from sqlalchemy.util import await_only

from haven.errors import DependencyUnavailableError

if TYPE_CHECKING:
    from haven.db.reader import AnySelect

_PREPARED_LIMIT = 512  # statements are built once per shape; this only bounds misuse


def usable(engine: AsyncEngine) -> bool:
    """asyncpg, and not behind PgBouncer in transaction mode.

    There DATABASE_URL carries prepared_statement_cache_size=0 (docs/troubleshooting.md):
    the driver's own cached prepared statements would not survive a change of server
    connection, so reads keep SQLAlchemy's execution path, which honours that setting.
    """
    return _usable(engine.dialect, engine.url)


def _usable(dialect: Dialect, url: URL) -> bool:
    return dialect.driver == "asyncpg" and url.query.get("prepared_statement_cache_size") != "0"


class Prepared:
    """One statement compiled for asyncpg: its SQL and how to order its parameters."""

    __slots__ = ("_binds", "_compiled", "_processors", "plain", "sql")

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled: Any = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        self._compiled = compiled
        self.sql = compiled.string
        self._binds: Sequence[str] = compiled.positiontup or ()
        # The processors SQLAlchemy's own execution applies (each type's dialect form: a
        # JSON value serialized as the driver's codec expects it).
        self._processors: dict[str, Callable[[Any], Any]] = dict(compiled._bind_processors)
        # Every value is in the caller's parameters: no expanding IN (rendered per
        # execution) and no column default SQLAlchemy computes before executing (an INSERT
        # or UPDATE leaving out a column with a Python-side default).
        self.plain = not (
            any(bind.expanding for bind in compiled.binds.values())
            or compiled.insert_prefetch
            or compiled.update_prefetch
        )

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


class FastPath:
    __slots__ = ("_engine", "_prepared")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # A SELECT hashes by identity: list shapes and view statements are built once.
        self._prepared: dict[AnySelect, Prepared | None] = {}

    def prepared(self, statement: AnySelect) -> Prepared | None:
        """The statement compiled once, or None when it must go through SQLAlchemy."""
        try:
            return self._prepared[statement]
        except KeyError:
            pass
        if len(self._prepared) >= _PREPARED_LIMIT:
            self._prepared.clear()
        expanding = any(bind.expanding for bind in statement.compile().binds.values())
        prepared = None if expanding else Prepared(statement, self._engine.dialect)
        self._prepared[statement] = prepared
        return prepared

    async def fetch(
        self, connection: AsyncConnection, prepared: Prepared, params: Mapping[str, Any]
    ) -> list[Any]:
        """The statement's records (tuples of the driver's values) on `connection`."""
        arguments = prepared.arguments(params)
        raw = await connection.get_raw_connection()
        self._engine.sync_engine.dispatch.before_cursor_execute(
            connection.sync_connection, None, prepared.sql, arguments, None, False
        )
        try:
            records: list[Any] = await raw.driver_connection.fetch(prepared.sql, *arguments)  # type: ignore[union-attr]
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
        return records


# The commit's one statement (haven.uow.tail), sent alone in autocommit: compiled once per
# statement object (the tail keeps one per shape), bounded like the reads'.
_ALONE: dict[Executable, Prepared] = {}


def send_alone(connection: Connection, statement: Executable, params: Mapping[str, Any]) -> bool:
    """Send `statement` on `connection`, in autocommit, straight to asyncpg (from SQLAlchemy's
    greenlet, as the recorder's commit runs), skipping SQLAlchemy's per-execution work
    (execution context, parameter processing, cursor adaptation: most of a keyed POST's
    database CPU after the driver's own). Its result is not read: the tail needs none.

    False when nothing was done, for the caller to execute it through SQLAlchemy: another
    driver, PgBouncer mode, a statement with an expanding IN, or a statement the driver or
    the server refused. A statement alone in autocommit is atomic, so a refused one wrote
    nothing, and SQLAlchemy's execution then raises its usual error (a unique key taken, the
    tail's "key taken") on the same connection, or marks a broken connection invalid: one
    round trip more, only when the statement fails."""
    if not _usable(connection.dialect, connection.engine.url):
        return False
    prepared = _ALONE.get(statement)
    if prepared is None:
        if len(_ALONE) >= _PREPARED_LIMIT:
            _ALONE.clear()
        prepared = _ALONE[statement] = Prepared(statement, connection.dialect)
    if not prepared.plain:
        return False
    arguments = prepared.arguments(params)
    driver: Any = connection.connection.driver_connection
    connection.engine.dispatch.before_cursor_execute(
        connection, None, prepared.sql, arguments, None, False
    )
    try:
        await_only(driver.execute(prepared.sql, *arguments))
    except Exception:
        return False
    return True
