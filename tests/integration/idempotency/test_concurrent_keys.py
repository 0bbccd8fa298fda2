"""Two requests with one Idempotency-Key that both get past the Redis marker (it expired
while the first was still running): the database record lets only one commit.

The key's record is not looked up before the handler (haven.uow.tx); its INSERT in the
commit's statement finds the key taken, and the second request then replays the first's
answer. A trigger makes both writes slow (pg_sleep on a tenant's INSERT), so they overlap.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import pytest
import redis as redis_sync
from litestar.testing import TestClient

from haven.store.idempotency import cache_scope_of
from support import Account

SLOW = "SlowToCommit"

TRIGGER = f"""
CREATE OR REPLACE FUNCTION haven_test_slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.last_name = '{SLOW}' THEN
    PERFORM pg_sleep(1.5);
  END IF;
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS haven_test_slow_insert ON tenants;
CREATE TRIGGER haven_test_slow_insert AFTER INSERT ON tenants
  FOR EACH ROW EXECUTE FUNCTION haven_test_slow_insert();
"""
DROP = """
DROP TRIGGER IF EXISTS haven_test_slow_insert ON tenants;
DROP FUNCTION IF EXISTS haven_test_slow_insert();
"""


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def test_two_requests_past_an_expired_marker_commit_one_write(
    database: Any,
    client: TestClient[Any],
    client_b: TestClient[Any],
    owner: Account,
    valkey: Any,
) -> None:
    if database.backend != "postgresql":
        pytest.skip("two writes overlapping needs PostgreSQL (SQLite runs one at a time)")
    key = uuid.uuid4().hex
    headers = {**owner.headers, "Idempotency-Key": key}
    body = {"firstName": "Ada", "lastName": SLOW}
    scope = cache_scope_of(owner.organization_id, owner.user_id, "POST", "/api/v1/tenants", key)
    marker = f"haven:idem:{scope}:inflight"
    conn = redis_sync.Redis.from_url(valkey.url)
    asyncio.run(_execute(database.url, TRIGGER))
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(client.post, "/api/v1/tenants", headers=headers, json=body)
            deadline = time.monotonic() + 10
            while not conn.exists(marker):  # the first request holds the key
                assert time.monotonic() < deadline, "the first request never claimed its key"
                time.sleep(0.01)
            conn.delete(marker)  # as if it had expired
            second = client_b.post("/api/v1/tenants", headers=headers, json=body)
            answers = [first.result(timeout=30), second]
    finally:
        conn.close()
        asyncio.run(_execute(database.url, DROP))
    for answer in answers:
        assert answer.status_code == 201, answer.text
    assert answers[0].json() == answers[1].json()
    # Which of the two commits depends on which statement reaches the key's row first
    # (under load the second request's may); exactly one writes, the other replays it.
    assert sorted("idempotent-replayed" in a.headers for a in answers) == [False, True]
    listed = client.get("/api/v1/tenants", headers=owner.headers, params={"limit": 100}).json()
    assert [t["id"] for t in listed["items"] if t["lastName"] == SLOW] == [answers[0].json()["id"]]
