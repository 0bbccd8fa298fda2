"""Alembic environment: async engine, one transaction, a cross-process lock.

Several instances may run `haven migrate` at the same moment. The whole
upgrade runs in one transaction that first takes a lock (a PostgreSQL
advisory lock; on SQLite the file's write lock via BEGIN IMMEDIATE), and
Alembic reads the current revision only after that, so the second migrator
waits, then finds nothing left to do.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from haven.db.engine import WRITE_OPTION, create_engine
from haven.models import Base

MIGRATION_LOCK_ID = 0x4A5E_0001

config = context.config
settings = config.attributes["settings"]


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=False,
    )
    context.run_migrations()


async def _main() -> None:
    engine = create_engine(settings.with_overrides(db_pool_min=1, db_pool_max=1))
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                await conn.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `haven migrate`")
asyncio.run(_main())
