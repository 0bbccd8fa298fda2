"""The asyncpg fast path of `haven.db.reader.Reader` and of the commit's one statement
(`send_alone`, haven.uow.tail): the one place that compiles a statement once and sends its
SQL straight to the driver.

Why it exists (bench/PROFILE.md, "One list path"): on the properties page SQLAlchemy's
per-execution work (cursor adaptation, result metadata, row objects) costs about 60 %
more CPU than sending the compiled SQL with asyncpg's `fetch()`.

What it relies on, all from SQLAlchemy's compiled statement: the SQL string,
`positiontup` (the order of the positional parameters), `construct_params` and the bind
processors SQLAlchemy's own execution applies (`_bind_processors`). Statements with
parameters rendered at execution time (an expanding `IN`) are left to SQLAlchemy
(`FastPath.prepared` answers None). The engine's `before_cursor_execute` listeners are
called with the SQL and its arguments, so the statement counter
(haven_db_statements_total) and the statement-count tests see every statement.
tests/integration/db/test_fastpath.py checks both paths give the same rows.

The connection comes straight from the engine's pool (`Engine.raw_connection`, in a greenlet
as SQLAlchemy's own checkout runs: the pool's checkout and connect listeners, recycling,
waiting for a free connection and connecting all happen as they do for `engine.connect()`,
and a failure to connect is wrapped as it wraps it)
and goes back to it as soon as the rows are read. No SQLAlchemy `Connection` is built
around it: the statement is sent to the driver anyway, and a `Connection` only added its
isolation-level setup and reset, a task per release and a greenlet hop to reach the
driver (about a quarter of a list page's database time, bench/PROFILE.md "Fourth pass").
The fast path never begins a transaction (asyncpg runs a statement outside one in
autocommit, as the read engine does), so releasing the connection does no I/O; the
listeners therefore get `None` where SQLAlchemy passes its `Connection`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import URL, Dialect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import Executable
from sqlalchemy.util import await_only
from sqlalchemy.util.concurrency import greenlet_spawn

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
    __slots__ = ("_dispatch", "_engine", "_prepared")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dispatch = engine.sync_engine.dispatch
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

    async def fetch(self, prepared: Prepared, params: Mapping[str, Any]) -> list[Any]:
        """The statement's records (tuples of the driver's values), on a pooled connection
        held only while it runs."""
        arguments = prepared.arguments(params)
        pooled = await greenlet_spawn(self._checkout)
        try:
            self._dispatch.before_cursor_execute(None, None, prepared.sql, arguments, None, False)
            records: list[Any] = await pooled.driver_connection.fetch(prepared.sql, *arguments)  # type: ignore[union-attr]
        except BaseException as exc:
            # A connection that broke mid-use (the server restarted or went away, leaving the
            # driver mid-operation) must not go back to the pool for the next request. Either
            # way it is released, and no cancellation may cut that short (as SQLAlchemy's own
            # release on the way out of `engine.connect()`).
            broken = isinstance(exc, _DRIVER_ERRORS) and _broken(exc)
            await _to_completion(self._release(pooled, exc if broken else None))
            if broken:
                raise DependencyUnavailableError(
                    "The database is unavailable; retry shortly"
                ) from exc
            raise  # a wrong statement or argument is a bug (a 500, logged); or a cancellation
        # The statement completed outside any transaction: putting the connection back is a
        # reset with nothing to roll back and a place in the pool's queue, no I/O, so nothing
        # can interrupt it.
        await greenlet_spawn(pooled.close)
        return records

    def _checkout(self) -> PoolProxiedConnection:
        """A pooled connection, as `engine.connect()` checks one out: a driver error while
        connecting (the server down, or not accepting connections) is raised as SQLAlchemy's
        DBAPIError, after the engine's handle_error listeners, so it maps to the same 503."""
        engine = self._engine.sync_engine
        try:
            return engine.raw_connection()
        except engine.dialect.loaded_dbapi.Error as err:
            Connection._handle_dbapi_exception_noconnection(err, engine.dialect, engine)
            raise

    @staticmethod
    async def _release(pooled: PoolProxiedConnection, broken_by: BaseException | None) -> None:
        try:
            if broken_by is not None:
                await greenlet_spawn(pooled.invalidate, broken_by)
        finally:
            await greenlet_spawn(pooled.close)


async def _to_completion(release: Coroutine[Any, Any, None]) -> None:
    """Run `release` to its end even if the caller is cancelled meanwhile, then re-raise that
    cancellation (as SQLAlchemy releases a connection on the way out of `engine.connect()`):
    a release cut short would go on in the background, or never put the connection back."""
    task = asyncio.ensure_future(release)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as err:
            if task.done():
                raise
            cancelled = err
        else:
            break
    if cancelled is not None:
        raise cancelled


_DRIVER_ERRORS = (
    asyncpg.InternalClientError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    OSError,
)

# The commit's one statement (haven.uow.tail), sent alone in autocommit: compiled once per
# statement object (the tail keeps one per shape), bounded like the reads'.
_ALONE: dict[Executable, Prepared] = {}


def send_alone(
    connection: Connection,
    statement: Executable,
    params: Mapping[str, Any],
    raising: Mapping[str, type[Exception]] | None = None,
) -> bool:
    """Send `statement` on `connection`, in autocommit, straight to asyncpg (from SQLAlchemy's
    greenlet, as the recorder's commit runs), skipping SQLAlchemy's per-execution work
    (execution context, parameter processing, cursor adaptation: most of a keyed POST's
    database CPU after the driver's own). Its result is not read: the tail needs none.

    False when nothing was done, for the caller to execute it through SQLAlchemy: another
    driver, PgBouncer mode, a statement with an expanding IN, or a statement the driver or
    the server refused. A statement alone in autocommit is atomic, so a refused one wrote
    nothing, and SQLAlchemy's execution then raises its usual error (a unique key taken, the
    tail's "key taken") on the same connection: one round trip more, only when the
    statement fails. A statement whose outcome the driver does not know (it timed out, the
    connection was lost mid-statement) may have committed: it is not sent again; the
    connection is invalidated and DependencyUnavailableError (503) raised, which a keyed
    request answers with its record if the statement did commit (haven.uow.tx).
    `raising`: SQLSTATEs the caller gives a meaning (the tail's "key taken", a guard's
    "stale"), raised as the exception named, without sending the statement again."""
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
    except Exception as exc:
        if _refused(exc):
            meant = (raising or {}).get(getattr(exc, "sqlstate", None) or "")
            if meant is not None:
                raise meant from None
            return False
        # The statement may have run and committed before the driver gave up on it (its
        # command timeout, or the connection lost after the server's answer): it is never
        # sent again (a count moved twice, or the same rows' keys "taken" by themselves).
        # The connection is left in an unknown state: it does not go back to the pool.
        connection.invalidate(exc)
        raise DependencyUnavailableError("The database is unavailable; retry shortly") from exc
    return True


def _refused(exc: Exception) -> bool:
    """Whether `exc` says the statement wrote nothing: the server answered it with an error
    (alone in autocommit it rolled back whole), or the driver refused its arguments before
    sending it. Not a timeout or a lost connection, whose statement may have run."""
    if isinstance(exc, asyncpg.exceptions._base.DataError):  # an argument it cannot encode
        return True
    # The server's own error for the statement (whatever its text: a constraint's name may
    # say "closed"), not a connection lost or ended around it.
    return isinstance(exc, asyncpg.PostgresError) and not isinstance(
        exc, asyncpg.PostgresConnectionError | asyncpg.FatalPostgresError
    )
