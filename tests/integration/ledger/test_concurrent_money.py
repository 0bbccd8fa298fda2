"""Money posted at once on one lease: nothing lost, nothing doubled, every answer exact.

A charge, credit or payment POST reads its lease's lines and the version of its
`lease_balances` row without a lock (haven.ledger.repository `seen_for_entry`), and its
commit writes only if the row is still that version, or nothing: the request then runs
again, locking the row and reading the lines in one statement (`lock_for_entry`, as a
reversal does); those lines are the ones as of the lock only when no writer committed while
it waited, which it checks, reading them again otherwise. These tests make writers meet on
one lease and compare what is stored (entries, the maintained totals, the day's payments)
and each answer with the ledger.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import event, func, insert, select, text

from haven.config import Settings
from haven.db.engine import create_engine
from haven.ledger import repository
from haven.ledger.aging import Line
from haven.ledger.totals import Noted, apply, totals_of
from haven.models import AuditEvent, Event, LeaseBalance, LedgerEntry, PaymentsByDay
from haven.services import services_of
from support import Account, assert_problem, register, until_a_statement_waits_for_a_lock
from support_leases import active_lease, ledger, pay


def _stored(settings: Settings, lease_id: str, organization_id: str) -> tuple[Any, ...]:
    """(the lease's lease_balances row, the organization's payments of 2026-01-02)."""

    async def read() -> tuple[Any, ...]:
        engine = create_engine(settings)
        try:
            async with engine.connect() as conn:
                row = (
                    await conn.execute(
                        select(
                            LeaseBalance.balance,
                            LeaseBalance.deposit_held,
                            LeaseBalance.oldest_unpaid_on,
                        ).where(LeaseBalance.lease_id == uuid.UUID(lease_id))
                    )
                ).one()
                paid = (
                    await conn.execute(
                        select(func.coalesce(func.sum(PaymentsByDay.collected), 0)).where(
                            PaymentsByDay.organization_id == uuid.UUID(organization_id),
                            PaymentsByDay.on_date == date(2026, 1, 2),
                        )
                    )
                ).scalar_one()
                return tuple(row), paid
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _expected(book: dict[str, Any]) -> tuple[int, int, date | None]:
    """The lease's totals as haven.ledger.aging computes them from the ledger shown."""
    lines = [
        Line(
            id=uuid.UUID(e["id"]),
            type=e["type"],
            amount=e["amount"],
            date=date.fromisoformat(e["date"]),
            reverses_id=uuid.UUID(e["reverses"]) if e["reverses"] else None,
            created_at=datetime.fromisoformat(e["createdAt"]),
            kind=e["kind"],
        )
        for e in book["entries"]
    ]
    t = totals_of(lines)
    return t.balance, t.deposit_held, t.oldest_unpaid_on


def _check_against_ledger(
    client: TestClient[Any],
    owner: Account,
    settings: Settings,
    lease_id: str,
    answers: list[dict[str, Any]],
) -> dict[str, Any]:
    book = ledger(client, owner, lease_id)
    shown = {e["id"]: e for e in book["entries"]}
    for answer in answers:  # balanceAfter too: the lock orders the entries as posted
        assert answer == shown[answer["id"]], (answer, shown.get(answer["id"]))
    totals, paid = _stored(settings, lease_id, owner.organization_id)
    assert totals == _expected(book), (totals, book)
    reversed_ = {e["reverses"] for e in book["entries"] if e["type"] == "reversal"}
    assert paid == sum(
        -e["amount"] for e in book["entries"] if e["type"] == "payment" and e["id"] not in reversed_
    )
    return book


async def _write_a_charge(conn: Any, org_id: uuid.UUID, lease_id: uuid.UUID) -> None:
    """A 777 charge dated 2026-01-10 and the lease's totals with it, on `conn`, as every
    ledger writer writes them (uncommitted)."""
    await conn.execute(
        insert(LedgerEntry).values(
            organization_id=org_id,
            lease_id=lease_id,
            type="charge",
            kind="utility",
            amount=777,
            date=date(2026, 1, 10),
        )
    )
    noted = Noted(org_id, lease_id, "charge", 777, date(2026, 1, 10), None)
    await conn.run_sync(lambda sync: apply(sync, [noted]))


