"""An authenticated cached read costs one Redis round trip (single node), and no SQL.

Valkey's MONITOR shows every command a client sends (script-internal calls are marked
`lua`); the requests' commands are told apart from background ones (heartbeats) by the
keys they name: the session, its hashed id in the rate-limit key, the organization.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from litestar.testing import TestClient
from sqlalchemy import event

from haven.services import services_of
from haven.store.embedded import EmbeddedValkey
from haven.store.ratelimit import hashed
from support import PROPERTY, Account, register


@contextlib.contextmanager
def monitored(valkey: EmbeddedValkey) -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    marker = f"end-{uuid.uuid4().hex}"
    ready = threading.Event()
    conn = redis.Redis.from_url(valkey.url, decode_responses=True)

    def reader() -> None:
        with conn.monitor() as monitor:
            ready.set()
            for _ in range(100_000):
                command = monitor.next_command()
                if marker in command["command"]:
                    return
                seen.append(command)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert ready.wait(10)
    other = redis.Redis.from_url(valkey.url)
    try:
        other.ping()  # MONITOR is on before the requests start
        yield seen
    finally:
        other.echo(marker)
        other.close()
        thread.join(10)
        conn.close()
    assert not thread.is_alive()


def sent_for(commands: list[dict[str, Any]], account: Account, sid: str) -> list[str]:
    """Commands the client sent (not from inside a script) that concern this request."""
    marks = (sid, hashed(sid), account.organization_id)
    return [
        c["command"]
        for c in commands
        if c.get("client_type") != "lua" and any(m in c["command"] for m in marks)
    ]


def test_cached_dashboard_is_one_round_trip(
    app_factory: Callable[..., TestClient[Any]], valkey: EmbeddedValkey
) -> None:
    client = app_factory(rate_limit_enabled=True, redis_key_prefix=f"rt{uuid.uuid4().hex[:6]}")
    owner = register(client)
    cookie = owner.cookie_headers
    first = client.get("/api/v1/dashboard", headers=cookie)
    assert first.status_code == 200
    with monitored(valkey) as commands:
        response = client.get("/api/v1/dashboard", headers=cookie)
    assert response.status_code == 200
    assert response.json() == first.json()
    assert "ratelimit-remaining" in response.headers  # the limit step still ran
    sent = sent_for(commands, owner, owner.session_cookie)
    assert len(sent) == 1, sent
    assert sent[0].upper().startswith("EVALSHA")

    # Any authenticated read: the same single round trip for session + limit.
    with monitored(valkey) as commands:
        assert client.get("/api/v1/auth/me", headers=cookie).status_code == 200
    assert len(sent_for(commands, owner, owner.session_cookie)) == 1


def test_revocation_and_freshness_hold_on_the_one_round_trip(
    app_factory: Callable[..., TestClient[Any]],
) -> None:
    prefix = f"rt{uuid.uuid4().hex[:6]}"
    a = app_factory(rate_limit_enabled=True, redis_key_prefix=prefix, instance_id="api-1")
    b = app_factory(rate_limit_enabled=True, redis_key_prefix=prefix, instance_id="api-2")
    owner = register(a)
    before = a.get("/api/v1/dashboard", headers=owner.cookie_headers).json()
    created = b.post(
        "/api/v1/properties",
        headers=owner.headers,
        json={"name": "Fresh", "type": "residential",
              "address": {"line1": "1 Main St", "city": "Town", "country": "US"}},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    after = a.get("/api/v1/dashboard", headers=owner.cookie_headers).json()
    assert after["properties"] == before["properties"] + 1
    assert b.post("/api/v1/auth/logout", headers=owner.headers).status_code in (200, 204)
    gone = a.get("/api/v1/dashboard", headers=owner.cookie_headers)
    assert gone.status_code == 401


def test_an_api_key_request_is_one_round_trip_for_the_key(
    app_factory: Callable[..., TestClient[Any]], valkey: EmbeddedValkey
) -> None:
    """The key's limit, record, creator's mirror and last-used claim: one EVALSHA (issue 18)."""
    import hashlib

    client = app_factory(rate_limit_enabled=True, redis_key_prefix=f"rt{uuid.uuid4().hex[:6]}")
    owner = register(client)
    created = client.post(
        "/api/v1/api-keys", headers=owner.headers, json={"name": "sync", "role": "viewer"}
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/properties", headers=headers).status_code == 200  # loads the record
    digest = hashlib.sha256(key.encode()).hexdigest()
    with monitored(valkey) as commands:
        response = client.get("/api/v1/properties", headers=headers)
    assert response.status_code == 200
    sent = [
        c["command"]
        for c in commands
        if c.get("client_type") != "lua" and digest[:32] in c["command"]
    ]
    assert len(sent) == 1, sent
    assert sent[0].upper().startswith("EVALSHA")
    assert all(key not in c["command"] for c in commands)  # the key itself never goes to Redis


def _post_costs(
    client: TestClient[Any], valkey: EmbeddedValkey, prefix: str, headers: dict[str, str]
) -> tuple[int, list[str], list[str]]:
    """(status, SQL statement verbs, Redis commands under the prefix) of one POST."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        verb = statement.split()[0].upper()
        # SQLite's BEGIN IMMEDIATE is a statement; asyncpg's BEGIN is not one SQLAlchemy sees.
        if statement.strip().upper() != "SELECT 1" and verb != "BEGIN":
            statements.append(verb)

    engine = services_of(client.app).engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        with monitored(valkey) as commands:
            response = client.post("/api/v1/properties", headers=headers, json=PROPERTY)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    sent = [
        c["command"].split()[0].strip('"').upper()
        for c in commands
        if c.get("client_type") != "lua"
        and prefix in c["command"]
        and "pexpire" not in c["command"]  # the in-flight marker's refresh, if the POST is slow
        and f"{prefix}:instance" not in c["command"]  # the instance's heartbeat, if it fell here
    ]
    return response.status_code, statements, sent


