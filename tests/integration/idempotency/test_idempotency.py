"""Idempotency-Key on POST: replay on any instance, 422 on another body, one write under a storm."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from litestar.testing import TestClient

from support import Account, assert_problem, register
from support_leases import active_lease, draft_lease, ledger, pay

TENANT = {"firstName": "Grace", "lastName": "Hopper"}


def test_same_key_same_body_replays_on_another_instance(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account
) -> None:
    headers = {**owner.headers, "Idempotency-Key": uuid.uuid4().hex}
    first = client.post("/api/v1/tenants", headers=headers, json=TENANT)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = client_b.post("/api/v1/tenants", headers=headers, json=dict(reversed(TENANT.items())))
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"]
    listed = client.get("/api/v1/tenants", headers=owner.headers, params={"limit": 100}).json()
    assert [t["id"] for t in listed["items"]] == [first.json()["id"]]


def test_same_key_other_body_is_422_and_writes_nothing(
    client: TestClient[Any], owner: Account
) -> None:
    headers = {**owner.headers, "Idempotency-Key": "k-" + uuid.uuid4().hex}
    assert client.post("/api/v1/tenants", headers=headers, json=TENANT).status_code == 201
    other = client.post("/api/v1/tenants", headers=headers, json={**TENANT, "lastName": "X"})
    assert_problem(other, 422, "idempotency-key-reused")
    listed = client.get("/api/v1/tenants", headers=owner.headers).json()
    assert len(listed["items"]) == 1


def test_key_is_scoped_to_user_path_and_validated(client: TestClient[Any], owner: Account) -> None:
    key = uuid.uuid4().hex
    a = client.post(
        "/api/v1/tenants", headers={**owner.headers, "Idempotency-Key": key}, json=TENANT
    )
    other = register(client)
    b = client.post(
        "/api/v1/tenants", headers={**other.headers, "Idempotency-Key": key}, json=TENANT
    )
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]
    for bad in ("x" * 256, "with space", ""):
        response = client.post(
            "/api/v1/tenants", headers={**owner.headers, "Idempotency-Key": bad}, json=TENANT
        )
        assert_problem(response, 422)
    assert len(client.get("/api/v1/tenants", headers=owner.headers).json()["items"]) == 1


def test_failed_request_is_not_stored_and_retry_runs(
    client: TestClient[Any], owner: Account
) -> None:
    headers = {**owner.headers, "Idempotency-Key": uuid.uuid4().hex}
    lease = active_lease(client, owner)
    bad = client.post(
        f"/api/v1/leases/{lease['id']}/payments",
        headers=headers,
        json={"amount": 0, "receivedOn": "2026-01-01", "method": "cash"},
    )
    assert_problem(bad, 422)
    good = pay(client, owner, lease["id"], 500, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert good.status_code == 201


def test_committed_record_survives_a_lost_redis_copy(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account, valkey: Any
) -> None:
    """An instance died after COMMIT, before writing Redis: the retry replays from the DB."""
    import redis as redis_sync

    lease = active_lease(client, owner)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = pay(client, owner, lease["id"], 700, headers=key)
    assert first.status_code == 201
    conn = redis_sync.Redis.from_url(valkey.url)
    try:
        for name in conn.scan_iter("haven:idem:*"):
            conn.delete(name)
    finally:
        conn.close()
    again = pay(client_b, owner, lease["id"], 700, headers=key)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert [e["amount"] for e in ledger(client, owner, lease["id"])["entries"]] == [-700]


def test_twenty_concurrent_identical_payments_make_one(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    instances = [app_factory(instance_id=f"api-{n}") for n in range(1, 4)]
    owner = register(instances[0])
    lease = active_lease(instances[0], owner)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    barrier = threading.Barrier(20)

    def attempt(n: int) -> Any:
        barrier.wait(timeout=30)
        return pay(instances[n % 3], owner, lease["id"], 1234, headers=key)

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(attempt, range(20)))
    created = [r for r in results if r.status_code == 201]
    assert created, [r.text for r in results]
    assert {r.json()["id"] for r in created} == {created[0].json()["id"]}
    for r in results:
        if r.status_code == 409:
            assert_problem(r, 409, "idempotency-in-flight")
            assert int(r.headers["retry-after"]) >= 1
        else:
            assert r.status_code == 201, r.text
    originals = [r for r in created if "idempotent-replayed" not in r.headers]
    assert len(originals) == 1
    book = ledger(instances[1], owner, lease["id"])
    assert [e["amount"] for e in book["entries"]] == [-1234]
    # After the storm every retry replays.
    final = pay(instances[2], owner, lease["id"], 1234, headers=key)
    assert final.status_code == 201
    assert final.headers["idempotent-replayed"] == "true"


def test_in_flight_marker_of_a_dead_instance_expires(
    client: TestClient[Any], owner: Account, valkey: Any
) -> None:
    """A marker nobody will release (its instance was killed, or the claim's answer was lost
    in a network cut) stops blocking within its TTL: the request that meets it waits for it
    to expire and then goes through, once; no 409 for a request nobody is serving."""
    import redis as redis_sync

    from haven.store.idempotency import LOCK_TTL_MS, cache_scope_of

    lease = active_lease(client, owner)
    key = uuid.uuid4().hex
    path = f"/api/v1/leases/{lease['id']}/payments"
    scope = cache_scope_of(owner.organization_id, owner.user_id, "POST", path, key)
    conn = redis_sync.Redis.from_url(valkey.url)
    try:
        conn.set(f"haven:idem:{scope}:inflight", "dead-instance", px=LOCK_TTL_MS)
        response = pay(client, owner, lease["id"], 99, headers={"Idempotency-Key": key})
        assert response.status_code == 201, response.text
        assert "idempotent-replayed" not in response.headers
        again = pay(client, owner, lease["id"], 99, headers={"Idempotency-Key": key})
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
    finally:
        conn.close()
    assert [e["amount"] for e in ledger(client, owner, lease["id"])["entries"]] == [-99]


def test_a_marker_that_outlives_the_wait_is_409_with_retry_after(
    client: TestClient[Any], owner: Account, valkey: Any
) -> None:
    """A key held longer than the wait (a slow request still running elsewhere) is a 409
    with Retry-After, and nothing is written."""
    import redis as redis_sync

    from haven.store.idempotency import IN_FLIGHT_WAIT_MS, cache_scope_of

    lease = active_lease(client, owner)
    key = uuid.uuid4().hex
    path = f"/api/v1/leases/{lease['id']}/payments"
    scope = cache_scope_of(owner.organization_id, owner.user_id, "POST", path, key)
    conn = redis_sync.Redis.from_url(valkey.url)
    try:
        conn.set(f"haven:idem:{scope}:inflight", "slow-instance", px=IN_FLIGHT_WAIT_MS + 5000)
        blocked = pay(client, owner, lease["id"], 99, headers={"Idempotency-Key": key})
        assert_problem(blocked, 409, "idempotency-in-flight")
        assert int(blocked.headers["retry-after"]) >= 1
    finally:
        conn.delete(f"haven:idem:{scope}:inflight")
        conn.close()
    assert ledger(client, owner, lease["id"])["entries"] == []


def _age_records(settings: Any, organization_id: str, hours: int) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from haven.db.engine import WRITE_OPTION, create_engine
    from haven.models import IdempotencyRecord
    from haven.uow import create_sessionmaker

    async def age() -> None:
        engine = create_engine(settings)
        try:
            maker = create_sessionmaker(engine.execution_options(**{WRITE_OPTION: True}))
            async with maker() as session, session.begin():
                await session.execute(
                    update(IdempotencyRecord)
                    .where(IdempotencyRecord.organization_id == uuid.UUID(organization_id))
                    .values(created_at=datetime.now(UTC) - timedelta(hours=hours))
                )
        finally:
            await engine.dispose()

    asyncio.run(age())


def test_a_key_older_than_24_hours_is_new_again_and_purged(
    client: TestClient[Any],
    owner: Account,
    valkey: Any,
    settings_factory: Callable[..., Any],
    monkeypatch: Any,
) -> None:
    import redis as redis_sync
    from click.testing import CliRunner

    from haven.cli import main

    lease = active_lease(client, owner)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    assert pay(client, owner, lease["id"], 10, headers=key).status_code == 201
    settings = settings_factory()
    _age_records(settings, owner.organization_id, hours=25)
    conn = redis_sync.Redis.from_url(valkey.url)
    try:
        for name in conn.scan_iter("haven:idem:*"):
            conn.delete(name)  # the Redis copy's 24 h TTL has run out too
    finally:
        conn.close()
    again = pay(client, owner, lease["id"], 10, headers=key)
    assert again.status_code == 201, again.text
    assert "idempotent-replayed" not in again.headers
    assert [e["amount"] for e in ledger(client, owner, lease["id"])["entries"]] == [-10, -10]

    _age_records(settings, owner.organization_id, hours=25)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(main, ["jobs", "purge-idempotency"])
    assert result.exit_code == 0, result.output
    assert "purged" in result.output


def test_openapi_declares_the_header_on_posts(client: TestClient[Any]) -> None:
    doc = client.get("/openapi.json").json()
    post = doc["paths"]["/api/v1/leases/{lease_id}/payments"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in post["parameters"]]


def _forget_redis_copies(valkey: Any) -> None:
    """The answer's Redis copy is lost (an instance died between COMMIT and its pipeline, or
    Redis lost its data): only the database record is left to answer a retry."""
    import redis as redis_sync

    conn = redis_sync.Redis.from_url(valkey.url)
    try:
        for name in conn.scan_iter("haven:idem:*"):
            conn.delete(name)
    finally:
        conn.close()


def test_a_lost_redis_copy_and_another_body_is_422_and_writes_nothing(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account, valkey: Any
) -> None:
    headers = {**owner.headers, "Idempotency-Key": uuid.uuid4().hex}
    first = client.post("/api/v1/tenants", headers=headers, json=TENANT)
    assert first.status_code == 201, first.text
    _forget_redis_copies(valkey)
    other = client_b.post("/api/v1/tenants", headers=headers, json={**TENANT, "lastName": "X"})
    assert_problem(other, 422, "idempotency-key-reused")
    again = client_b.post("/api/v1/tenants", headers=headers, json=TENANT)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    listed = client.get("/api/v1/tenants", headers=owner.headers, params={"limit": 100}).json()
    assert [t["id"] for t in listed["items"]] == [first.json()["id"]]


def test_a_lost_redis_copy_replays_even_when_the_write_would_now_be_refused(
    client: TestClient[Any], client_b: TestClient[Any], owner: Account, valkey: Any
) -> None:
    """The key's record is looked up only when a keyed write does not commit: a retry whose
    handler refuses what its first run did (the lease is active now: 409) still replays."""
    lease = draft_lease(client, owner)
    path = f"/api/v1/leases/{lease['id']}/activate"
    headers = {**owner.headers, "Idempotency-Key": uuid.uuid4().hex}
    first = client.post(path, headers=headers)
    assert first.status_code == 200, first.text
    _forget_redis_copies(valkey)
    again = client_b.post(path, headers=headers)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # Replayed from the record, and copied back to Redis: the next retry is the gate's.
    third = client.post(path, headers=headers)
    assert third.headers["idempotent-replayed"] == "true"
    # Without a key the same request is refused, as it should be.
    assert_problem(client.post(path, headers=owner.headers), 409)