def _while_a_charge_commits(
    settings: Settings, lease_id: uuid.UUID, org_id: uuid.UUID, send: Callable[[], Any]
) -> Any:
    """`send()`'s answer, sent while another connection holds the lease's totals row and
    has written a 777 charge (dated 2026-01-10) and its totals: committed once the request
    waits for a lock."""

    async def scenario() -> Any:
        engine = create_engine(settings)
        try:
            async with engine.connect() as other, engine.connect() as watcher:
                await other.execute(
                    select(LeaseBalance.lease_id)
                    .where(LeaseBalance.lease_id == lease_id)
                    .with_for_update()
                )
                await _write_a_charge(other, org_id, lease_id)
                waiting = asyncio.create_task(asyncio.to_thread(send))
                await until_a_statement_waits_for_a_lock(watcher)
                await other.commit()
                return await waiting
        finally:
            await engine.dispose()

    return asyncio.run(scenario())


def test_concurrent_payments_on_one_lease_add_up_exactly(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
) -> None:
    """Four instances post 24 payments (and a charge and a credit each) on one lease at once,
    then send every payment's Idempotency-Key again: each payment is on the ledger once, the
    balance is the sum, each answer is its entry as the ledger shows it (balanceAfter
    included), and the maintained totals and the day's payments are the ledger's."""
    instances = [app_factory(instance_id=f"api-{n}") for n in range(4)]
    owner = register(instances[0])
    lease = active_lease(instances[0], owner)
    start = ledger(instances[0], owner, lease["id"])["balance"]
    path = f"/api/v1/leases/{lease['id']}"
    barrier = threading.Barrier(len(instances))

    def post(client: TestClient[Any], what: str, body: dict[str, Any], key: str) -> Any:
        headers = {**owner.headers, "Idempotency-Key": key}
        return client.post(f"{path}/{what}", headers=headers, json=body)

    def burst(n: int) -> list[tuple[str, dict[str, Any], str, Any]]:
        client = instances[n]
        barrier.wait(timeout=30)
        sent = []
        for i in range(6):
            body = {"amount": 1000 * (n + 1) + i, "receivedOn": "2026-01-02", "method": "cash"}
            sent.append(("payments", body, f"k-{uuid.uuid4().hex}"))
        sent.insert(2, ("charges", {"kind": "utility", "amount": 333, "dueDate": "2026-01-20"},
                        f"k-{uuid.uuid4().hex}"))  # fmt: skip
        sent.insert(5, ("credits", {"amount": 111}, f"k-{uuid.uuid4().hex}"))
        return [(what, body, key, post(client, what, body, key)) for what, body, key in sent]

    with ThreadPoolExecutor(len(instances)) as pool:
        results = [r for rs in pool.map(burst, range(len(instances))) for r in rs]
    assert [r.status_code for *_, r in results] == [201] * len(results), [
        r.text for *_, r in results if r.status_code != 201
    ]
    answers = [r.json() for *_, r in results]
    settings = settings_factory()
    book = _check_against_ledger(instances[0], owner, settings, lease["id"], answers)
    payments = [body["amount"] for what, body, _, _ in results if what == "payments"]
    assert len([e for e in book["entries"] if e["type"] == "payment"]) == len(payments) == 24
    assert book["balance"] == start + 4 * 333 - 4 * 111 - sum(payments)
    assert len({a["balanceAfter"] for a in answers}) == len(answers)  # one after another

    def again(n: int) -> list[Any]:  # every key once more, to another instance
        client = instances[(n + 1) % len(instances)]
        return [post(client, what, body, key) for what, body, key, _ in results[n::4]]

    with ThreadPoolExecutor(len(instances)) as pool:
        replays = [r for rs in pool.map(again, range(len(instances))) for r in rs]
    assert {r.headers.get("idempotent-replayed") for r in replays} == {"true"}
    assert ledger(instances[0], owner, lease["id"]) == book
    assert _check_against_ledger(instances[0], owner, settings, lease["id"], answers) == book


