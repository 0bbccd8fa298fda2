"""Reads that need no ORM objects: list pages and assembled views such as a ledger.

A safe-method route that only reads rows takes `reader: Reader` instead of the request's
`db: AsyncSession`: no unit of work, no identity map, no session to set up and tear down.
Each statement runs on a pooled connection of its own, which goes back to the pool as
soon as its rows are read. On PostgreSQL the read engine is in autocommit, so that is
the snapshot a statement would get inside a READ COMMITTED transaction anyway; on SQLite
each statement runs in its own deferred transaction.

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

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Select

from haven.db import fastpath

AnySelect: TypeAlias = Select[*tuple[Any, ...]]  # a SELECT of any columns
R = TypeVar("R", bound=NamedTuple)  # a row type: a NamedTuple class named after its columns


class Reader:
    __slots__ = ("_engine", "_fast")

    def __init__(self, engine: AsyncEngine, *, fast_path: bool = True) -> None:
        """`fast_path=False` keeps SQLAlchemy's execution everywhere (bench/list_path.py)."""
        self._engine = engine
        self._fast = fastpath.FastPath(engine) if fast_path and fastpath.usable(engine) else None

    @property
    def fast(self) -> bool:
        return self._fast is not None

    async def rows(self, statement: AnySelect, params: Mapping[str, Any], row: type[R]) -> list[R]:
        """The statement's rows as `row` tuples (its columns must be `row`'s fields, in order)."""
        make = row._make
        async with self._engine.connect() as connection:
            fast = self._fast
            prepared = fast.prepared(statement) if fast is not None else None
            if fast is not None and prepared is not None:
                records = await fast.fetch(connection, prepared, params)
                return [make(record) for record in records]
            result = await connection.execute(statement, dict(params))
            return [make(record) for record in result]
