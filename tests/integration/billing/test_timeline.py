"""Two simulated years: three schedulers tick every day at once; every ledger equals the model.

The clock is injected (Scheduler.tick(now)); the real clock is never touched. Each
scheduler has its own engine and Redis client, like three instances sharing Valkey
and the database. The scheduler is also down for eleven days once: the next tick
catches the missed days up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from litestar.testing import TestClient

from haven.config import Settings
from haven.db.engine import WRITE_OPTION, create_engine
from haven.jobs.scheduler import Scheduler
from haven.store.client import Keys, create_redis
from haven.uow import create_sessionmaker
from support import Account, register
from support_billing import billed, owed
from support_leases import active_lease, charge, ledger, pay

FIRST_DAY = date(2027, 1, 1)
DAYS = 731  # 2027-01-01 through 2028-12-31 (a leap year)
DOWN = (date(2027, 7, 10), date(2027, 7, 20))  # no scheduler runs on these days


def _post(client: TestClient[Any], owner: Account, path: str, body: dict[str, Any]) -> Any:
    response = client.post(f"/api/v1{path}", headers=owner.headers, json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _simulate(
    settings: Settings, organization_id: str, on_day: Callable[[date], None]
) -> list[int]:
    """Tick three schedulers concurrently at noon UTC of every simulated day."""
    engines = [create_engine(settings) for _ in range(3)]
    redises = [create_redis(settings, settings.redis_url) for _ in range(3)]
    keys = Keys(settings.redis_key_prefix)
    schedulers = [
        Scheduler(
            create_sessionmaker(e.execution_options(**{WRITE_OPTION: True})),
            r,
            keys,
            f"sched-{n}",
            jobs=("billing",),  # a simulated date must not mark today's purge done
            reader=create_sessionmaker(e),
            # Other tests' organizations share the database: leave them alone.
            organization_ids=frozenset({uuid.UUID(organization_id)}),
        )
        for n, (e, r) in enumerate(zip(engines, redises, strict=True))
    ]
    posted: list[int] = []
    try:
        for n in range(DAYS):
            day = FIRST_DAY + timedelta(days=n)
            on_day(day)
            if DOWN[0] <= day <= DOWN[1]:
                continue
            now = datetime.combine(day, time(12, 0), tzinfo=UTC)
            reports = await asyncio.gather(*(s.tick(now) for s in schedulers))
            posted.append(sum(r.posted for r in reports))
    finally:
        for r in redises:
            await r.aclose()
        for e in engines:
            await e.dispose()
    return posted


def test_two_years_of_daily_schedulers_bill_exactly_the_model(
    client: TestClient[Any], settings_factory: Callable[..., Settings]
) -> None:
    owner = register(client)
    no_fee = {"lateFee": None}
    a = active_lease(client, owner, startDate="2027-01-25", endDate="2028-06-10", rent=123457,
                     dueDay=1, deposit=200000, chargeDeposit=True, **no_fee)  # fmt: skip
    _post(client, owner, f"/leases/{a['id']}/rent-changes",
          {"effectiveDate": "2027-09-15", "rent": 130000})  # fmt: skip
    _post(client, owner, f"/leases/{a['id']}/recurring-charges",
                    {"kind": "parking", "amount": 5000, "startDate": "2027-03-10",
                     "endDate": "2028-01-20"})  # fmt: skip
    a_next = _post(client, owner, f"/leases/{a['id']}/renew", {"rent": 140000})
    yearly = {"percentBasisPoints": 250, "everyMonths": 12}
    b = active_lease(client, owner, startDate="2027-02-01", endDate=None, rent=99999, dueDay=5,
                     escalation=yearly, **no_fee)  # fmt: skip
    c = active_lease(client, owner, startDate="2027-06-16", endDate="2028-12-31", rent=250000,
                     dueDay=28, deposit=100000, chargeDeposit=True, **no_fee)  # fmt: skip
    assert pay(client, owner, a["id"], 200000, on="2027-01-25").status_code == 201
    assert pay(client, owner, c["id"], 60000, on="2027-06-16").status_code == 201  # part only
    dispositions = 0

    def on_day(day: date) -> None:
        nonlocal dispositions
        if day == date(2028, 3, 17):
            _post(client, owner, f"/leases/{b['id']}/terminate", {"date": "2028-03-17"})
        if day == date(2028, 6, 20):  # a has ended: cleaning charged, deposit settled
            charge(client, owner, a["id"], 30000, "2028-06-10", kind="other")
            settled = _post(client, owner, f"/leases/{a['id']}/deposit-disposition",
                            {"refundMethod": "bank_transfer",
                             "deductions": [{"reason": "Cleaning", "amount": 30000}]})  # fmt: skip
            dispositions += settled["deductions"] + settled["refunded"]

    posted = asyncio.run(_simulate(settings_factory(), owner.organization_id, on_day))
    assert sum(posted) > 0

    last = FIRST_DAY + timedelta(days=DAYS - 1)
    assert last == date(2028, 12, 31)
    b_changes = client.get(f"/api/v1/leases/{b['id']}/rent-changes", headers=owner.headers).json()
    assert [(x["effectiveDate"], x["rent"]) for x in b_changes][:1] == [("2028-02-01", 102499)]
    expected = {
        a["id"]: owed(date(2027, 1, 25), date(2028, 6, 10), 123457,
                      [(date(2027, 9, 15), 130000)],
                      [("parking", 5000, date(2027, 3, 10), date(2028, 1, 20))]),
        a_next["id"]: owed(date(2028, 6, 11), last, 140000),
        b["id"]: owed(date(2027, 2, 1), date(2028, 3, 17), 99999,
                      [(date.fromisoformat(x["effectiveDate"]), x["rent"]) for x in b_changes]),
        c["id"]: owed(date(2027, 6, 16), date(2028, 12, 31), 250000),
    }  # fmt: skip
    for lease_id, model in expected.items():
        entries = ledger(client, owner, lease_id)["entries"]
        assert billed(entries) == sum(model.values()), lease_id
        charges = [e for e in entries if e["type"] == "charge" and e["kind"] != "other"]
        # Nothing posted twice: one charge per kind and month, as many as the model has.
        months = [(e["kind"], e["date"][:7]) for e in charges if e["kind"] != "deposit"]
        assert len(months) == len(set(months)) == len(model), lease_id
        lease = client.get(f"/api/v1/leases/{lease_id}", headers=owner.headers).json()
        for e in charges:
            assert lease["startDate"] <= e["date"], (lease_id, e)
            assert lease["endDate"] is None or e["date"] <= lease["endDate"], (lease_id, e)

    statuses = {
        x: client.get(f"/api/v1/leases/{x}", headers=owner.headers).json()["status"]
        for x in (a["id"], a_next["id"], b["id"], c["id"])
    }
    assert statuses == {
        a["id"]: "ended",
        a_next["id"]: "active",
        b["id"]: "terminated",
        c["id"]: "active",
    }
    # Deposits held = deposits paid (200000 on a, 60000 of c's 100000) less dispositions.
    assert dispositions == 200000
    board = client.get("/api/v1/dashboard", headers=owner.headers).json()
    assert board["depositsHeld"] == 200000 + 60000 - dispositions
    # Every billed entry was audited as the billing job.
    events = client.get("/api/v1/audit-events", headers=owner.headers,
                        params={"entityType": "ledger_entry", "limit": 100}).json()  # fmt: skip
    system = [e for e in events["items"] if e["systemActor"] == "system:billing"]
    assert system
    assert all(e["actorId"] is None for e in system)