def test_a_payment_that_waited_for_the_lock_reads_the_lines_again(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    database: Any,
) -> None:
    """Another writer holds the lease's totals lock and commits a charge while the payment
    waits for it: the payment's statement read the lines before that commit, sees that the
    row it locked is newer than the one it read, and reads them again. The maintained
    totals then include both entries, and the answer's balanceAfter is the ledger's."""
    if database.backend != "postgresql":
        pytest.skip("SQLite's writer holds the database's lock from BEGIN: no such wait")
    client = app_factory()
    owner = register(client)
    lease = active_lease(client, owner)
    settings = settings_factory()
    lease_id, org_id = uuid.UUID(lease["id"]), uuid.UUID(owner.organization_id)
    assert pay(client, owner, lease["id"], 100).status_code == 201  # statements prepared
    start = ledger(client, owner, lease["id"])["balance"]

    response = _while_a_charge_commits(
        settings, lease_id, org_id, lambda: pay(client, owner, lease["id"], 500)
    )
    assert response.status_code == 201, response.text
    book = _check_against_ledger(client, owner, settings, lease["id"], [response.json()])
    assert [e["amount"] for e in book["entries"]][-2:] == [777, -500]
    assert response.json()["balanceAfter"] == book["balance"] == start + 777 - 500


def test_a_payment_waits_for_a_lease_row_writer_before_it_locks_the_totals(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    database: Any,
) -> None:
    """A writer that locks the lease's row first and its totals row second (a deposit
    disposition, a rent change's re-bill, a billing run) and a payment meet in that order
    too: the payment locks the lease's row (FOR KEY SHARE) before its totals row, so while
    the writer holds the lease's row the payment holds nothing the writer needs. The writer
    then locks the totals row at once (not a deadlock: before, PostgreSQL aborted the
    payment with 40P01), and once it is done the payment posts, once, with its exact
    balance; the same request sent again is its replay."""
    if database.backend != "postgresql":
        pytest.skip("SQLite's writer holds the database's lock from BEGIN: no such wait")
    client = app_factory()
    owner = register(client)
    lease = active_lease(client, owner)
    settings = settings_factory()
    lease_id = uuid.UUID(lease["id"])
    assert pay(client, owner, lease["id"], 100).status_code == 201  # its totals row exists
    before = ledger(client, owner, lease["id"])
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}

    async def scenario() -> tuple[Any, Any]:
        engine = create_engine(settings)
        try:
            async with engine.connect() as other, engine.connect() as watcher:
                await other.execute(text("SET lock_timeout = '5s'"))  # a wait fails the test
                await other.execute(
                    text("SELECT id FROM leases WHERE id = :id FOR UPDATE"), {"id": lease_id}
                )
                waiting = asyncio.create_task(
                    asyncio.to_thread(pay, client, owner, lease["id"], 500, headers=key)
                )
                await until_a_statement_waits_for_a_lock(watcher)
                totals = await other.execute(
                    select(LeaseBalance.balance)
                    .where(LeaseBalance.lease_id == lease_id)
                    .with_for_update()
                )
                balance = totals.scalar_one()
                await other.rollback()
                return balance, await waiting
        finally:
            await engine.dispose()

    locked_balance, response = asyncio.run(scenario())
    assert locked_balance == before["balance"]
    assert response.status_code == 201, response.text
    again = pay(client, owner, lease["id"], 500, headers=key)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    book = _check_against_ledger(client, owner, settings, lease["id"], [response.json()])
    assert response.json()["balanceAfter"] == book["balance"] == before["balance"] - 500
    assert [e["amount"] for e in book["entries"]].count(-500) == 1


def _in_a_deadlock(
    settings: Settings, lease_id: uuid.UUID, send: Callable[[], Any], *, wait_first: bool
) -> Any:
    """Another connection takes the lease's locks in the order no writer of Haven's takes
    them (an operator's script, a future writer): its totals row, then, once `send`'s
    request waits for it, the lease's own row. PostgreSQL breaks the deadlock by aborting
    the request's statement (the other side waits a minute before it looks). `wait_first`:
    the answer is awaited before the other side lets go, else after."""

    async def scenario() -> Any:
        engine = create_engine(settings)
        try:
            async with engine.connect() as other, engine.connect() as watcher:
                await other.execute(text("SET deadlock_timeout = '60s'"))
                await other.execute(
                    select(LeaseBalance.lease_id)
                    .where(LeaseBalance.lease_id == lease_id)
                    .with_for_update()
                )
                waiting = asyncio.create_task(asyncio.to_thread(send))
                await until_a_statement_waits_for_a_lock(watcher)
                await other.execute(
                    text("SELECT id FROM leases WHERE id = :id FOR UPDATE"), {"id": lease_id}
                )
                if wait_first:
                    answer = await waiting
                    await other.rollback()
                    return answer
                await other.rollback()
                return await waiting
        finally:
            await engine.dispose()

    return asyncio.run(scenario())


