"""Reads that need no ORM objects: list pages and assembled views such as a ledger.

A safe-method route that only reads rows takes `reader: Reader` instead of the request's
`db: AsyncSession`: no unit of work, no identity map, no session to set up and tear down.
Each statement runs on a pooled connection of its own, which goes back to the pool as
soon as its rows are read. On PostgreSQL the read engine is in autocommit, so that is
the snapshot a statement would get inside a READ COMMITTED transaction anyway; on SQLite
each statement runs in its own deferred transaction.

A write reads through it too when what it checks needs no lock (does the property exist
in this organization, what is the organization's time zone, the feed's top), and before
its unit of work has sent anything: the write's transaction then does not begin for a
plain SELECT (under READ COMMITTED that SELECT takes its own snapshot inside a transaction
too, and a foreign key still checks existence when the row is written), and a write never
holds its connection while it waits for the pool to lend the read another. Its new row,
added with `add_new`, is then the one statement of its commit (haven.uow.recorder). A read
that must see the write's own uncommitted rows, or one made after the write began, runs
inside its session: `Reader.inside(session)`. A read that locks (FOR UPDATE) is no check
read: it belongs in the write's transaction, through the session.

Rows come back typed: the caller names a `typing.NamedTuple` whose fields are the
statement's columns, in order (`Reader.rows(statement, params, PropertyRow)`), so the
`*_out` functions that build response bodies are checked against real column types.
SQLAlchemy's own `Row` resolves names through its key map on every access (about ten
times the cost of a tuple index); a list page reads a dozen attributes of 50 rows.

On asyncpg the SELECT goes through `haven.db.fastpath` (compiled once, sent with the
driver's `fetch()`); elsewhere, or for a statement it cannot take, through SQLAlchemy's
`execute`. Results are the driver's own values either way (uuid.UUID subclasses, aware
datetimes, Decimal, date), which is what the column types produce on PostgreSQL anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, TypeAlias, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql import Select

from haven.db import fastpath

AnySelect: TypeAlias = Select[*tuple[Any, ...]]  # a SELECT of any columns
R = TypeVar("R", bound=NamedTuple)  # a row type: a NamedTuple class named after its columns


class Reader:
    __slots__ = ("_engine", "_fast", "_session")

    def __init__(self, engine: AsyncEngine, *, fast_path: bool = True) -> None:
        """`fast_path=False` keeps SQLAlchemy's execution everywhere (bench/list_path.py)."""
        self._engine = engine
        self._session: AsyncSession | None = None
        self._fast = fastpath.FastPath(engine) if fast_path and fastpath.usable(engine) else None

    @classmethod
    def inside(cls, session: AsyncSession) -> Reader:
        """A Reader whose statements run in `session`'s transaction: for a check made after
        the write began (a PATCH that read its row first) or in a script's one transaction
        (the demo data, which checks rows it has not committed yet)."""
        reader = cls.__new__(cls)
        reader._session, reader._fast = session, None
        return reader

    @property
    def fast(self) -> bool:
        return self._fast is not None

    async def rows(self, statement: AnySelect, params: Mapping[str, Any], row: type[R]) -> list[R]:
        """The statement's rows as `row` tuples (its columns must be `row`'s fields, in order)."""
        make = row._make
        if self._session is not None:
            return [make(record) for record in await self._session.execute(statement, dict(params))]
        fast = self._fast
        if fast is not None and (prepared := fast.prepared(statement)) is not None:
            return [make(record) for record in await fast.fetch(prepared, params)]
        async with self._engine.connect() as connection:
            result = await connection.execute(statement, dict(params))
            return [make(record) for record in result]

    async def first(
        self, statement: AnySelect, params: Mapping[str, Any], row: type[R]
    ) -> R | None:
        """The statement's first row as a `row` tuple, or None: a check read (see above)."""
        rows = await self.rows(statement, params, row)
        return rows[0] if rows else None
