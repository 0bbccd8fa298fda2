"""Lease terms that change over time: rent changes, recurring charges, renewals.

Billing (haven.billing.schedule) reads them: the rent in force on each day, and the
recurring charges covering it. A renewal is a draft successor lease that starts the
day after its predecessor ends and that billing activates once that day has come.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from haven.db.query import get_owned
from haven.errors import (
    ConflictError,
    FieldError,
    LeaseOverlapError,
    NotFoundError,
    ValidationError,
)
from haven.leases import service
from haven.leases.schemas import RecurringChargeIn, RecurringChargePatch, RenewIn, RentChangeIn
from haven.models import Lease, LedgerEntry, Organization, RecurringCharge, RentChange
from haven.organizations.service import today_in
from haven.uow import add_new

CHANGEABLE = ("draft", "active")


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(errors=[FieldError(field, message)])


def _check_changeable(lease: Lease) -> None:
    if lease.status not in CHANGEABLE:
        raise ConflictError(f"The lease is {lease.status}; its terms can no longer change")


def _check_within(lease: Lease, day: date, field: str) -> None:
    if day < lease.start_date:
        raise _invalid(field, "must be on or after the lease's startDate")
    if lease.end_date is not None and day > lease.end_date:
        raise _invalid(field, "must be on or before the lease's endDate")


async def rent_changes(session: AsyncSession, lease: Lease) -> list[RentChange]:
    stmt = (
        select(RentChange)
        .where(RentChange.lease_id == lease.id)
        .order_by(RentChange.effective_date, RentChange.id)
    )
    return list((await session.execute(stmt)).scalars())


async def add_rent_change(session: AsyncSession, lease: Lease, data: RentChangeIn) -> RentChange:
    """The rent from `effectiveDate` on; a month already billed is adjusted by billing."""
    _check_changeable(lease)
    _check_within(lease, data.effective_date, "effectiveDate")
    change = RentChange(
        organization_id=lease.organization_id,
        lease_id=lease.id,
        effective_date=data.effective_date,
        rent=data.rent,
        source="manual",
    )
    try:
        async with session.begin_nested():
            session.add(change)
    except IntegrityError:
        raise ConflictError("The lease already has a rent change on that date") from None
    return change


async def remove_rent_change(
    session: AsyncSession, org: Organization, lease: Lease, change_id: uuid.UUID
) -> None:
    """Delete a future rent change (one in force today where the organization is: 409)."""
    change = await get_owned(session, RentChange, lease.organization_id, change_id)
    if change.lease_id != lease.id:
        raise NotFoundError(f"No rent change with id {change_id} on this lease")
    _check_changeable(lease)
    if change.effective_date <= today_in(org):
        raise ConflictError("Only a future rent change can be deleted; add a new one instead")
    await session.delete(change)
    await session.flush()


async def recurring_charges(session: AsyncSession, lease: Lease) -> list[RecurringCharge]:
    stmt = (
        select(RecurringCharge)
        .where(RecurringCharge.lease_id == lease.id)
        .order_by(RecurringCharge.start_date, RecurringCharge.created_at, RecurringCharge.id)
    )
    return list((await session.execute(stmt)).scalars())


async def add_recurring_charge(
    session: AsyncSession, lease: Lease, data: RecurringChargeIn
) -> RecurringCharge:
    """A new recurring charge on `lease`, which the caller has locked (FOR UPDATE): a lease
    change (its end date, its termination, which credit what was billed past the end) and
    this charge cannot pass each other, so the dates checked here still hold at the commit."""
    _check_changeable(lease)
    _check_within(lease, data.start_date, "startDate")
    if data.end_date is not None:
        if data.end_date < data.start_date:
            raise _invalid("endDate", "must be on or after startDate")
        _check_within(lease, data.end_date, "endDate")
    charge = RecurringCharge(
        organization_id=lease.organization_id,
        lease_id=lease.id,
        kind=data.kind,
        description=data.description or data.kind.capitalize(),
        amount=data.amount,
        start_date=data.start_date,
        end_date=data.end_date,
    )
    add_new(session, charge)  # written with the commit's one statement, not flushed
    return charge


async def recurring_charge(
    session: AsyncSession, lease: Lease, charge_id: uuid.UUID
) -> RecurringCharge:
    """One of the lease's recurring charges (404 for another lease's or organization's)."""
    charge = await get_owned(session, RecurringCharge, lease.organization_id, charge_id)
    if charge.lease_id != lease.id:
        raise NotFoundError(f"No recurring charge with id {charge_id} on this lease")
    return charge