def test_a_deadlock_is_a_409_and_the_retry_posts_once(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    database: Any,
) -> None:
    """A writer that locks (a reversal) in a deadlock: PostgreSQL aborts its transaction.
    The answer is a 409 problem, not a 500, nothing of it is written, and the same request
    sent again posts it once."""
    if database.backend != "postgresql":
        pytest.skip("SQLite's writer holds the database's lock from BEGIN: no such wait")
    client = app_factory()
    owner = register(client)
    lease = active_lease(client, owner)
    settings = settings_factory()
    paid = pay(client, owner, lease["id"], 100)
    assert paid.status_code == 201  # its totals row exists
    before = ledger(client, owner, lease["id"])
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}

    def reverse() -> Any:
        return client.post(
            f"/api/v1/ledger-entries/{paid.json()['id']}/reverse",
            headers={**owner.headers, **key},
            json={"description": "bounced"},
        )

    response = _in_a_deadlock(settings, uuid.UUID(lease["id"]), reverse, wait_first=True)
    assert_problem(response, 409, "conflict")
    assert ledger(client, owner, lease["id"]) == before
    retried = reverse()
    assert retried.status_code == 201, retried.text
    again = reverse()
    assert again.headers["idempotent-replayed"] == "true"
    book = _check_against_ledger(client, owner, settings, lease["id"], [retried.json()])
    assert book["balance"] == before["balance"] + 100
    assert [e["type"] for e in book["entries"]].count("reversal") == 1


def test_a_payment_in_a_deadlock_posts_once_when_the_other_side_ends(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    database: Any,
) -> None:
    """A payment reads without a lock and writes in one statement in autocommit; aborted by
    PostgreSQL in a deadlock, that statement wrote nothing and is sent again, which waits
    for the other side and then posts the payment, once, with its exact balance."""
    if database.backend != "postgresql":
        pytest.skip("SQLite's writer holds the database's lock from BEGIN: no such wait")
    client = app_factory()
    owner = register(client)
    lease = active_lease(client, owner)
    settings = settings_factory()
    assert pay(client, owner, lease["id"], 100).status_code == 201  # its totals row exists
    before = ledger(client, owner, lease["id"])
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}

    def payment() -> Any:
        return pay(client, owner, lease["id"], 500, headers=key)

    response = _in_a_deadlock(settings, uuid.UUID(lease["id"]), payment, wait_first=False)
    assert response.status_code == 201, response.text
    again = payment()
    assert again.headers["idempotent-replayed"] == "true"
    book = _check_against_ledger(client, owner, settings, lease["id"], [response.json()])
    assert response.json()["balanceAfter"] == book["balance"] == before["balance"] - 500
    assert [e["amount"] for e in book["entries"]].count(-500) == 1


def test_a_reversal_takes_the_lease_locks_and_answers_the_ledger_balance(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    database: Any,
) -> None:
    """A reversal, like a payment, locks its lease before it reads: while another writer
    holds the lease's totals row and then commits a charge, the reversal waits, and its
    answer (balanceAfter included) is its entry as the ledger shows it afterwards. Before,
    it flushed without the lock and summed the committed entries (the charge not among
    them): its balanceAfter left out a charge the ledger puts before it."""
    if database.backend != "postgresql":
        pytest.skip("SQLite's writer holds the database's lock from BEGIN: no such wait")
    client = app_factory()
    owner = register(client)
    lease = active_lease(client, owner)
    settings = settings_factory()
    lease_id, org_id = uuid.UUID(lease["id"]), uuid.UUID(owner.organization_id)
    paid = pay(client, owner, lease["id"], 300)
    assert paid.status_code == 201
    start = ledger(client, owner, lease["id"])["balance"]

    def reverse() -> Any:
        return client.post(
            f"/api/v1/ledger-entries/{paid.json()['id']}/reverse",
            headers=owner.headers,
            json={"description": "bounced"},
        )

    response = _while_a_charge_commits(settings, lease_id, org_id, reverse)
    assert response.status_code == 201, response.text
    book = _check_against_ledger(client, owner, settings, lease["id"], [response.json()])
    assert [e["amount"] for e in book["entries"]][-2:] == [777, 300]
    assert response.json()["balanceAfter"] == book["balance"] == start + 777 + 300
    again = reverse()
    assert_problem(again, 409, "conflict")
    assert ledger(client, owner, lease["id"]) == book


