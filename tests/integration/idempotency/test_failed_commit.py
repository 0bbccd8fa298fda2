"""A write whose COMMIT fails after the handler answered: the client gets the error, not a 500.

The unit of work holds the handler's answer until the commit (haven.uow.http.write_boundary).
Here PostgreSQL itself refuses the COMMIT: a deferred constraint trigger raises, at commit
time, the SQLSTATE of a server going away (57P01), as when the connection is cut between the
handler's flush and the commit (tests/e2e/test_faults.py::test_postgres_connection_loss_recovers
meets it by chance; this meets it every time).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from litestar.testing import TestClient

from support import Account, assert_problem

REFUSED = "RefusedAtCommit"

TRIGGER = f"""
CREATE OR REPLACE FUNCTION haven_test_refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.last_name = '{REFUSED}' THEN
    RAISE EXCEPTION 'the database went away at commit (test)' USING ERRCODE = '57P01';
  END IF;
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS haven_test_refuse_commit ON tenants;
CREATE CONSTRAINT TRIGGER haven_test_refuse_commit AFTER INSERT ON tenants
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION haven_test_refuse_commit();
"""
DROP = """
DROP TRIGGER IF EXISTS haven_test_refuse_commit ON tenants;
DROP FUNCTION IF EXISTS haven_test_refuse_commit();
"""


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _last_names(client: TestClient[Any], owner: Account) -> list[str]:
    listed = client.get("/api/v1/tenants", headers=owner.headers, params={"limit": 100})
    assert listed.status_code == 200, listed.text
    return [t["lastName"] for t in listed.json()["items"]]


def test_a_commit_the_database_refuses_is_a_503_and_leaves_nothing(
    database: Any, client: TestClient[Any], owner: Account
) -> None:
    if database.backend != "postgresql":
        pytest.skip("a deferred constraint trigger is PostgreSQL's (SQLite has none)")
    asyncio.run(_execute(database.url, TRIGGER))
    try:
        key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        body = {"firstName": "Ada", "lastName": REFUSED}
        refused = client.post("/api/v1/tenants", headers={**owner.headers, **key}, json=body)
        assert_problem(refused, 503)
        assert REFUSED not in _last_names(client, owner)
        # The instance goes on serving writes, and the key was let go with the failed write.
        ok = client.post(
            "/api/v1/tenants", headers=owner.headers, json={"firstName": "Ada", "lastName": "L"}
        )
        assert ok.status_code == 201, ok.text
    finally:
        asyncio.run(_execute(database.url, DROP))
    retried = client.post("/api/v1/tenants", headers={**owner.headers, **key}, json=body)
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert sorted(_last_names(client, owner)) == ["L", REFUSED]
