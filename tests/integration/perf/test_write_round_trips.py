"""Round trips per keyed POST, counted on the wire (not timed, not inferred from a log).

A relay in front of Valkey and one in front of PostgreSQL (`Relay`) passes every byte on
and counts the exchanges: an exchange starts when the client sends after the server last
spoke, so commands a client pipelines in one write are one round trip, and a statement
that needs a Parse first (asyncpg's prepare) is two. The app is warmed up first (its
statements prepared on its one pooled connection), so what is counted is the steady state.

Left out of the count, by what they carry: the instance's heartbeat (its registry keys),
the in-flight marker's refresh (only a POST slower than a second sends it) and the
dependency monitor's `SELECT 1`.

Pinned (issue 19, "writes in two round trips"): Redis is two round trips (the gate's
script, which also claims the key, and the commit's pipeline). PostgreSQL: a POST that only
adds one new row (`ONE_STATEMENT`: tenant, property, owner, API key) is one statement sent
in autocommit (its row, audit row, event and the key's record); a POST that checks what it
names with a plain SELECT first (`CHECK_READ`: vendor, maintenance request, comment,
payout, webhook, work order, bill without a work order, lease, unit) is that SELECT
through the Reader, in autocommit too, then the one statement (a unit's: its property's
count too); so is a member (two new rows: the
user and the membership) and a lease (its tenants' rows in the same statement); a lease
money POST (`LEASE_MONEY`: charge, credit, payment, recurring charge), which locks what it
must until its commit, is BEGIN, one statement that locks and reads what its rules need,
the tail and COMMIT, and a bill that names a work order locks it in its transaction;
docs/architecture.md says what is left,
bench/RESULTS-writes.md counts the other POSTs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from haven.config import Settings
from haven.db.base import Base
from haven.db.engine import create_engine
from haven.models import (
    ApiKey,
    AuditEvent,
    Bill,
    Event,
    IdempotencyRecord,
    Lease,
    LeaseBalance,
    LedgerEntry,
    MaintenanceComment,
    MaintenanceRequest,
    Membership,
    Owner,
    OwnerPayout,
    PaymentsByDay,
    Property,
    RecurringCharge,
    Tenant,
    Unit,
    User,
    Vendor,
    WebhookSubscription,
    WorkOrder,
)
from haven.store.embedded import EmbeddedValkey
from support import PROPERTY, Account, create_property, create_tenant, create_unit, register
from support_leases import active_lease, new_unit, pay

TENANT = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"}
_SSL_CODES = {80877103, 80877104}  # SSLRequest, GSSENCRequest: no type byte either


def _quietly_close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class Relay:
    """A TCP relay that records each exchange's client bytes, per connection."""

    def __init__(self, host: str, port: int, postgres: bool) -> None:
        self.upstream = (host, port)
        self.postgres = postgres
        self.turns: list[list[str]] = []
        self.recording = False
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        for sock in self.sockets:
            _quietly_close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            self.sockets += [client, server]
            state: dict[str, Any] = {"last": None, "turn": None, "buf": b"", "started": False}
            state["names"] = {}
            threading.Thread(target=self._up, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, state), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, state: dict[str, Any]) -> None:
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data:
                _quietly_close(server)
                return
            with self.lock:
                if state["last"] != "client":
                    state["last"] = "client"
                    state["turn"] = []
                    if self.recording:
                        self.turns.append(state["turn"])
                state["buf"] += data
                self._parse(state)
            try:
                server.sendall(data)
            except OSError:
                client.close()
                return

    def _down(self, server: socket.socket, client: socket.socket, state: dict[str, Any]) -> None:
        while True:
            try:
                data = server.recv(65536)
            except OSError:
                data = b""
            if not data:
                _quietly_close(client)
                return
            with self.lock:
                state["last"] = "server"
            try:
                client.sendall(data)
            except OSError:
                server.close()
                return

    def _parse(self, state: dict[str, Any]) -> None:
        if not self.postgres:  # RESP: keep the text; the commands are read from it
            state["turn"].append(state["buf"].decode("latin-1"))
            state["buf"] = b""
            return
        buf: bytes = state["buf"]
        while True:
            if not state["started"]:
                if len(buf) < 8:
                    break
                length, code = struct.unpack("!ii", buf[:8])
                if len(buf) < length:
                    break
                buf = buf[length:]
                state["started"] = code not in _SSL_CODES
                continue
            if len(buf) < 5:
                break
            kind = chr(buf[0])
            length = struct.unpack("!i", buf[1:5])[0]
            if len(buf) < 1 + length:
                break
            body, buf = buf[5 : 1 + length], buf[1 + length :]
            if kind == "Q":
                state["turn"].append(body.split(b"\0")[0].decode())
            elif kind == "P":
                name, query = body.split(b"\0")[:2]
                state["names"][name] = query.decode()
                state["turn"].append(query.decode())
            elif kind == "B":
                name = body.split(b"\0")[1]
                state["turn"].append(state["names"].get(name, "?"))
        state["buf"] = buf


