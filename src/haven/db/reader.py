"""Reads that need no ORM objects: list pages and assembled views such as a ledger.

A safe-method route that only reads rows takes `reader: Reader` instead of the request's
`db: AsyncSession`: no unit of work, no identity map, no session to set up and tear down.
Each statement runs on a pooled connection of its own, which goes back to the pool as
soon as its rows are read. On PostgreSQL the read engine is in autocommit, so that is
the snapshot a statement would get inside a READ COMMITTED transaction anyway; on SQLite
each statement runs in its own deferred transaction.

Rows come back as named tuples with the columns' names (`haven.db.query.plain_rows`),
so the `*_out` functions that build response bodies read them like model objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable

from haven.db.query import PlainRow, plain_rows


class Reader:
    __slots__ = ("_engine",)

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def rows(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> list[PlainRow]:
        async with self._engine.connect() as connection:
            return plain_rows(await connection.execute(statement, params))


def provide_reader(state: State) -> Reader:
    reader: Reader = state.reader
    return reader
