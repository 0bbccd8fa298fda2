"""Whether a resident may still sign in: the rule, and its one query.

A resident (role `resident`, haven.models.organization.RESIDENT) signs in for one tenant.
Their access lasts while any lease of that tenant has not ended, and RESIDENT_GRACE_DAYS
(config) after the last one ended, counted in days in the organization's time zone:

- a draft or active lease with no end date (month-to-month), or one ending in the future,
  keeps access open; a renewal is another lease of the same tenant, so it extends access;
- a terminated lease ends on its `terminated_on` (else its end date, else the day it was
  last changed); an ended one on its end date (else the day it was last changed).

Staff revoke access outright by removing the resident's login (haven.residents.service).
The principal (haven.auth.principal) applies the rule on every request of a resident, so
access that ended is seen at once on every instance without a job.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, timedelta
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.clock import today_in_zone
from haven.models import Lease, LeaseTenant, Membership, Organization


class LeaseSpan(NamedTuple):
    status: str
    end_date: date | None
    terminated_on: date | None
    changed_on: date


def last_day(leases: Iterable[LeaseSpan]) -> date | None:
    """The day the tenant's last lease ends; date.max while one is open-ended or in force
    with no end; None without leases."""
    last: date | None = None
    for lease in leases:
        if lease.status == "terminated":
            end = lease.terminated_on or lease.end_date or lease.changed_on
        elif lease.status == "ended":
            end = lease.end_date or lease.changed_on
        else:  # draft or active
            end = lease.end_date or date.max
        last = end if last is None else max(last, end)
    return last


def access_open(leases: Iterable[LeaseSpan], today: date, grace_days: int) -> bool:
    """Whether a resident with these leases may sign in on `today` (see the module)."""
    end = last_day(leases)
    if end is None:
        return False
    return end == date.max or today <= end + timedelta(days=grace_days)


async def tenant_access(
    session: AsyncSession, organization_id: uuid.UUID, tenant_id: uuid.UUID, grace_days: int
) -> bool:
    """Whether the tenant's resident may sign in today in the organization's time zone."""
    zone = await session.scalar(
        select(Organization.timezone).where(Organization.id == organization_id)
    )
    if zone is None:
        return False
    stmt = (
        select(Lease.status, Lease.end_date, Lease.terminated_on, Lease.updated_at)
        .join(LeaseTenant, LeaseTenant.lease_id == Lease.id)
        .where(LeaseTenant.tenant_id == tenant_id, Lease.organization_id == organization_id)
    )
    spans = [
        LeaseSpan(row[0], row[1], row[2], row[3].date()) for row in await session.execute(stmt)
    ]
    return access_open(spans, today_in_zone(zone), grace_days)


async def resident_tenant(
    session: AsyncSession, user_id: uuid.UUID, organization_id: uuid.UUID
) -> uuid.UUID | None:
    """The tenant a resident member signs in for (None: not a resident of it)."""
    stmt = select(Membership.tenant_id).where(
        Membership.user_id == user_id,
        Membership.organization_id == organization_id,
        Membership.role == "resident",
    )
    return await session.scalar(stmt)
