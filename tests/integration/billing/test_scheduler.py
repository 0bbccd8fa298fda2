"""The scheduler: local midnight per organization, catch-up, racing copies, the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from typing import Any

from click.testing import CliRunner
from litestar.testing import TestClient

from haven.config import Settings
from haven.db.engine import WRITE_OPTION, create_engine
from haven.jobs.scheduler import Scheduler, days_to_run
from haven.store.client import Keys, create_redis
from haven.uow import create_sessionmaker
from support import Account, register
from support_leases import active_lease, ledger


def _in_zone(client: TestClient[Any], owner: Account, timezone: str) -> None:
    org = client.get("/api/v1/organization", headers=owner.headers)
    response = client.patch(
        "/api/v1/organization",
        headers={**owner.headers, "If-Match": org.headers["etag"]},
        json={"timezone": timezone},
    )
    assert response.status_code == 200, response.text


def _tick_all(
    settings: Settings, orgs: list[Account], *nows: datetime, copies: int = 1
) -> list[Any]:
    """Tick `copies` schedulers at once for each `now` in turn (one event loop).

    They bill only these organizations: other tests' share the database.
    """

    async def run() -> list[Any]:
        engines = [create_engine(settings) for _ in range(copies)]
        redises = [create_redis(settings, settings.redis_url) for _ in range(copies)]
        keys = Keys(settings.redis_key_prefix)
        schedulers = [
            Scheduler(
                create_sessionmaker(e.execution_options(**{WRITE_OPTION: True})),
                r,
                keys,
                jobs=("billing",),  # a simulated date must not mark today's purge done
                reader=create_sessionmaker(e),
                organization_ids=frozenset(_org(a) for a in orgs),
            )
            for e, r in zip(engines, redises, strict=True)
        ]
        reports: list[Any] = []
        try:
            for now in nows:
                reports.append(await asyncio.gather(*(s.tick(now) for s in schedulers)))  # noqa: PERF401
        finally:
            for r in redises:
                await r.aclose()
            for e in engines:
                await e.dispose()
        return reports

    runner: Callable[[], Coroutine[Any, Any, list[Any]]] = run
    return asyncio.run(runner())


def _rent_dates(client: TestClient[Any], owner: Account, lease_id: str) -> list[str]:
    return [e["date"] for e in ledger(client, owner, lease_id)["entries"]]


def test_the_period_flips_at_each_organizations_local_midnight(
    client: TestClient[Any], settings_factory: Callable[..., Settings]
) -> None:
    auckland, utc = register(client), register(client)
    _in_zone(client, auckland, "Pacific/Auckland")  # UTC+13 in January
    a = active_lease(client, auckland, startDate="2031-01-01", endDate=None, lateFee=None)
    u = active_lease(client, utc, startDate="2031-01-01", endDate=None, lateFee=None)
    settings = settings_factory()
    # 2031-01-31 10:59 UTC is 23:59 in Auckland: January there and in UTC.
    _tick_all(settings, [auckland, utc], datetime(2031, 1, 31, 10, 59, tzinfo=UTC))
    assert _rent_dates(client, auckland, a["id"]) == ["2031-01-01"]
    assert _rent_dates(client, utc, u["id"]) == ["2031-01-01"]
    # 11:00 UTC is midnight in Auckland: February is billed there, not yet in UTC.
    _tick_all(settings, [auckland, utc], datetime(2031, 1, 31, 11, 0, tzinfo=UTC))
    assert _rent_dates(client, auckland, a["id"]) == ["2031-01-01", "2031-02-01"]
    assert _rent_dates(client, utc, u["id"]) == ["2031-01-01"]
    _tick_all(settings, [auckland, utc], datetime(2031, 2, 1, 0, 0, tzinfo=UTC))
    assert _rent_dates(client, utc, u["id"]) == ["2031-01-01", "2031-02-01"]


def test_missed_days_are_caught_up_in_order_and_copies_post_once(
    client: TestClient[Any], settings_factory: Callable[..., Settings]
) -> None:
    owner = register(client)
    fee = {"kind": "flat", "amount": 2500}
    lease = active_lease(client, owner, startDate="2032-01-01", endDate=None, rent=100000,
                         dueDay=1, graceDays=3, lateFee=fee)  # fmt: skip
    settings = settings_factory()
    # First ever tick: today only. Then the scheduler is down until March 2: the next
    # tick bills February (and its late fee, unpaid past grace) and March.
    (first,) = _tick_all(settings, [owner], datetime(2032, 1, 2, 9, tzinfo=UTC), copies=3)
    assert [r.billed.get(_org(owner)) for r in first].count([date(2032, 1, 2)]) == 1
    assert len(ledger(client, owner, lease["id"])["entries"]) == 1
    (second,) = _tick_all(settings, [owner], datetime(2032, 3, 2, 9, tzinfo=UTC), copies=3)
    # One copy billed the organization's missed days, in order; the others skipped it.
    (billed_days,) = [r.billed[_org(owner)] for r in second if _org(owner) in r.billed]
    assert billed_days[0] == date(2032, 1, 3)
    assert len(billed_days) == 60
    assert billed_days[-1] == date(2032, 3, 2)
    entries = ledger(client, owner, lease["id"])["entries"]
    assert [(e["kind"], e["date"]) for e in entries] == [
        ("rent", "2032-01-01"),
        ("late_fee", "2032-01-05"),
        ("rent", "2032-02-01"),
        ("late_fee", "2032-02-05"),
        ("rent", "2032-03-01"),
    ]
    # The same day again: nothing left to bill.
    (again,) = _tick_all(settings, [owner], datetime(2032, 3, 2, 10, tzinfo=UTC), copies=3)
    assert all(_org(owner) not in r.billed for r in again)
    assert len(ledger(client, owner, lease["id"])["entries"]) == 5


def _org(account: Account) -> Any:
    import uuid

    return uuid.UUID(account.organization_id)


def test_days_to_run_is_bounded() -> None:
    assert days_to_run(None, date(2030, 1, 10)) == [date(2030, 1, 10)]
    assert days_to_run(date(2030, 1, 10), date(2030, 1, 10)) == []
    assert days_to_run(date(2030, 1, 12), date(2030, 1, 10)) == []  # the clock went back
    long = days_to_run(date(2020, 1, 1), date(2030, 1, 10))
    assert len(long) == 62
    assert long[-1] == date(2030, 1, 10)


def test_cli_scheduler_once_runs_the_jobs_and_a_second_run_the_same_day_is_a_no_op(
    client: TestClient[Any], settings_factory: Callable[..., Settings], monkeypatch: Any
) -> None:
    from haven.cli import main

    owner = register(client)
    lease = active_lease(client, owner, startDate="2026-01-01", endDate=None, lateFee=None)
    settings = settings_factory()
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("HAVEN_ENV", "test")
    runner = CliRunner()
    first = runner.invoke(main, ["jobs", "scheduler", "--once"])
    assert first.exit_code == 0, first.output
    assert "purged 0" in first.output
    entries = ledger(client, owner, lease["id"])["entries"]
    assert len(entries) == 1  # this month's rent, from the real clock
    second = runner.invoke(main, ["jobs", "scheduler", "--once"])
    assert second.exit_code == 0, second.output
    assert "0 charge(s) posted" in second.output
    assert "purged -" in second.output  # already purged today
    assert ledger(client, owner, lease["id"])["entries"] == entries
    bad = runner.invoke(main, ["jobs", "scheduler", "--once", "--job", "laundry"])
    assert bad.exit_code == 2
