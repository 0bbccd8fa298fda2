"""Dashboard figures, computed from the database and cached per organization version."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

import msgspec
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.dashboard.schemas import DashboardOut, ExpiringOut, MaintenanceOut
from haven.leases.service import rents_in_force
from haven.ledger import repository
from haven.ledger.aging import deposit_held, summarize
from haven.models import Lease, MaintenanceRequest, Property, Unit
from haven.organizations.service import get_organization, today_in
from haven.store import gate, org_cache
from haven.store.client import Keys

CACHE_TTL = 300
DAY = 86400
OPEN_STATUSES = ("open", "in_progress", "on_hold")

_encoder = msgspec.json.Encoder()


async def _count(session: AsyncSession, stmt: object) -> int:
    return int((await session.execute(stmt)).scalar_one())  # type: ignore[call-overload]


async def compute(session: AsyncSession, organization_id: uuid.UUID) -> DashboardOut:
    org = await get_organization(session, organization_id)
    today = today_in(org)
    month_start = today.replace(day=1)
    properties = await _count(
        session, select(func.count()).where(Property.organization_id == organization_id)
    )
    units = await _count(
        session, select(func.count()).where(Unit.organization_id == organization_id)
    )
    occupied = await _count(
        session,
        select(func.count()).where(
            Unit.organization_id == organization_id, Unit.status == "occupied"
        ),
    )
    in_force = list(
        (
            await session.execute(
                select(Lease).where(
                    Lease.organization_id == organization_id, Lease.status == "active"
                )
            )
        ).scalars()
    )
    rents = await rents_in_force(session, in_force, today)
    active = [(rents[lease.id], lease.end_date) for lease in in_force]
    expiring = {30: 0, 60: 0, 90: 0}
    for _rent, end in active:
        if end is None or end < today:
            continue
        for days in expiring:
            if end <= today + timedelta(days=days):
                expiring[days] += 1
    outstanding = overdue = collected = deposits = 0
    for lines in (await repository.lines_by_lease(session, organization_id)).values():
        summary = summarize(lines, today)
        deposits += deposit_held(lines, summary)
        outstanding += max(summary.balance, 0)
        overdue += 1 if summary.aging.overdue() > 0 else 0
        reversed_ids = {line.reverses_id for line in lines if line.reverses_id}
        collected += sum(
            -line.amount
            for line in lines
            if line.type == "payment"
            and line.id not in reversed_ids
            and month_start <= line.date <= today
        )
    maintenance = dict.fromkeys(("low", "normal", "high", "emergency"), 0)
    rows = await session.execute(
        select(MaintenanceRequest.priority, func.count())
        .where(
            MaintenanceRequest.organization_id == organization_id,
            MaintenanceRequest.status.in_(OPEN_STATUSES),
        )
        .group_by(MaintenanceRequest.priority)
    )
    for priority, count in rows:
        if priority in maintenance:
            maintenance[priority] = int(count)
    return DashboardOut(
        properties=properties,
        units=units,
        occupied_units=occupied,
        occupancy_rate=round(occupied / units, 4) if units else 0.0,
        monthly_rent_roll=sum(rent for rent, _ in active),
        collected_this_month=collected,
        outstanding_balance=outstanding,
        deposits_held=deposits,
        overdue_leases=overdue,
        leases_expiring=ExpiringOut(in30=expiring[30], in60=expiring[60], in90=expiring[90]),
        open_maintenance=MaintenanceOut(**maintenance),
        currency=org.currency,
        generated_at=datetime.now(UTC),
    )


_name: tuple[float, str] = (0.0, "")  # (valid until, name): one name per UTC day


def cache_name() -> str:
    """The cache entry's name now; the date is part of it: "this month" and "overdue" move
    at midnight. Asked on every dashboard read, so a day's name is built once."""
    global _name  # a per-process memo of a pure function of the day
    until, name = _name
    now = time.time()
    if now >= until or now < until - DAY:
        today = datetime.fromtimestamp(now, UTC).date()
        name = f"dashboard:{today.isoformat()}"
        midnight = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
        _name = (midnight.timestamp(), name)
    return name


async def dashboard_json(
    sessions: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    redis: Redis,
    keys: Keys,
    organization_id: uuid.UUID,
    prefetch: gate.Prefetch | None = None,
) -> bytes:
    """The dashboard as JSON bytes, from Redis when the organization has not changed since.

    A database session is opened (from `sessions`) only on a miss, so a cached read costs
    no database work; `prefetch` is what the request's gate read (one Redis round trip).
    """

    async def fresh() -> bytes:
        async with sessions() as session:
            return _encoder.encode(await compute(session, organization_id))

    name = cache_name()
    prefetched = None
    if (
        prefetch is not None
        and prefetch.cache_name == name
        and prefetch.version is not None
        and prefetch.session is not None
    ):
        prefetched = (prefetch.version, prefetch.cached)
    return await org_cache.cached(redis, keys, organization_id, name, CACHE_TTL, fresh, prefetched)
