"""The dashboard as it was computed before issue 19, kept as a test oracle (not in src).

It reads every active lease and every ledger line of the organization and runs the FIFO
aging per lease in Python: slow at scale, but plainly right. The maintained totals the
dashboard now adds up (haven.ledger.totals) must give the same figures.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.dashboard.schemas import DashboardOut, ExpiringOut, MaintenanceOut
from haven.dashboard.service import OPEN_STATUSES
from haven.leases.service import rents_in_force
from haven.ledger import repository
from haven.ledger.aging import deposit_held, summarize
from haven.models import Lease, MaintenanceRequest, Property, Unit
from haven.organizations.service import get_organization, today_in


async def _count(session: AsyncSession, stmt: Any) -> int:
    return int((await session.execute(stmt)).scalar_one())


async def old_compute(session: AsyncSession, organization_id: uuid.UUID) -> DashboardOut:
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


def as_json(board: DashboardOut) -> dict[str, Any]:
    """The figures as the API's JSON spells them, without `generatedAt`."""
    out = dict(msgspec.json.decode(msgspec.json.encode(board)))
    out.pop("generatedAt")
    return out
