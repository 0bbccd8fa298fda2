"""The dashboard from maintained totals equals the old ledger scan (issue 19).

Seeded random portfolios are written through the real API: leases starting mid-month,
with and without an end, deposits charged at activation, rent changes past and future,
charges, partial payments (some dated this month, some not), credits, reversals of any
entry, billing runs, terminations with their adjustments and deposit dispositions. After
each round the dashboard's JSON must equal what the old computation (tests/
support_dashboard.py: every line read, FIFO aging per lease in Python) gives.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from litestar.testing import TestClient
from sqlalchemy import insert, select, text

from haven.config import load_settings
from haven.db.migrate import alembic_config, upgrade
from haven.ledger import totals
from haven.models import LeaseBalance, LedgerEntry
from haven.services import services_of
from support import Account, register
from support_dashboard import as_json, old_compute
from support_leases import active_lease, ledger, new_unit, post_entry


def _dashboard(client: TestClient[Any], account: Account) -> dict[str, Any]:
    response = client.get("/api/v1/dashboard", headers=account.headers)
    assert response.status_code == 200, response.text
    body = dict(response.json())
    body.pop("generatedAt")
    return body


def _oracle(client: TestClient[Any], account: Account) -> dict[str, Any]:
    services = services_of(client.app)

    async def run() -> dict[str, Any]:
        async with services.sessionmaker() as session:
            return as_json(await old_compute(session, uuid.UUID(account.organization_id)))

    return client.blocking_portal.call(run)


class Scenario:
    def __init__(self, client: TestClient[Any], account: Account, seed: int) -> None:
        self.client, self.account = client, account
        self.rng = random.Random(seed)
        self.today = datetime.now(UTC).date()
        self.leases: list[dict[str, Any]] = []
        self.entries: dict[str, list[str]] = {}  # lease id -> ids of entries not reversals
        self.reversed: set[str] = set()

    def day(self, low: int, high: int) -> date:
        return self.today + timedelta(days=self.rng.randint(low, high))

    def new_lease(self) -> None:
        start = self.day(-400, -3)
        end = None if self.rng.random() < 0.3 else self.day(-2, 120)
        if end is not None and end <= start:
            end = start + timedelta(days=40)
        changes: dict[str, Any] = {
            "startDate": start.isoformat(),
            "endDate": end.isoformat() if end else None,
            "rent": self.rng.randrange(50_000, 200_000, 100),
            "deposit": self.rng.choice([0, 100_000, 150_000]),
            "chargeDeposit": self.rng.random() < 0.6,
            "dueDay": self.rng.randint(1, 28),
            "graceDays": self.rng.randint(0, 10),
        }
        lease = active_lease(self.client, self.account, **changes)
        self.leases.append(lease)
        self.entries[lease["id"]] = [
            e["id"] for e in ledger(self.client, self.account, lease["id"])["entries"]
        ]

    def act(self) -> None:
        lease = self.rng.choice(self.leases)
        lid, path = lease["id"], f"/api/v1/leases/{lease['id']}"
        headers = self.account.headers
        what = self.rng.random()
        if what < 0.25:
            entry = post_entry(
                self.client, self.account, lid, "charges",
                kind=self.rng.choice(["rent", "utility", "other"]),
                amount=self.rng.randrange(1_000, 150_000, 100),
                dueDate=self.day(-120, 40).isoformat(),
            )  # fmt: skip
            self.entries[lid].append(entry["id"])
        elif what < 0.55:
            month_start = self.today.replace(day=1)
            on = self.rng.choice([self.day(-60, 0), month_start, self.today, self.day(1, 5)])
            entry = post_entry(
                self.client, self.account, lid, "payments",
                amount=self.rng.randrange(1_000, 200_000, 100),
                receivedOn=min(on, self.today + timedelta(days=5)).isoformat(),
                method="bank_transfer",
            )  # fmt: skip
            self.entries[lid].append(entry["id"])
        elif what < 0.65:
            entry = post_entry(
                self.client, self.account, lid, "credits",
                amount=self.rng.randrange(500, 50_000, 100), description="Goodwill",
            )  # fmt: skip
            self.entries[lid].append(entry["id"])
        elif what < 0.8:
            live = [e for e in self.entries[lid] if e not in self.reversed]
            if live:
                target = self.rng.choice(live)
                response = self.client.post(
                    f"/api/v1/ledger-entries/{target}/reverse", headers=headers
                )
                assert response.status_code == 201, response.text
                self.reversed.add(target)
        elif what < 0.9:
            start = date.fromisoformat(lease["startDate"])
            on = max(start + timedelta(days=1), self.day(-30, 60))
            if lease["endDate"] and on >= date.fromisoformat(lease["endDate"]):
                return
            response = self.client.post(
                f"{path}/rent-changes",
                headers=headers,
                json={
                    "effectiveDate": on.isoformat(),
                    "rent": self.rng.randrange(50_000, 250_000, 100),
                },
            )
            assert response.status_code in (201, 409, 422), response.text
        elif what < 0.95:
            response = self.client.post(
                "/api/v1/billing/run", headers=headers, json={"date": self.today.isoformat()}
            )
            assert response.status_code == 200, response.text
        else:
            self.terminate(lease)

    def terminate(self, lease: dict[str, Any]) -> None:
        start = date.fromisoformat(lease["startDate"])
        on = max(start, self.day(-20, 0))
        response = self.client.post(
            f"/api/v1/leases/{lease['id']}/terminate",
            headers=self.account.headers,
            json={"date": on.isoformat()},
        )
        if response.status_code != 200:
            return
        self.leases.remove(lease)
        statement = self.client.get(
            f"/api/v1/leases/{lease['id']}/deposit-statement", headers=self.account.headers
        )
        held = statement.json().get("depositHeld", 0) if statement.status_code == 200 else 0
        if held:
            deduct = self.rng.randint(0, held)
            body: dict[str, Any] = {"refundMethod": "check"}
            if deduct:
                body["deductions"] = [{"amount": deduct, "reason": "Cleaning"}]
            response = self.client.post(
                f"/api/v1/leases/{lease['id']}/deposit-disposition",
                headers=self.account.headers,
                json=body,
            )
            assert response.status_code in (201, 409), response.text
        if not self.leases:
            self.new_lease()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dashboard_equals_the_old_ledger_scan(client: TestClient[Any], seed: int) -> None:
    account = register(client)
    scenario = Scenario(client, account, seed)
    for _ in range(4):
        scenario.new_lease()
    assert _dashboard(client, account) == _oracle(client, account)
    seen: set[str] = set()
    for _round in range(5):
        if scenario.rng.random() < 0.4:
            scenario.new_lease()
        for _ in range(12):
            scenario.act()
        board = _dashboard(client, account)
        assert board == _oracle(client, account)
        seen |= {name for name, value in board.items() if isinstance(value, int) and value}
    # The rounds moved every ledger figure at least once (not a comparison of zeros).
    assert {"collectedThisMonth", "outstandingBalance", "overdueLeases", "depositsHeld"} <= seen, (
        seen
    )
    assert scenario.reversed


def _uuid(value: Any) -> str:
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def _totals(client: TestClient[Any]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    services = services_of(client.app)

    async def run() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        async with services.sessionmaker() as session:
            balances = await session.execute(
                text(
                    "SELECT lease_id, organization_id, balance, deposit_held, oldest_unpaid_on"
                    " FROM lease_balances"
                )
            )
            days = await session.execute(
                text("SELECT organization_id, on_date, collected FROM payments_by_day")
            )
            return (
                sorted((_uuid(r[0]), _uuid(r[1]), *r[2:]) for r in balances),
                sorted((_uuid(r[0]), str(r[1]), r[2]) for r in days if r[2]),
            )

    return client.blocking_portal.call(run)


def test_the_migration_backfills_what_the_writes_kept(
    client: TestClient[Any], database: Any
) -> None:
    """Down to 0010 (the totals dropped) and up again (0011 backfills them from the ledger):
    the same rows as the write path kept, and the same dashboard."""
    account = register(client)
    scenario = Scenario(client, account, 4)
    for _ in range(3):
        scenario.new_lease()
    for _ in range(25):
        scenario.act()
    kept = _totals(client)
    assert kept[0], "the scenario wrote ledger entries"
    board = _dashboard(client, account)
    services_of(client.app).engine.sync_engine.dispose()  # no pooled connection holds a lock
    settings = load_settings({"DATABASE_URL": database.url})
    command.downgrade(alembic_config(settings), "0010_residents")
    upgrade(settings)
    assert _totals(client) == kept
    new_unit(client, account)  # a write: the next read misses the cache
    after = _dashboard(client, account)
    assert after == _oracle(client, account)
    ledger_figures = ("collectedThisMonth", "outstandingBalance", "depositsHeld", "overdueLeases")
    assert [after[f] for f in ledger_figures] == [board[f] for f in ledger_figures]
    assert after["units"] == board["units"] + 1


def test_concurrent_payments_on_one_lease_keep_its_totals(client: TestClient[Any]) -> None:
    """Payments and reversals racing on the same leases (several requests at once): each
    writer locks the lease's totals row before reading its lines, so none is lost."""
    account = register(client)
    today = datetime.now(UTC).date()
    leases = [
        active_lease(client, account, startDate=(today - timedelta(days=60)).isoformat())
        for _ in range(2)
    ]
    for lease in leases:
        post_entry(
            client, account, lease["id"], "charges",
            kind="rent", amount=100_000, dueDate=(today - timedelta(days=10)).isoformat(),
        )  # fmt: skip

    def pay_one(i: int) -> str:
        entry = post_entry(
            client, account, leases[i % 2]["id"], "payments",
            amount=1_000 + i, receivedOn=today.isoformat(), method="cash",
        )  # fmt: skip
        return str(entry["id"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        paid = list(pool.map(pay_one, range(24)))
    with ThreadPoolExecutor(max_workers=6) as pool:
        reversed_ = list(
            pool.map(
                lambda entry: (
                    client.post(
                        f"/api/v1/ledger-entries/{entry}/reverse", headers=account.headers
                    ).status_code
                ),
                paid[:6],
            )
        )
    assert reversed_ == [201] * 6
    assert _dashboard(client, account) == _oracle(client, account)
    balances = {row[0]: row[2] for row in _totals(client)[0]}
    for lease in leases:
        assert balances[lease["id"]] == ledger(client, account, lease["id"])["balance"]


def test_a_second_writer_of_a_lease_waits_for_the_first_and_reads_its_entry(
    client: TestClient[Any], database: Any
) -> None:
    """Two transactions post to one lease at once (PostgreSQL, READ COMMITTED): the second
    one's totals wait on the lease's locked row until the first commits, then read both
    entries. Without the lock it would write a balance missing the first one's entry."""
    if database.backend != "postgresql":
        pytest.skip("SQLite lets one writer at a time into the database file")
    account = register(client)
    lease = active_lease(client, account)
    org_id, lease_id = uuid.UUID(account.organization_id), uuid.UUID(lease["id"])
    engine = services_of(client.app).engine
    today = datetime.now(UTC).date()

    async def post(conn: Any, amount: int) -> None:
        entry = {
            "id": uuid.uuid4(), "organization_id": org_id, "lease_id": lease_id,
            "type": "charge", "kind": "other", "amount": amount, "date": today,
            "created_at": datetime.now(UTC),
        }  # fmt: skip
        await conn.execute(insert(LedgerEntry), [entry])
        noted = totals.Noted(org_id, lease_id, "charge", amount, today, None)
        await conn.run_sync(lambda sync: totals.apply(sync, [noted]))

    async def race() -> tuple[bool, int]:
        async with engine.connect() as first, engine.connect() as second:
            await first.begin()
            await post(first, 1_000)  # its totals written, the lease's row locked
            await second.begin()
            waiting = asyncio.ensure_future(post(second, 200))
            await asyncio.sleep(0.5)
            blocked = not waiting.done()
            await first.commit()
            await waiting
            await second.commit()
        async with engine.connect() as conn:
            row = await conn.execute(
                select(LeaseBalance.balance).where(LeaseBalance.lease_id == lease_id)
            )
            return blocked, int(row.scalar_one())

    blocked, balance = client.blocking_portal.call(race)
    assert blocked
    assert balance == 1_200 == ledger(client, account, lease["id"])["balance"]