async def end_recurring_charge(
    session: AsyncSession, lease: Lease, charge: RecurringCharge, data: RecurringChargePatch
) -> RecurringCharge:
    """Set the charge's last day; months already billed past it are adjusted by billing."""
    _check_changeable(lease)
    if data.end_date is not None:
        if data.end_date < charge.start_date:
            raise _invalid("endDate", "must be on or after the charge's startDate")
        _check_within(lease, data.end_date, "endDate")
    charge.end_date = data.end_date
    await session.flush()
    return charge


async def remove_recurring_charge(
    session: AsyncSession, lease: Lease, charge_id: uuid.UUID
) -> None:
    """Delete a recurring charge that was never billed (a billed one is history: 409;
    end it with an endDate instead)."""
    charge = await recurring_charge(session, lease, charge_id)
    _check_changeable(lease)
    billed = await session.execute(
        select(LedgerEntry.id).where(LedgerEntry.billing_key.like(f"recurring:{charge.id}:%"))
    )
    if billed.first() is not None:
        raise ConflictError("This recurring charge has been billed; it cannot be deleted")
    await session.delete(charge)
    await session.flush()


async def renew(session: AsyncSession, lease: Lease, data: RenewIn) -> Lease:
    """A draft successor on the same unit, tenants and terms, from the day after this one ends.

    A month-to-month lease ends the day before the renewal's startDate. The successor
    activates when this lease has ended (the billing run does it), so the two never
    overlap and the handover month is split between them by days.
    """
    lease = await service.get(session, lease.organization_id, lease.id, for_update=True)
    if lease.status != "active":
        raise ConflictError(f"Only an active lease can be renewed; this one is {lease.status}")
    taken = await session.execute(
        select(Lease.id).where(Lease.renews_id == lease.id, Lease.status.in_(CHANGEABLE))
    )
    if taken.first() is not None:
        raise ConflictError("This lease already has a renewal")
    start = data.start_date
    if lease.end_date is None:
        if start is None:
            raise _invalid("startDate", "required to renew a month-to-month lease")
        if start <= lease.start_date:
            raise LeaseOverlapError("The renewal would start before this lease does")
    else:
        follow = lease.end_date + timedelta(days=1)
        start = start or follow
        if start < follow:
            raise LeaseOverlapError(f"The renewal overlaps this lease, which ends {lease.end_date}")
        if start > follow:
            raise _invalid("startDate", f"a renewal starts the day after this lease ends: {follow}")
    if data.end_date is not None and data.end_date < start:
        raise _invalid("endDate", "must be on or after startDate")
    clash = await session.execute(
        select(Lease.id)
        .where(
            Lease.unit_id == lease.unit_id,
            Lease.status == "active",
            Lease.id != lease.id,
            (Lease.end_date.is_(None)) | (Lease.end_date >= start),
            *([Lease.start_date <= data.end_date] if data.end_date is not None else []),
        )
        .limit(1)
    )
    if (other := clash.scalar_one_or_none()) is not None:
        raise LeaseOverlapError(f"Active lease {other} on this unit overlaps the renewal")
    if lease.end_date is None:
        lease.end_date = start - timedelta(days=1)
    tenants = (await service.tenants_of(session, [lease.id]))[lease.id]
    successor = Lease(
        organization_id=lease.organization_id,
        unit_id=lease.unit_id,
        status="draft",
        start_date=start,
        end_date=data.end_date,
        rent=data.rent,
        deposit=lease.deposit,
        due_day=lease.due_day,
        grace_days=lease.grace_days,
        late_fee_kind=lease.late_fee_kind,
        late_fee_amount=lease.late_fee_amount,
        charge_deposit=False,  # the deposit held on this lease carries over
        escalation_basis_points=lease.escalation_basis_points,
        escalation_every_months=lease.escalation_every_months,
        renews_id=lease.id,
    )
    session.add(successor)
    await session.flush()
    await service.set_tenants(session, successor.id, tenants)
    await session.flush()
    return successor
