"""Dashboard figures, computed from the database and cached per organization version."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
from redis.asyncio import Redis
from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from haven.dashboard.schemas import DashboardOut, ExpiringOut, MaintenanceOut
from haven.models import (
    Lease,
    LeaseBalance,
    MaintenanceRequest,
    PaymentsByDay,
    Property,
    RentChange,
    Unit,
)
from haven.organizations.service import get_organization, today_in
from haven.store import gate, org_cache
from haven.store.client import Keys

CACHE_TTL = 300
DAY = 86400
OPEN_STATUSES = ("open", "in_progress", "on_hold")
EXPIRING = (30, 60, 90)  # leasesExpiring: in30, in60, in90 days

_encoder = msgspec.json.Encoder()


async def _count(session: AsyncSession, stmt: object) -> int:
    return int((await session.execute(stmt)).scalar_one())  # type: ignore[call-overload]


def _sum(expr: Any) -> ColumnElement[Any]:
    return func.coalesce(func.sum(expr), 0)


def _if(condition: ColumnElement[bool], value: Any = 1) -> ColumnElement[Any]:
    return case((condition, value), else_=0)


def _leases_statement(organization_id: uuid.UUID, today: date) -> Select[Any]:
    """The rent roll and the leases expiring, in one statement of three index scans.

    The rent in force is the lease's latest rent change effective by today, else its rent
    (as haven.leases.service.rents_in_force): the sum of the active leases' rents
    (ix_leases_org_status_rent, index-only) plus, for the leases with a change in force,
    that change's rent less the lease's (rent changes of the organization). Expiring: a
    range of ix_leases_org_status_end (end dates from today to today + 90 days)."""
    active = (Lease.organization_id == organization_id) & (Lease.status == "active")
    latest = (
        select(RentChange.lease_id, func.max(RentChange.effective_date).label("on"))
        .where(RentChange.organization_id == organization_id, RentChange.effective_date <= today)
        .group_by(RentChange.lease_id)
        .subquery()
    )
    change = aliased(RentChange)
    rents = select(_sum(Lease.rent)).where(active).scalar_subquery()
    changed = (
        select(_sum(change.rent - Lease.rent))
        .select_from(latest)
        .join(
            change, (change.lease_id == latest.c.lease_id) & (change.effective_date == latest.c.on)
        )
        .join(Lease, Lease.id == latest.c.lease_id)
        .where(active)
        .scalar_subquery()
    )
    end = Lease.end_date
    expiring = [
        select(func.count())
        .where(active, end >= today, end <= today + timedelta(days=days))
        .scalar_subquery()
        for days in EXPIRING
    ]
    return select(rents + changed, *expiring)


def _balances_statement(organization_id: uuid.UUID, today: date) -> Select[Any]:
    """Outstanding, deposits held and overdue leases from `lease_balances`, each a range of
    its own (organization_id, column) index: only the leases owing, holding a deposit, or
    with a charge unpaid are read."""
    of_org = LeaseBalance.organization_id == organization_id
    return select(
        select(_sum(LeaseBalance.balance))
        .where(of_org, LeaseBalance.balance > 0)
        .scalar_subquery(),
        select(_sum(LeaseBalance.deposit_held))
        .where(of_org, LeaseBalance.deposit_held > 0)
        .scalar_subquery(),
        # Aging.overdue() > 0 on `today` exactly when the oldest unpaid charge is due
        # before today (haven.ledger.aging.oldest_unpaid_on).
        select(func.count()).where(of_org, LeaseBalance.oldest_unpaid_on < today).scalar_subquery(),
    )


async def compute(session: AsyncSession, organization_id: uuid.UUID) -> DashboardOut:
    """The figures in a fixed number of statements, none reading ledger entries: the ledger's
    per-lease totals and payments per day are kept with its writes (haven.ledger.totals)."""
    org = await get_organization(session, organization_id)
    today = today_in(org)
    month_start = today.replace(day=1)
    properties = await _count(
        session, select(func.count()).where(Property.organization_id == organization_id)
    )
    units, occupied = (
        await session.execute(
            select(func.count(), _sum(_if(Unit.status == "occupied"))).where(
                Unit.organization_id == organization_id
            )
        )
    ).one()
    rent_roll, *expiring = (await session.execute(_leases_statement(organization_id, today))).one()
    outstanding, deposits, overdue = (
        await session.execute(_balances_statement(organization_id, today))
    ).one()
    collected = await _count(
        session,
        select(_sum(PaymentsByDay.collected)).where(
            PaymentsByDay.organization_id == organization_id,
            PaymentsByDay.on_date >= month_start,
            PaymentsByDay.on_date <= today,
        ),
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
        units=int(units),
        occupied_units=int(occupied),
        occupancy_rate=round(int(occupied) / int(units), 4) if units else 0.0,
        monthly_rent_roll=int(rent_roll),
        collected_this_month=collected,
        outstanding_balance=int(outstanding),
        deposits_held=int(deposits),
        overdue_leases=int(overdue),
        leases_expiring=ExpiringOut(
            **{f"in{d}": int(n) for d, n in zip(EXPIRING, expiring, strict=True)}
        ),
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
