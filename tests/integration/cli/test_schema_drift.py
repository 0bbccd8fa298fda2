"""The migrations build exactly the schema the models describe (tables, columns, indexes,
constraints), on SQLite and on PostgreSQL: a model change without its migration fails here."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

import haven.models  # noqa: F401 - registers every table on Base.metadata
from conftest import Database
from haven.db.base import Base


def test_migrated_schema_matches_the_models(database: Database) -> None:
    async def differences() -> list[Any]:
        engine = create_async_engine(database.url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
                )
        finally:
            await engine.dispose()

    assert asyncio.run(differences()) == []
