"""`haven jobs scheduler`: the daily jobs, run by any number of copies, each job once.

Two jobs:

* billing, per organization, for each local date (the organization's time zone) from
  the day after its last completed run through today: the period flips at local
  midnight, and days missed while no scheduler ran are caught up in order (at most
  MAX_CATCH_UP_DAYS); an organization never billed before starts today;
* purge of expired idempotency records, once per UTC day;
* purge of events and webhook delivery log rows older than the retention
  (EVENT_RETENTION_DAYS), once per UTC day.

Each unit of work takes a Redis lock (haven.store.locks) without waiting: a copy that
finds it taken skips it, another copy is doing it. What a job completed is recorded
in `job_runs` in the same transaction as the work, so a crash halfway leaves it to
the next tick; the billing keys make a repeated day post nothing twice anyway.

"Now" is a parameter (`tick(now)`), so a test can walk a simulated clock through
years without touching the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haven.billing import service as billing
from haven.billing.job import as_system, organizations
from haven.clock import local_date
from haven.events import service as events
from haven.models import JobRun
from haven.store import locks, org_cache
from haven.store.client import Keys
from haven.uow import take_changed
from haven.uow.idempotency import purge_expired
from haven.webhooks import service as webhooks

JOBS = ("billing", "purge-idempotency", "purge-events")
LOCK_TTL_MS = 60_000
MAX_CATCH_UP_DAYS = 62
log = structlog.get_logger("haven.scheduler")


@dataclass(slots=True)
class TickReport:
    """What one tick did: billing days run per organization, purged rows, skipped locks."""

    billed: dict[uuid.UUID, list[date]] = field(default_factory=dict)
    posted: int = 0
    purged: int | None = None
    purged_events: int | None = None
    purged_deliveries: int | None = None
    skipped: list[str] = field(default_factory=list)


def days_to_run(last: date | None, today: date) -> list[date]:
    """The local dates a job still owes: after `last` through `today`, at most the cap."""
    if last is None:
        return [today]
    if last >= today:
        return []
    first = max(last + timedelta(days=1), today - timedelta(days=MAX_CATCH_UP_DAYS - 1))
    return [first + timedelta(days=n) for n in range((today - first).days + 1)]


async def _last_run(session: AsyncSession, name: str) -> JobRun | None:
    return await session.get(JobRun, name, with_for_update=True, populate_existing=True)


def _record(session: AsyncSession, row: JobRun | None, name: str, day: date) -> None:
    if row is None:
        session.add(JobRun(name=name, last_date=day))
    else:
        row.last_date = day


@dataclass(slots=True)
class Scheduler:
    maker: async_sessionmaker[AsyncSession]
    redis: Redis
    keys: Keys
    instance_id: str | None = None
    jobs: tuple[str, ...] = JOBS
    # Sessions for the organization list; on SQLite a plain BEGIN does not queue behind
    # the write lock another copy holds while it bills. Defaults to `maker`.
    reader: async_sessionmaker[AsyncSession] | None = None
    # Bill only these organizations (None: all), e.g. to shard organizations over copies.
    organization_ids: frozenset[uuid.UUID] | None = None
    event_retention_days: int = 30

    async def tick(self, now: datetime) -> TickReport:
        """Run what is due at `now` (an aware datetime)."""
        report = TickReport()
        if "billing" in self.jobs:
            for org_id, timezone in await organizations(self.reader or self.maker):
                if self.organization_ids is None or org_id in self.organization_ids:
                    await self._bill(org_id, local_date(now, timezone), report)
        if "purge-idempotency" in self.jobs:
            await self._daily("purge-idempotency", now, report, self._purge_idempotency)
        if "purge-events" in self.jobs:
            await self._daily("purge-events", now, report, self._purge_events)
        return report

    async def _bill(self, org_id: uuid.UUID, today: date, report: TickReport) -> None:
        name = f"billing:{org_id}"
        async with locks.held(self.redis, self.keys.lock(f"scheduler:{name}"), LOCK_TTL_MS) as t:
            if t is None:
                report.skipped.append(name)
                return
            async with self.maker() as session, session.begin():
                as_system(session, self.instance_id)
                row = await _last_run(session, name)
                days = days_to_run(row.last_date if row else None, today)
                for day in days:
                    result = await billing.run(session, org_id, day, dry_run=False, today=day)
                    report.posted += result.posted
                if days:
                    _record(session, row, name, days[-1])
                    report.billed[org_id] = days
                changed = take_changed(session)
            await org_cache.bump(self.redis, self.keys, changed)

    async def _daily(
        self,
        name: str,
        now: datetime,
        report: TickReport,
        work: Callable[[AsyncSession, datetime, TickReport], Awaitable[None]],
    ) -> None:
        """Run `work` once per UTC day, under the job's lock, recorded with the work."""
        async with locks.held(self.redis, self.keys.lock(f"scheduler:{name}"), LOCK_TTL_MS) as t:
            if t is None:
                report.skipped.append(name)
                return
            async with self.maker() as session, session.begin():
                row = await _last_run(session, name)
                today = now.astimezone(UTC).date()
                if row is not None and row.last_date >= today:
                    return
                await work(session, now, report)
                _record(session, row, name, today)

    async def _purge_idempotency(
        self, session: AsyncSession, now: datetime, report: TickReport
    ) -> None:
        report.purged = await purge_expired(session, now)

    async def _purge_events(self, session: AsyncSession, now: datetime, report: TickReport) -> None:
        days = self.event_retention_days
        report.purged_events = await events.purge_expired(session, days, now=now)
        report.purged_deliveries = await webhooks.purge_deliveries(session, days, now=now)


async def serve(
    scheduler: Scheduler,
    *,
    interval: float,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    max_ticks: int | None = None,
    heartbeat: str | None = None,
) -> int:
    """Tick every `interval` seconds until `stop` is set (or max_ticks); returns the ticks.

    After each tick that did not fail, `heartbeat` (a file path) is touched, so a
    container healthcheck can tell a live scheduler from a stuck one by its age.
    """
    ticks = 0
    while not stop.is_set() and (max_ticks is None or ticks < max_ticks):
        try:
            report = await scheduler.tick(clock())
            log.info(
                "scheduler_tick",
                posted=report.posted,
                billed=sum(len(d) for d in report.billed.values()),
                purged=report.purged,
                purged_events=report.purged_events,
                skipped=len(report.skipped),
            )
            if heartbeat is not None:
                await asyncio.to_thread(Path(heartbeat).touch)
        except Exception as exc:  # a database or Redis outage: try again next tick
            log.warning("scheduler_tick_failed", error=repr(exc))
        ticks += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    return ticks


def selected(names: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(names)) or JOBS
    unknown = [n for n in chosen if n not in JOBS]
    if unknown:
        raise ValueError(f"unknown job(s): {', '.join(unknown)}; known: {', '.join(JOBS)}")
    return chosen