def _racing_read(settings: Settings, calls: list[int]) -> Callable[..., Any]:
    """`seen_for_entry`, then (the first time) another writer commits a 777 charge on the
    lease: the read's version is stale at the tail."""
    real = repository.seen_for_entry

    async def racing(reader: Any, organization_id: uuid.UUID, lease_id: uuid.UUID) -> Any:
        read = await real(reader, organization_id, lease_id)
        calls.append(1)
        if len(calls) == 1:
            engine = create_engine(settings)
            try:
                async with engine.begin() as other:
                    await _write_a_charge(other, organization_id, lease_id)
            finally:
                await engine.dispose()
        return read

    return racing


def _counts(settings: Settings, entry_id: str) -> tuple[int, int]:
    """(events, audit rows) of the entry."""

    async def read() -> tuple[int, int]:
        engine = create_engine(settings)
        try:
            async with engine.connect() as conn:
                eid = uuid.UUID(entry_id)
                events = await conn.scalar(
                    select(func.count()).select_from(Event).where(Event.resource_id == eid)
                )
                audits = await conn.scalar(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.entity_id == eid)
                )
                return int(events or 0), int(audits or 0)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_a_stale_first_run_posts_once_with_the_other_writers_charge_in_its_balance(
    app_factory: Callable[..., TestClient[Any]],
    settings_factory: Callable[..., Settings],
    database: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another writer commits a charge on the lease between the payment's unlocked read and
    its commit: the guard finds the totals row changed, nothing of the first run is written,
    and the second run locks (it does not read unlocked again): one payment, one event, one
    audit row, its balanceAfter counting the charge, the key's replay its answer. The first
    run's tail is sent once (the guard's error is not sent again to learn what it means),
    and the lease's next payment locks at once (`CONTENDED`)."""
    if database.backend != "postgresql":
        pytest.skip("the unlocked read is PostgreSQL's")
    client = app_factory()
    settings = settings_factory()
    owner = register(client)
    lease = active_lease(client, owner)
    assert pay(client, owner, lease["id"], 100).status_code == 201
    before = ledger(client, owner, lease["id"])["balance"]
    calls: list[int] = []
    monkeypatch.setattr(repository, "seen_for_entry", _racing_read(settings, calls))
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    engine = services_of(client.app).engine.sync_engine  # the instance's, not the writer's
    event.listen(engine, "before_cursor_execute", note)
    try:
        response = pay(client, owner, lease["id"], 500, headers=key)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert response.status_code == 201, response.text
    # The unlocked read, the first run's tail (Stale); the locking read, the tail.
    assert sent == ["SELECT", "WITH", "WITH", "WITH"], sent
    assert len(calls) == 1  # the second run locked instead
    assert response.json()["balanceAfter"] == before + 777 - 500
    book = ledger(client, owner, lease["id"])
    assert [e["amount"] for e in book["entries"]].count(-500) == 1
    assert _counts(settings, response.json()["id"]) == (1, 1)  # one event, one audit row
    again = pay(client, owner, lease["id"], 500, headers=key)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == response.json()

    # The lease is contended lately: its next payment locks first (no wasted first run);
    # another lease's reads without a lock.
    sent.clear()
    event.listen(engine, "before_cursor_execute", note)
    try:
        assert pay(client, owner, lease["id"], 40).status_code == 201
        locking = list(sent)
        sent.clear()
        assert pay(client, owner, active_lease(client, owner)["id"], 40).status_code == 201
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert locking == ["WITH", "WITH"], locking  # the locking read, the tail
    assert sent[-2:] == ["SELECT", "WITH"], sent