def _relayed(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{port}"))


def _redis_commands(turn: list[str]) -> list[str]:
    """The command names of one Redis exchange (each RESP array's first bulk string)."""
    text = "".join(turn)
    names = []
    for chunk in text.split("*")[1:]:
        lines = chunk.split("\r\n")
        if len(lines) > 2 and lines[0].isdigit() and lines[1].startswith("$"):
            names.append(lines[2].upper())
    return names


def _counted_redis(turns: list[list[str]], prefix: str) -> list[list[str]]:
    kept = []
    for turn in turns:
        text = "".join(turn)
        if f"{prefix}:instance" in text or "pexpire" in text or prefix not in text:
            continue
        kept.append(_redis_commands(turn))
    return kept


def _counted_sql(turns: list[list[str]]) -> list[list[str]]:
    kept = []
    for turn in turns:
        verbs = [s.split()[0].rstrip(";").upper() for s in turn if s.strip()]
        if turn and all(s.strip().upper() == "SELECT 1" for s in turn):
            continue
        kept.append(verbs)
    return kept


@pytest.fixture
def relays(database: Any, valkey: EmbeddedValkey) -> Any:
    if database.backend != "postgresql":
        pytest.skip("round trips are counted on PostgreSQL (SQLite is embedded: none)")
    pg = urlsplit(database.url)
    rd = urlsplit(valkey.url)
    pg_relay = Relay(pg.hostname or "127.0.0.1", pg.port or 5432, postgres=True)
    redis_relay = Relay(rd.hostname or "127.0.0.1", rd.port or 6379, postgres=False)
    yield pg_relay, redis_relay
    pg_relay.close()
    redis_relay.close()


def _counted(
    relays: tuple[Relay, Relay], prefix: str, send: Callable[[], Any]
) -> tuple[Any, list[list[str]], list[list[str]]]:
    pg_relay, redis_relay = relays
    with pg_relay.lock, redis_relay.lock:
        pg_relay.turns, redis_relay.turns = [], []
        pg_relay.recording = redis_relay.recording = True
    try:
        response = send()
    finally:
        with pg_relay.lock, redis_relay.lock:
            pg_relay.recording = redis_relay.recording = False
    return (
        response,
        _counted_sql(pg_relay.turns),
        _counted_redis(redis_relay.turns, prefix),
    )


def _relayed_client(
    app_factory: Callable[..., TestClient[Any]],
    database: Any,
    valkey: EmbeddedValkey,
    relays: tuple[Relay, Relay],
) -> tuple[TestClient[Any], str]:
    """An app talking to PostgreSQL and Valkey through the counting relays (one pooled
    connection each way: a write that held its connection while asking for another would
    wait for the pool's timeout), with its own Redis key prefix (returned with it)."""
    pg_relay, redis_relay = relays
    prefix = f"w{uuid.uuid4().hex[:6]}"
    client = app_factory(
        rate_limit_enabled=True,
        redis_key_prefix=prefix,
        database_url=_relayed(database.url, pg_relay.port),
        redis_url=_relayed(valkey.url, redis_relay.port),
        webhook_worker=False,
        webhook_allow_private=True,  # the webhook POST's URL: 127.0.0.1, no DNS lookup
        db_pool_min=1,
        db_pool_max=1,
    )
    return client, prefix


def test_a_keyed_post_costs_two_redis_round_trips(
    app_factory: Callable[..., TestClient[Any]],
    database: Any,
    valkey: EmbeddedValkey,
    relays: tuple[Relay, Relay],
) -> None:
    client, prefix = _relayed_client(app_factory, database, valkey, relays)
    owner = register(client)
    lease = active_lease(client, owner)

    def tenant() -> Any:
        key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        return client.post("/api/v1/tenants", headers={**owner.headers, **key}, json=TENANT)

    def payment() -> Any:
        key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        return pay(client, owner, lease["id"], 100, headers=key)

    for send in (tenant, tenant, payment, payment):  # warm up: statements prepared
        assert send().status_code == 201

    response, sql, redis = _counted(relays, prefix, tenant)
    assert response.status_code == 201, response.text
    # The gate's script (session, limits and the key's claim); then, after COMMIT, one
    # pipeline: the answer's copy, the marker's release, the cache-version bump.
    assert redis == [["EVALSHA"], ["SET", "EVAL", "INCRBY"]], redis
    # One statement, in autocommit: the tenant row (added with haven.uow `add_new`, not
    # flushed), its audit row, the counter, the event and the key's record as CTEs
    # (haven.uow.tail). No BEGIN, no COMMIT (a statement is atomic by itself), and no
    # lookup of the key's record: its INSERT finds a taken key by itself (haven.uow.tx).
    assert sql == [["WITH"]], sql

    response, sql, redis = _counted(relays, prefix, payment)
    assert response.status_code == 201, response.text
    assert redis == [["EVALSHA"], ["SET", "EVAL", "INCRBY"]], redis
    # One read without a lock: the lease, its organization, its lines and the version of
    # its totals row (haven.ledger.repository `seen_for_entry`); then the tail in
    # autocommit: the entry, the lease's new totals guarded by that version, the day's
    # total, audit row, event and the key's record (haven.uow.tail). No BEGIN, no COMMIT.
    assert sql == [["SELECT"], ["WITH"]], sql

    # A replay: the gate's trip read the stored copy; no statement at all.
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    first = client.post("/api/v1/tenants", headers={**owner.headers, **key}, json=TENANT)
    assert first.status_code == 201
    response, sql, redis = _counted(
        relays,
        prefix,
        lambda: client.post("/api/v1/tenants", headers={**owner.headers, **key}, json=TENANT),
    )
    assert response.headers["idempotent-replayed"] == "true"
    assert response.content == first.content
    assert (sql, redis) == ([], [["EVALSHA"]])


def test_behind_pgbouncer_the_one_statement_keeps_its_transaction(
    app_factory: Callable[..., TestClient[Any]],
    database: Any,
    valkey: EmbeddedValkey,
    relays: tuple[Relay, Relay],
) -> None:
    """PgBouncer in transaction mode may run a statement outside a transaction on another
    server connection than the one it was prepared on: the tenant POST's one statement is
    then sent between BEGIN and COMMIT (haven.uow.recorder `_connection`)."""
    pg_relay, redis_relay = relays
    prefix = f"w{uuid.uuid4().hex[:6]}"
    url = _relayed(database.url, pg_relay.port)
    client = app_factory(
        redis_key_prefix=prefix,
        database_url=url + ("&" if "?" in url else "?") + "prepared_statement_cache_size=0",
        redis_url=_relayed(valkey.url, redis_relay.port),
        webhook_worker=False,
        db_pool_min=1,
        db_pool_max=1,
    )
    owner = register(client)

    def tenant() -> Any:
        key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        return client.post("/api/v1/tenants", headers={**owner.headers, **key}, json=TENANT)

    assert tenant().status_code == 201
    response, sql, _ = _counted(relays, prefix, tenant)
    assert response.status_code == 201, response.text
    assert sql[0] == ["BEGIN"], sql
    assert sql[-1] == ["COMMIT"], sql
    # Between them only the one statement (prepared afresh each time: no statement cache
    # behind PgBouncer, so a Parse exchange and, empty here, a Close of the prepared one).
    assert [verbs for verbs in sql[1:-1] if verbs] == [["WITH"], ["WITH"]], sql


def test_behind_pgbouncer_a_check_read_keeps_its_transaction_too(
    app_factory: Callable[..., TestClient[Any]],
    database: Any,
    valkey: EmbeddedValkey,
    relays: tuple[Relay, Relay],
) -> None:
    """Behind PgBouncer the check read (haven.db.reader, on the read engine) runs in a
    transaction of its own, as every read there does, and the write in its own: no
    statement is sent outside BEGIN .. COMMIT or ROLLBACK."""
    pg_relay, redis_relay = relays
    prefix = f"w{uuid.uuid4().hex[:6]}"
    url = _relayed(database.url, pg_relay.port)
    client = app_factory(
        redis_key_prefix=prefix,
        database_url=url + ("&" if "?" in url else "?") + "prepared_statement_cache_size=0",
        redis_url=_relayed(valkey.url, redis_relay.port),
        webhook_worker=False,
        db_pool_min=1,
        db_pool_max=1,
    )
    owner = register(client)
    path, body = _payout(client, owner)

    def payout() -> Any:
        key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        return client.post(path, headers={**owner.headers, **key}, json=body)

    assert payout().status_code == 201
    response, sql, _ = _counted(relays, prefix, payout)
    assert response.status_code == 201, response.text
    inside, blocks = False, []
    for verb in (verb for verbs in sql for verb in verbs):
        if verb == "BEGIN":
            assert not inside, sql
            inside = True
            blocks.append([])
        elif verb in {"COMMIT", "ROLLBACK"}:
            assert inside, sql
            inside = False
        else:
            assert inside, sql  # a statement outside a transaction
            blocks[-1].append(verb)
    assert not inside, sql
    # The check's SELECT (prepared afresh: no statement cache here), then the write's one
    # statement (likewise).
    assert [set(block) for block in blocks] == [{"SELECT"}, {"WITH"}], sql


# POSTs whose handler only adds one new row with haven.uow `add_new` (no read first, no
# other row changed, nothing the database fills in): (path, body, model, entity type).
ONE_STATEMENT = {
    "tenants": ("/api/v1/tenants", TENANT, Tenant, "tenant"),
    "properties": ("/api/v1/properties", PROPERTY, Property, "property"),
    "owners": ("/api/v1/owners", {"kind": "person", "name": "Owen", "email": "o@example.com"},
               Owner, "owner"),
    "api-keys": ("/api/v1/api-keys", {"name": "sync", "role": "viewer"}, ApiKey, "api_key"),
}  # fmt: skip


def _written(
    settings: Settings, model: type[Base], row_id: str, organization_id: str, body: bytes
) -> tuple[int, int, list[str], list[str], int]:
    """(the organization's rows of `model`, rows with this id, the row's audit actions, its
    event types, Idempotency-Key records holding this answer), read from the database."""

    async def read() -> tuple[int, int, list[str], list[str], int]:
        engine = create_engine(settings)
        rid, org = uuid.UUID(row_id), uuid.UUID(organization_id)
        table: Any = model
        try:
            async with engine.connect() as conn:

                async def count(stmt: Any) -> int:
                    return int((await conn.execute(stmt)).scalar_one())

                everyone = await count(
                    select(func.count()).select_from(table).where(table.organization_id == org)
                )
                rows = await count(select(func.count()).select_from(table).where(table.id == rid))
                audits = (
                    await conn.execute(
                        select(AuditEvent.action).where(
                            AuditEvent.entity_id == rid, AuditEvent.organization_id == org
                        )
                    )
                ).scalars()
                events = (
                    await conn.execute(
                        select(Event.type).where(
                            Event.resource_id == rid, Event.organization_id == org
                        )
                    )
                ).scalars()
                records = await count(
                    select(func.count())
                    .select_from(IdempotencyRecord)
                    .where(IdempotencyRecord.organization_id == org)
                    .where(IdempotencyRecord.body == body)
                )
                return everyone, rows, list(audits), list(events), records
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.mark.parametrize("name", list(ONE_STATEMENT))
def test_a_post_that_adds_one_row_is_one_statement(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    database: Any,
    valkey: EmbeddedValkey,
    relays: tuple[Relay, Relay],
    name: str,
) -> None:
    """Each such POST, keyed: one PostgreSQL round trip (its row, audit row, event and the
    key's record in one statement, autocommit), two Redis round trips; all of it written;
    a replay of the key answers the same bytes with no statement and writes no second row."""
    path, body, model, entity = ONE_STATEMENT[name]
    client, prefix = _relayed_client(app_factory, database, valkey, relays)
    owner = register(client)
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}

    def send(headers: dict[str, str] | None = None) -> Any:
        headers = headers or {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        return client.post(path, headers={**owner.headers, **headers}, json=body)

    for _ in range(2):  # warm up: statements prepared
        assert send().status_code == 201

    response, sql, redis = _counted(relays, prefix, lambda: send(key))
    assert response.status_code == 201, response.text
    assert redis == [["EVALSHA"], ["SET", "EVAL", "INCRBY"]], redis
    assert sql == [["WITH"]], sql

    settings = settings_factory()
    row_id = response.json()["id"]
    everyone, rows, audits, events, records = _written(
        settings, model, row_id, owner.organization_id, response.content
    )
    assert (everyone, rows, records) == (3, 1, 1)
    assert audits == [f"{entity}.created"], audits
    assert events == [f"{entity}.created"], events

    replay, sql, redis = _counted(relays, prefix, lambda: send(key))
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == response.content
    assert (sql, redis) == ([], [["EVALSHA"]])
    assert _written(settings, model, row_id, owner.organization_id, response.content)[:3] == (
        3,
        1,
        audits,
    )


@pytest.mark.parametrize("name", list(ONE_STATEMENT))
def test_a_post_that_adds_one_row_answers_what_it_wrote(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    name: str,
) -> None:
    """On both backends (SQLite flushes the row at the commit; PostgreSQL writes it in the
    tail statement): the answer is the row as read back (id, timestamps, version 1, ETag),
    with one audit row, one event and the key's record; a replay writes no second row."""
    path, body, model, entity = ONE_STATEMENT[name]
    client = app_factory(webhook_worker=False)
    owner = register(client)
    key = {**owner.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    created = client.post(path, headers=key, json=body)
    assert created.status_code == 201, created.text
    answer = created.json()
    read = client.get(f"{path}/{answer['id']}", headers=owner.headers)
    assert read.status_code == 200, read.text
    assert {k: v for k, v in answer.items() if k != "key"} == read.json()  # the API key's
    assert created.headers.get("etag") == read.headers.get("etag")  # secret: this answer only
    assert answer.get("version", 1) == 1
    written = _written(
        settings_factory(), model, answer["id"], owner.organization_id, created.content
    )
    assert written == (1, 1, [f"{entity}.created"], [f"{entity}.created"], 1), written

    replay = client.post(path, headers=key, json=body)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == created.content
    written = _written(
        settings_factory(), model, answer["id"], owner.organization_id, created.content
    )
    assert written[:2] == (1, 1)


# POSTs that check what they name with a plain SELECT (no lock) before adding one new row:
# the check goes through the Reader before the unit of work sends anything (autocommit),
# then the row is the commit's one statement (autocommit too). For each: what it needs
# made first (returns the path and body), the model, the entity type, and where the
# answer's row is read back.
Made = tuple[str, dict[str, Any]]


def _vendor(client: TestClient[Any], owner: Account) -> Made:
    return "/api/v1/vendors", {
        "name": "Ace",
        "trade": "plumbing",
        "insuranceExpiresOn": "2099-01-01",
    }


def _request(client: TestClient[Any], owner: Account) -> Made:
    prop = create_property(client, owner)
    unit = create_unit(client, owner, prop["id"])
    body = {"propertyId": prop["id"], "unitId": unit["id"], "assigneeId": owner.user_id}
    return "/api/v1/maintenance-requests", {**body, "title": "Leaking tap"}


def _comment(client: TestClient[Any], owner: Account) -> Made:
    path, body = _request(client, owner)
    made = client.post(path, headers=owner.headers, json=body)
    assert made.status_code == 201, made.text
    return f"{path}/{made.json()['id']}/comments", {"body": "On my way"}


def _payout(client: TestClient[Any], owner: Account) -> Made:
    made = client.post(
        "/api/v1/owners", headers=owner.headers, json={"kind": "person", "name": "O"}
    )
    assert made.status_code == 201, made.text
    return f"/api/v1/owners/{made.json()['id']}/payouts", {"amount": 10000, "paidOn": "2026-01-15"}


def _webhook(client: TestClient[Any], owner: Account) -> Made:
    return "/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook"}


def _lease(client: TestClient[Any], owner: Account) -> Made:
    """A draft on a new unit with two tenants, the first named twice (a lease has each once),
    and terms that post something only at activation (the deposit, the escalation)."""
    unit = new_unit(client, owner)
    first, second = (create_tenant(client, owner)["id"] for _ in range(2))
    return "/api/v1/leases", {
        "unitId": unit["id"],
        "tenantIds": [first, second, first],
        "startDate": "2026-01-01",
        "endDate": "2026-12-31",
        "rent": 120000,
        "deposit": 240000,
        "chargeDeposit": True,
        "graceDays": 5,
        "lateFee": {"kind": "flat", "amount": 5000},
        "escalation": {"percentBasisPoints": 300, "everyMonths": 6},
    }


def _insured_vendor(client: TestClient[Any], owner: Account) -> str:
    path, body = _vendor(client, owner)
    made = client.post(path, headers=owner.headers, json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _work_order(client: TestClient[Any], owner: Account) -> Made:
    path, body = _request(client, owner)
    made = client.post(path, headers=owner.headers, json=body)
    assert made.status_code == 201, made.text
    return f"{path}/{made.json()['id']}/work-orders", {
        "title": "Replace washer",
        "vendorId": _insured_vendor(client, owner),
        "estimate": 12000,
        "scheduledStart": "2026-12-01T09:00:00Z",
    }


def _bill(client: TestClient[Any], owner: Account) -> Made:
    return "/api/v1/bills", {
        "vendorId": _insured_vendor(client, owner),
        "propertyId": create_property(client, owner)["id"],
        "amount": 11500,
        "issuedOn": "2026-01-10",
        "dueOn": "2026-02-10",
        "reference": "ACE-1",
    }


def _unit(client: TestClient[Any], owner: Account) -> Made:
    prop = create_property(client, owner)
    return f"/api/v1/properties/{prop['id']}/units", {
        "label": "7A",
        "bedrooms": 2,
        "bathrooms": 1.5,
        "areaSqft": 720,
        "marketRent": 125000,
        "status": "unavailable",
    }


# Where the answer's row is read back: "{path}/{id}" formatted, or None: in the POST
# path's own list.
CheckRead = tuple[Callable[[TestClient[Any], Account], Made], type[Base], str, str | None]
CHECK_READ: dict[str, CheckRead] = {
    "vendors": (_vendor, Vendor, "vendor", "{path}/{id}"),
    "maintenance-requests": (_request, MaintenanceRequest, "maintenance_request", "{path}/{id}"),
    "comments": (_comment, MaintenanceComment, "maintenance_comment", None),
    "payouts": (_payout, OwnerPayout, "owner_payout", None),
    "webhooks": (_webhook, WebhookSubscription, "webhook_subscription", "{path}/{id}"),
    "work-orders": (_work_order, WorkOrder, "work_order", "/api/v1/work-orders/{id}"),
    "bills": (_bill, Bill, "bill", "{path}/{id}"),
    # Its tenants' rows (lease_tenants: neither audited nor evented) go in the same statement.
    "leases": (_lease, Lease, "lease", "{path}/{id}"),
    # Its property's unit count (and version) moves in the same statement (haven.uow
    # `add_change`).
    "units": (_unit, Unit, "unit", "/api/v1/units/{id}"),
}  # fmt: skip
# A body naming what must be unique per row (a unit's label): each warm-up POST names its own.
FRESH: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "units": lambda body: {**body, "label": f"U-{uuid.uuid4().hex[:8]}"},
}
# Feeds no event (its own changes are audited only: haven.models.events).
NO_EVENT = {"webhooks"}


@pytest.mark.parametrize("name", list(CHECK_READ))
def test_a_post_that_checks_then_adds_one_row_is_two_round_trips(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    database: Any,
    valkey: EmbeddedValkey,
    relays: tuple[Relay, Relay],
    name: str,
) -> None:
    """Each such POST, keyed: its check (one SELECT, in autocommit) and its one statement
    (row, audit row, event and the key's record, in autocommit): two PostgreSQL round trips,
    no BEGIN, no COMMIT; two Redis round trips; a replay sends no statement."""
    make, model, entity, _ = CHECK_READ[name]
    client, prefix = _relayed_client(app_factory, database, valkey, relays)
    owner = register(client)
    path, body = make(client, owner)
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    fresh = FRESH.get(name, dict)

    def send(headers: dict[str, str] | None = None, sent: dict[str, Any] = body) -> Any:
        headers = headers or {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        return client.post(path, headers={**owner.headers, **headers}, json=sent)

    for _ in range(2):  # warm up: statements prepared
        assert send(sent=fresh(body)).status_code == 201

    response, sql, redis = _counted(relays, prefix, lambda: send(key))
    assert response.status_code == 201, response.text
    assert redis == [["EVALSHA"], ["SET", "EVAL", "INCRBY"]], redis
    assert sql == [["SELECT"], ["WITH"]], sql

    settings = settings_factory()
    row_id = response.json()["id"]
    everyone, rows, audits, events, records = _written(
        settings, model, row_id, owner.organization_id, response.content
    )
    assert (everyone, rows, records) == (3, 1, 1)
    assert audits == [f"{entity}.created"], audits
    assert events == ([] if name in NO_EVENT else [f"{entity}.created"]), events

    replay, sql, redis = _counted(relays, prefix, lambda: send(key))
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == response.content
    assert (sql, redis) == ([], [["EVALSHA"]])
    assert _written(settings, model, row_id, owner.organization_id, response.content)[:2] == (3, 1)


@pytest.mark.parametrize("name", list(CHECK_READ))
def test_a_post_that_checks_then_adds_one_row_answers_what_it_wrote(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    name: str,
) -> None:
    """On both backends: the answer is the row as read back (by id, or in its list), with
    one audit row, one event (none for a webhook) and the key's record; a replay writes no
    second row."""
    make, model, entity, page = CHECK_READ[name]
    client = app_factory(webhook_worker=False, webhook_allow_private=True)
    owner = register(client)
    path, body = make(client, owner)
    key = {**owner.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    created = client.post(path, headers=key, json=body)
    assert created.status_code == 201, created.text
    answer = created.json()
    if page is not None:
        read = client.get(page.format(path=path, id=answer["id"]), headers=owner.headers)
        assert read.status_code == 200, read.text
        assert created.headers.get("etag") == read.headers.get("etag")
        shown = read.json()
    else:
        listed = client.get(path, headers=owner.headers)
        assert listed.status_code == 200, listed.text
        (shown,) = [item for item in listed.json()["items"] if item["id"] == answer["id"]]
    assert {k: v for k, v in answer.items() if k != "secret"} == shown  # the webhook's secret:
    assert answer.get("version", 1) == 1  # this answer only
    written = _written(
        settings_factory(), model, answer["id"], owner.organization_id, created.content
    )
    events = [] if name in NO_EVENT else [f"{entity}.created"]
    assert written == (1, 1, [f"{entity}.created"], events, 1), written

    replay = client.post(path, headers=key, json=body)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == created.content
    written = _written(
        settings_factory(), model, answer["id"], owner.organization_id, created.content
    )
    assert written[:2] == (1, 1)


def test_a_unit_post_moves_its_property_unit_count_by_one(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
) -> None:
    """On both backends: after a new unit its property shows one unit more at its next
    version (a new ETag: a client revalidating its copy gets the new count), and the trail
    is what a unit POST always wrote: the unit's audit row and event, nothing for the
    property (its count is kept, not edited by anyone). A refused POST (the label taken)
    moves nothing."""
    client = app_factory(webhook_worker=False)
    owner = register(client)
    path, body = _unit(client, owner)
    property_path = path.removesuffix("/units")
    before = client.get(property_path, headers=owner.headers)
    settings = settings_factory()
    audits, events = _trail(settings, owner.organization_id)

    created = client.post(path, headers=owner.headers, json=body)
    assert created.status_code == 201, created.text
    after = client.get(property_path, headers=owner.headers)
    assert after.json()["unitCount"] == before.json()["unitCount"] + 1
    assert after.json()["version"] == before.json()["version"] + 1
    assert after.headers["etag"] != before.headers["etag"]
    assert after.json()["updatedAt"] > before.json()["updatedAt"]
    unchanged = ("unitCount", "version", "updatedAt", "createdAt")
    assert {k: v for k, v in after.json().items() if k not in unchanged} == {
        k: v for k, v in before.json().items() if k not in unchanged
    }

    unit_id = uuid.UUID(created.json()["id"])
    written = _trail(settings, owner.organization_id)
    new_audits, new_events = written[0][len(audits) :], written[1][len(events) :]
    changes = ["areaSqft", "bathrooms", "bedrooms", "label", "marketRent", "propertyId", "status"]
    assert new_audits == [("unit.created", unit_id, changes)], new_audits
    data = {
        "id": str(unit_id),
        "propertyId": created.json()["propertyId"],
        "label": "7A",
        "bedrooms": 2,
        "bathrooms": "1.5",
        "areaSqft": 720,
        "marketRent": 125000,
        "status": "unavailable",
        "version": 1,
    }
    ((event_type, resource_id, event_data),) = new_events
    assert (event_type, resource_id) == ("unit.created", unit_id)
    assert {k: v for k, v in event_data.items() if k not in ("createdAt", "updatedAt")} == data
    assert set(event_data) == {*data, "createdAt", "updatedAt"}

    refused = client.post(path, headers=owner.headers, json=body)
    assert refused.status_code == 409, refused.text
    assert _trail(settings, owner.organization_id) == written
    assert client.get(property_path, headers=owner.headers).json() == after.json()


# POST /members adds two rows: the user and their membership (an email already registered
# is a 409, so never an existing user), both with `add_new`, as two CTEs of one statement.
def _member_body() -> dict[str, Any]:
    return {
        "email": f"m-{uuid.uuid4().hex[:8]}@example.com",
        "name": "Mo",
        "role": "viewer",
        "password": "long enough password",
    }


def _member_written(
    settings: Settings, user_id: str, organization_id: str, body: bytes
) -> tuple[int, int, list[str], list[str], int]:
    """(the organization's memberships, this user's memberships there, the audit actions of
    the user and of their membership, their event types, Idempotency-Key records holding this
    answer), read from the database."""

    async def read() -> tuple[int, int, list[str], list[str], int]:
        engine = create_engine(settings)
        uid, org = uuid.UUID(user_id), uuid.UUID(organization_id)
        try:
            async with engine.connect() as conn:

                async def count(stmt: Any) -> int:
                    return int((await conn.execute(stmt)).scalar_one())

                members = select(func.count()).select_from(Membership)
                everyone = await count(members.where(Membership.organization_id == org))
                mine = await count(
                    members.where(Membership.organization_id == org, Membership.user_id == uid)
                )
                ids = [uid, *(await conn.execute(
                    select(Membership.id).where(Membership.user_id == uid)
                )).scalars()]  # fmt: skip
                audits = (
                    await conn.execute(
                        select(AuditEvent.action).where(
                            AuditEvent.entity_id.in_(ids), AuditEvent.organization_id == org
                        )
                    )
                ).scalars()
                events = (
                    await conn.execute(
                        select(Event.type).where(
                            Event.resource_id.in_(ids), Event.organization_id == org
                        )
                    )
                ).scalars()
                users = await count(select(func.count()).select_from(User).where(User.id == uid))
                assert users == mine, (users, mine)  # no user without their membership
                records = await count(
                    select(func.count())
                    .select_from(IdempotencyRecord)
                    .where(IdempotencyRecord.organization_id == org)
                    .where(IdempotencyRecord.body == body)
                )
                return everyone, mine, sorted(audits), list(events), records
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _trail(
    settings: Settings, organization_id: str
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The organization's audit rows (action, entity, changes) and events (type, resource,
    data), oldest first."""

    async def read() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        engine = create_engine(settings)
        org = uuid.UUID(organization_id)
        try:
            async with engine.connect() as conn:
                audits = await conn.execute(
                    select(AuditEvent.action, AuditEvent.entity_id, AuditEvent.changes)
                    .where(AuditEvent.organization_id == org)
                    .order_by(AuditEvent.at, AuditEvent.id)
                )
                events = await conn.execute(
                    select(Event.type, Event.resource_id, Event.data)
                    .where(Event.organization_id == org)
                    .order_by(Event.position)
                )
                return [tuple(row) for row in audits], [tuple(row) for row in events]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_a_member_post_checks_then_adds_two_rows_in_two_round_trips(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    database: Any,
    valkey: EmbeddedValkey,
    relays: tuple[Relay, Relay],
) -> None:
    """POST /members, keyed: the email's check (one SELECT, in autocommit), then one
    statement in autocommit (the user, the membership, their audit rows, the membership's
    event and the key's record): two PostgreSQL round trips, no BEGIN, no COMMIT; two
    Redis round trips; a replay sends no statement."""
    client, prefix = _relayed_client(app_factory, database, valkey, relays)
    owner = register(client)
    body, key = _member_body(), {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}

    def send(body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        headers = headers or {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        return client.post("/api/v1/members", headers={**owner.headers, **headers}, json=body)

    for _ in range(2):  # warm up: statements prepared
        assert send(_member_body()).status_code == 201

    response, sql, redis = _counted(relays, prefix, lambda: send(body, key))
    assert response.status_code == 201, response.text
    assert redis == [["EVALSHA"], ["SET", "EVAL", "INCRBY"]], redis
    assert sql == [["SELECT"], ["WITH"]], sql

    settings = settings_factory()
    user_id = response.json()["id"]
    written = _member_written(settings, user_id, owner.organization_id, response.content)
    assert written == (4, 1, ["membership.created", "user.created"], ["membership.created"], 1)

    replay, sql, redis = _counted(relays, prefix, lambda: send(body, key))
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == response.content
    assert (sql, redis) == ([], [["EVALSHA"]])
    assert _member_written(settings, user_id, owner.organization_id, response.content)[:2] == (
        4,
        1,
    )


def test_a_member_post_answers_what_it_wrote(
    app_factory: Callable[..., TestClient[Any]], settings_factory: Callable[..., Settings]
) -> None:
    """On both backends: the answer is the member as read back, who can sign in, with an
    audit row for the user and one for the membership, the membership's event and the key's
    record; a replay adds no second member."""
    client = app_factory(webhook_worker=False)
    owner = register(client)
    body = _member_body()
    key = {**owner.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    created = client.post("/api/v1/members", headers=key, json=body)
    assert created.status_code == 201, created.text
    answer = created.json()
    read = client.get(f"/api/v1/members/{answer['id']}", headers=owner.headers)
    assert read.status_code == 200, read.text
    assert answer == read.json()
    assert created.headers.get("etag") == read.headers.get("etag")
    assert answer["version"] == 1
    written = _member_written(
        settings_factory(), answer["id"], owner.organization_id, created.content
    )
    assert written == (2, 1, ["membership.created", "user.created"], ["membership.created"], 1)

    replay = client.post("/api/v1/members", headers=key, json=body)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == created.content
    written = _member_written(
        settings_factory(), answer["id"], owner.organization_id, created.content
    )
    assert written[:2] == (2, 1)

    client.cookies.clear()
    login = client.post(
        "/api/v1/auth/login", json={"email": body["email"], "password": body["password"]}
    )
    assert login.status_code == 200, login.text


def test_a_bill_naming_a_work_order_locks_it_in_a_transaction(
    app_factory: Callable[..., TestClient[Any]],
    database: Any,
    valkey: EmbeddedValkey,
    relays: tuple[Relay, Relay],
) -> None:
    """A bill that names a work order reads its vendor and property like any bill (one
    SELECT, in autocommit), then locks the work order (FOR UPDATE) in the write's
    transaction: its status decides the answer (a cancelled one is a 409) and a done one
    moves to invoiced, which no concurrent transition may interleave with."""
    client, prefix = _relayed_client(app_factory, database, valkey, relays)
    owner = register(client)
    path, body = _bill(client, owner)
    orders, order_body = _work_order(client, owner)
    property_id = client.get(orders.rsplit("/", 1)[0], headers=owner.headers).json()["propertyId"]
    body = {**body, "propertyId": property_id, "vendorId": order_body["vendorId"]}

    def send() -> Any:
        made = client.post(orders, headers=owner.headers, json=order_body)
        assert made.status_code == 201, made.text
        key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        bill = {**body, "workOrderId": made.json()["id"]}
        return lambda: client.post(path, headers={**owner.headers, **key}, json=bill)

    for _ in range(2):  # warm up: statements prepared
        assert send()().status_code == 201
    response, sql, _ = _counted(relays, prefix, send())
    assert response.status_code == 201, response.text
    assert sql == [["SELECT"], ["BEGIN"], ["SELECT"], ["INSERT"], ["WITH"], ["COMMIT"]], sql


def test_a_lease_post_answers_what_it_wrote(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
) -> None:
    """On both backends: a lease naming two tenants, one of them twice, is written with each
    tenant once, in the order named; the answer, built without reading the lease back, is
    the lease as a GET then shows it. The trail is what a lease POST always wrote: one audit
    row and one event, the lease's (its tenants' rows have neither), nothing posted before
    activation (the deposit charge, the escalation's rent changes); a replay writes nothing."""
    client = app_factory(webhook_worker=False)
    owner = register(client)
    path, body = _lease(client, owner)
    first, second, _ = body["tenantIds"]
    settings = settings_factory()
    audits, events = _trail(settings, owner.organization_id)
    key = {**owner.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}

    created = client.post(path, headers=key, json=body)
    assert created.status_code == 201, created.text
    answer = created.json()
    assert answer["tenantIds"] == [first, second]
    assert (answer["status"], answer["version"]) == ("draft", 1)
    read = client.get(f"{path}/{answer['id']}", headers=owner.headers)
    assert read.status_code == 200, read.text
    assert answer == read.json()
    assert created.headers.get("etag") == read.headers.get("etag")
    rent_changes = client.get(f"{path}/{answer['id']}/rent-changes", headers=owner.headers)
    assert rent_changes.json() == [], rent_changes.text  # the escalation's: at activation
    ledger = client.get(f"{path}/{answer['id']}/ledger", headers=owner.headers)
    assert ledger.json()["entries"] == [], ledger.text  # the deposit's charge: at activation

    lease_id = uuid.UUID(answer["id"])
    written = _trail(settings, owner.organization_id)
    new_audits, new_events = written[0][len(audits) :], written[1][len(events) :]
    changes = [
        "chargeDeposit", "deposit", "dueDay", "endDate", "escalationBasisPoints",
        "escalationEveryMonths", "graceDays", "lateFeeAmount", "lateFeeKind", "rent",
        "startDate", "status", "unitId",
    ]  # fmt: skip
    assert new_audits == [("lease.created", lease_id, changes)], new_audits
    # The event's data: the row's columns as written (never-set ones left out), as before.
    data = {
        "id": answer["id"],
        "unitId": answer["unitId"],
        "status": "draft",
        "startDate": "2026-01-01",
        "endDate": "2026-12-31",
        "rent": 120000,
        "deposit": 240000,
        "dueDay": 1,
        "graceDays": 5,
        "lateFeeKind": "flat",
        "lateFeeAmount": 5000,
        "chargeDeposit": True,
        "escalationBasisPoints": 300,
        "escalationEveryMonths": 6,
        "version": 1,
    }
    ((event_type, resource_id, event_data),) = new_events
    assert (event_type, resource_id) == ("lease.created", lease_id)
    assert {k: v for k, v in event_data.items() if k not in ("createdAt", "updatedAt")} == data
    assert set(event_data) == {*data, "createdAt", "updatedAt"}

    replay = client.post(path, headers=key, json=body)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == created.content
    assert _trail(settings, owner.organization_id) == written


# The lease money POSTs read what their rules need without a lock, then write everything as
# one statement in autocommit, guarded by the version of the row they read (a ledger entry:
# the lease's totals row; a recurring charge: the lease's row): the read, the tail.
# (path under the lease, body, model, entity type, the read's verb)
LEASE_MONEY: dict[str, tuple[str, dict[str, Any], type[Base], str, str]] = {
    "charges": ("charges", {"kind": "utility", "amount": 4200, "dueDate": "2026-02-01"},
                LedgerEntry, "ledger_entry", "SELECT"),
    "credits": ("credits", {"amount": 1500, "description": "Goodwill"},
                LedgerEntry, "ledger_entry", "SELECT"),
    "payments": ("payments", {"amount": 9900, "receivedOn": "2026-01-02",
                              "method": "bank_transfer", "reference": "TX-1"},
                 LedgerEntry, "ledger_entry", "SELECT"),
    "recurring-charges": ("recurring-charges", {"kind": "parking", "amount": 5000,
                                                "startDate": "2026-02-01"},
                          RecurringCharge, "recurring_charge", "SELECT"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(LEASE_MONEY))
def test_a_lease_money_post_is_two_round_trips(
    app_factory: Callable[..., TestClient[Any]],
    database: Any,
    valkey: EmbeddedValkey,
    relays: tuple[Relay, Relay],
    name: str,
) -> None:
    """Each, keyed, steady state: the read, the tail (the row, its audit row, its event, the
    guard, the lease's totals and a payment's day total for a ledger entry, and the key's
    record); two Redis round trips; a replay sends no statement. (Before: charge 9, credit
    10, payment 10, recurring 5; then 4 each: BEGIN, a locking read, the tail, COMMIT.)"""
    what, body, _model, _entity, verb = LEASE_MONEY[name]
    client, prefix = _relayed_client(app_factory, database, valkey, relays)
    owner = register(client)
    lease = active_lease(client, owner)
    path = f"/api/v1/leases/{lease['id']}/{what}"
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}

    def send(headers: dict[str, str] | None = None) -> Any:
        headers = headers or {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        return client.post(path, headers={**owner.headers, **headers}, json=body)

    for _ in range(2):  # warm up: statements prepared
        assert send().status_code == 201

    response, sql, redis = _counted(relays, prefix, lambda: send(key))
    assert response.status_code == 201, response.text
    assert redis == [["EVALSHA"], ["SET", "EVAL", "INCRBY"]], redis
    assert sql == [[verb], ["WITH"]], sql

    replay, sql, redis = _counted(relays, prefix, lambda: send(key))
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == response.content
    assert (sql, redis) == ([], [["EVALSHA"]])


def _ledger_state(settings: Settings, lease_id: str, organization_id: str) -> tuple[Any, ...]:
    """(the lease's entries, its lease_balances row, the organization's payments by day), as
    stored: what a replay must leave as it is."""

    async def read() -> tuple[Any, ...]:
        engine = create_engine(settings)
        lease, org = uuid.UUID(lease_id), uuid.UUID(organization_id)
        try:
            async with engine.connect() as conn:
                entries = await conn.execute(
                    select(func.count()).where(LedgerEntry.lease_id == lease)
                )
                balances = await conn.execute(
                    select(
                        LeaseBalance.balance,
                        LeaseBalance.deposit_held,
                        LeaseBalance.oldest_unpaid_on,
                    ).where(LeaseBalance.lease_id == lease)
                )
                days = await conn.execute(
                    select(PaymentsByDay.on_date, PaymentsByDay.collected)
                    .where(PaymentsByDay.organization_id == org)
                    .order_by(PaymentsByDay.on_date)
                )
                return entries.scalar_one(), tuple(balances.one()), [tuple(d) for d in days]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_lease_money_posts_answer_what_a_get_then_shows(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
) -> None:
    """On both backends: each entry's answer (every field, balanceAfter included) is the
    entry as the ledger then shows it; the lease's maintained totals are the ledger's; one
    audit row and one event per entry, the key's record; a replay writes nothing."""
    client = app_factory(webhook_worker=False)
    owner = register(client)
    lease = active_lease(client, owner)
    settings = settings_factory()
    answers = []
    for name in ("charges", "payments", "credits", "payments", "charges"):
        what, body, model, entity, _ = LEASE_MONEY[name]
        path = f"/api/v1/leases/{lease['id']}/{what}"
        key = {**owner.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        created = client.post(path, headers=key, json=body)
        assert created.status_code == 201, created.text
        answers.append(created.json())
        book = client.get(f"/api/v1/leases/{lease['id']}/ledger", headers=owner.headers)
        assert book.status_code == 200, book.text
        shown = {e["id"]: e for e in book.json()["entries"]}
        assert created.json() == shown[created.json()["id"]]
        assert created.json()["balanceAfter"] == book.json()["balance"]
        written = _written(
            settings, model, created.json()["id"], owner.organization_id, created.content
        )
        assert written[1:] == (1, [f"{entity}.created"], [f"{entity}.posted"], 1), written
        before = _ledger_state(settings, lease["id"], owner.organization_id)
        replay = client.post(path, headers=key, json=body)
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.content == created.content
        assert _ledger_state(settings, lease["id"], owner.organization_id) == before
    book = client.get(f"/api/v1/leases/{lease['id']}/ledger", headers=owner.headers).json()
    entries, totals, days = _ledger_state(settings, lease["id"], owner.organization_id)
    assert entries == len(book["entries"])
    assert totals[:2] == (book["balance"], book["depositHeld"])
    paid = sum(-e["amount"] for e in book["entries"] if e["type"] == "payment")
    assert days == [(date(2026, 1, 2), paid)]


def test_a_recurring_charge_answers_what_its_list_then_shows(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
) -> None:
    """On both backends (written with the commit's one statement on PostgreSQL, flushed at
    the commit on SQLite): the answer is the charge as the lease's list then shows it, with
    one audit row, one event and the key's record; a replay writes no second row."""
    what, body, model, entity, _ = LEASE_MONEY["recurring-charges"]
    client = app_factory(webhook_worker=False)
    owner = register(client)
    lease = active_lease(client, owner)
    path = f"/api/v1/leases/{lease['id']}/{what}"
    key = {**owner.headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    created = client.post(path, headers=key, json=body)
    assert created.status_code == 201, created.text
    listed = client.get(path, headers=owner.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json() == [created.json()]
    assert created.json()["version"] == 1
    settings = settings_factory()
    written = _written(
        settings, model, created.json()["id"], owner.organization_id, created.content
    )
    assert written == (1, 1, [f"{entity}.created"], [f"{entity}.created"], 1), written
    replay = client.post(path, headers=key, json=body)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == created.content
    assert client.get(path, headers=owner.headers).json() == [created.json()]


def test_a_unit_delete_moves_its_property_count_in_the_tail(
    app_factory: Callable[..., TestClient[Any]],
    database: Any,
    valkey: EmbeddedValkey,
    relays: tuple[Relay, Relay],
) -> None:
    """DELETE /units/{id}: BEGIN, the unit, its leases' statuses, the DELETE (a flush: its
    audit row and event come from the ORM's delete), then the property's count with the
    tail (was an UPDATE of its own: 7 round trips), COMMIT. Two would need the unit's
    DELETE in the tail statement too, its audit row and event written without the flush."""
    client, prefix = _relayed_client(app_factory, database, valkey, relays)
    owner = register(client)
    prop = create_property(client, owner)

    def delete() -> Any:
        unit = create_unit(client, owner, prop["id"])
        return lambda: client.delete(f"/api/v1/units/{unit['id']}", headers=owner.headers)

    for _ in range(2):  # warm up: statements prepared
        assert delete()().status_code == 204
    response, sql, redis = _counted(relays, prefix, delete())
    assert response.status_code == 204, response.text
    assert redis == [["EVALSHA"], ["INCRBY"]], redis
    assert sql == [["BEGIN"], ["SELECT"], ["SELECT"], ["DELETE"], ["WITH"], ["COMMIT"]], sql
    shown = client.get(f"/api/v1/properties/{prop['id']}", headers=owner.headers).json()
    assert shown["unitCount"] == 0
