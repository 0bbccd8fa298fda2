"""The asyncpg fast path (haven.db.fastpath) against SQLAlchemy's execute: same rows for
every list shape, the statement counter hears it, and what it cannot take falls back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import event

from conftest import Database
from haven.audit.service import EMAILS, _Email
from haven.config import Settings
from haven.db.engine import create_engine, read_only_engine
from haven.db.reader import Reader
from haven.properties.service import LIST
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
