"""`haven jobs purge-events`: old events go as a prefix of each feed; readers then get 410."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import update

from conftest import Database
from haven.config import load_settings
from haven.db.base import utcnow
from haven.db.engine import create_engine
from haven.models import Event
from support import Account, assert_problem, create_tenant
from support_cluster import clean_env
from support_events import read_all


async def _age_all(url: str, organization_id: uuid.UUID, days: int) -> None:
    engine = create_engine(load_settings({"DATABASE_URL": url}))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(Event)
                .where(Event.organization_id == organization_id)
                .values(occurred_at=utcnow() - timedelta(days=days))
            )
    finally:
        await engine.dispose()


def test_purge_events_command(client: TestClient[Any], owner: Account, database: Database) -> None:
    create_tenant(client, owner)
    before, head = read_all(client, owner)
    asyncio.run(_age_all(database.url, uuid.UUID(owner.organization_id), 10))
    env = clean_env(HAVEN_ENV="test", DATABASE_URL=database.url, EVENT_RETENTION_DAYS="7")
    result = subprocess.run(
        [sys.executable, "-m", "haven", "jobs", "purge-events"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "purged" in result.stdout
    assert_problem(
        client.get("/api/v1/events", headers=owner.headers, params={"after": "1"}),
        410,
        "cursor-expired",
    )
    # The consumer that had read everything keeps going; new events follow on.
    tenant = create_tenant(client, owner)
    after, _ = read_all(client, owner, head)
    assert [e["resourceId"] for e in after] == [tenant["id"]]
    assert after[0]["position"] == before[-1]["position"] + 1
    everything, _ = read_all(client, owner)
    assert everything == after
