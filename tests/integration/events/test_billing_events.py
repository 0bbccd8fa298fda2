"""Billing and the scheduler in the event feed: entries, the run itself, and the purge."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from litestar.testing import TestClient

from haven.config import Settings
from haven.db.base import utcnow
from haven.db.engine import WRITE_OPTION, create_engine
from haven.jobs.scheduler import Scheduler
from haven.store.client import Keys, create_redis
from haven.uow import create_sessionmaker
from support import Account, assert_problem
from support_events import feed_page, read_all
from support_leases import active_lease


def _run(client: TestClient[Any], account: Account, on: str) -> dict[str, Any]:
    response = client.post("/api/v1/billing/run", headers=account.headers, json={"date": on})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_billing_run_is_told_by_its_entries_and_one_run_event(
    client: TestClient[Any], owner: Account
) -> None:
    lease = active_lease(client, owner, startDate="2026-03-25", endDate=None, rent=310000,
                         dueDay=1, lateFee=None)  # fmt: skip
    _, cursor = read_all(client, owner)
    first = _run(client, owner, "2026-03-25")
    assert first["posted"] == 1
    events, cursor = read_all(client, owner, cursor)
    assert [e["type"] for e in events] == ["ledger_entry.posted", "billing_run.completed"]
    entry, run = events
    assert entry["data"]["leaseId"] == lease["id"]
    assert entry["data"]["amount"] == 70000  # the prorated first month, as posted
    assert run["data"]["date"] == "2026-03-25"
    assert run["data"]["posted"] == 1
    assert run["data"]["entryIds"] == [entry["resourceId"]]
    # A run that posts nothing changes nothing, so it tells nothing.
    assert _run(client, owner, "2026-03-26")["posted"] == 0
    assert read_all(client, owner, cursor)[0] == []
    # A dry run never writes an event either.
    response = client.post(
        "/api/v1/billing/run", headers=owner.headers, json={"date": "2026-04-01", "dryRun": True}
    )
    assert response.status_code == 200, response.text
    assert read_all(client, owner, cursor)[0] == []
    # Consumers can ask for run events alone.
    runs = feed_page(client, owner, types="billing_run.completed")["items"]
    assert [r["resourceId"] for r in runs] == [run["resourceId"]]


def test_the_scheduler_purges_events_past_the_retention(
    client: TestClient[Any], owner: Account, settings_factory: Callable[..., Settings]
) -> None:
    events, _ = read_all(client, owner)
    assert events, "registration writes events"
    oldest = events[0]["position"]
    settings = settings_factory()

    async def tick() -> Any:
        engine = create_engine(settings)
        redis = create_redis(settings, settings.redis_url)
        try:
            scheduler = Scheduler(
                create_sessionmaker(engine.execution_options(**{WRITE_OPTION: True})),
                redis,
                Keys(settings.redis_key_prefix),
                jobs=("purge-events",),
                event_retention_days=30,
            )
            # 31 days from now every event this test made is past a 30-day retention.
            return await scheduler.tick(utcnow() + timedelta(days=31))
        finally:
            await redis.aclose()
            await engine.dispose()

    report = asyncio.run(tick())
    assert report.purged_events is not None
    assert report.purged_events >= len(events)
    # A cursor from before the purge is now too old: 410, with a body that says so.
    gone = client.get("/api/v1/events", headers=owner.headers, params={"after": str(oldest)})
    assert_problem(gone, 410)
    # Later copies the same (simulated) day find the job done and purge nothing more.
    assert asyncio.run(tick()).purged_events is None