def test_a_write_costs_what_it_did(
    app_factory: Callable[..., TestClient[Any]], valkey: EmbeddedValkey
) -> None:
    """The unit of work adds no statement and no Redis round trip to a POST."""
    prefix = f"wc{uuid.uuid4().hex[:6]}"
    client = app_factory(rate_limit_enabled=True, redis_key_prefix=prefix)
    owner = register(client)
    assert client.get("/api/v1/auth/me", headers=owner.headers).status_code == 200  # loads scripts
    plain = _post_costs(client, valkey, prefix, owner.headers)
    keyed_headers = {**owner.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    keyed = _post_costs(client, valkey, prefix, keyed_headers)
    replay = _post_costs(client, valkey, prefix, keyed_headers)
    # The row, its audit row, the counter and its event: on PostgreSQL one statement (the
    # property is added with haven.uow `add_new`: a CTE of haven.uow.tail's statement), on
    # SQLite one per table.
    postgres = services_of(client.app).engine.dialect.name == "postgresql"
    tail = ["WITH"] if postgres else ["INSERT"] * 4
    # The gate's one round trip; the changed organization's cache version.
    assert plain == (201, tail, ["EVALSHA", "INCRBY"])
    # + the key: the gate's trip also claims it (cached answer? in-flight marker); the
    # record (one INSERT, never looked up first: haven.uow.tx); its Redis copy and the
    # marker's release are pipelined with the cache-version bump (haven.uow.tx
    # RequestTx._settle): still two round trips.
    record = [] if postgres else ["INSERT"]  # in the one tail statement on PostgreSQL
    assert keyed == (201, [*tail, *record], ["EVALSHA", "SET", "EVAL", "INCRBY"])
    # A replay is answered from the copy the gate's trip read: no statement, no marker.
    assert replay == (201, [], ["EVALSHA"])


def _sent_under(commands: list[dict[str, Any]], prefix: str) -> list[str]:
    """Every command a client sent (not from inside a script) that names a key of `prefix`,
    but the instance's own background work (its registry heartbeat, the session count)."""
    return [
        c["command"]
        for c in commands
        if c.get("client_type") != "lua"
        and f"{prefix}:" in c["command"]
        and not any(b in c["command"] for b in _BACKGROUND)
    ]


_BACKGROUND = (":instance", ":registry", ":cluster", ":sessions:count", "SCAN", "scan")


@pytest.mark.parametrize("via", ["cookie", "bearer"])
@pytest.mark.parametrize("rate_limit", [True, False])
def test_every_cached_read_is_exactly_one_round_trip(
    app_factory: Callable[..., TestClient[Any]], valkey: EmbeddedValkey, via: str, rate_limit: bool
) -> None:
    """Counted, not timed: N cached reads are N EVALSHAs and not one command more, whatever
    carries the session and with the rate limiter on or off; a session last seen over a
    minute ago is stamped inside the same call (no second round trip for lastSeen)."""
    prefix = f"rt{uuid.uuid4().hex[:6]}"
    client = app_factory(rate_limit_enabled=rate_limit, redis_key_prefix=prefix)
    owner = register(client)
    headers = owner.cookie_headers if via == "cookie" else owner.headers
    first = client.get("/api/v1/dashboard", headers=headers)  # computes and caches it
    assert first.status_code == 200
    reads = 5
    with monitored(valkey) as commands:
        answers = [client.get("/api/v1/dashboard", headers=headers) for _ in range(reads)]
    assert all(a.status_code == 200 and a.content == first.content for a in answers)
    sent = _sent_under(commands, prefix)
    assert len(sent) == reads, sent
    assert all(c.upper().startswith("EVALSHA") for c in sent), sent
    assert ("ratelimit-remaining" in answers[-1].headers) is rate_limit

    # lastSeen over a minute old: the gate's call rewrites it, still one round trip.
    r = redis.Redis.from_url(valkey.url)
    key = f"{prefix}:session:{owner.session_cookie}"
    try:
        before = json.loads(r.get(key) or b"{}")
        assert before, "the session is stored under the expected key"
        r.eval(
            "local d = cjson.decode(redis.call('GET', KEYS[1])) d['seen'] = d['seen'] - 120"
            " redis.call('SET', KEYS[1], cjson.encode(d), 'KEEPTTL') return 1",
            1,
            key,
        )
        with monitored(valkey) as commands:
            stale = client.get("/api/v1/dashboard", headers=headers)
        after = json.loads(r.get(key) or b"{}")
    finally:
        r.close()
    assert stale.status_code == 200
    assert stale.content == first.content
    sent = _sent_under(commands, prefix)
    assert len(sent) == 1, sent
    assert sent[0].upper().startswith("EVALSHA")
    assert after["seen"] > before["seen"] - 60  # stamped again (it was set 120 s back)
    assert (after["uid"], after["oid"]) == (before["uid"], before["oid"])
