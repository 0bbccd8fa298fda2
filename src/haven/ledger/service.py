"""Ledger rules: post charges, credits and payments; correct only by reversal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from haven.db.query import PlainRow, get_owned
from haven.db.reader import Reader
from haven.errors import ConflictError, NotFoundError
from haven.ledger import repository
from haven.ledger.aging import Summary, ordered, running_balances, summarize
from haven.ledger.schemas import ChargeIn, CreditIn, PaymentIn, ReverseIn
from haven.models import Lease, LedgerEntry, Organization

# Money can only move on a lease that is or was in force.
POSTABLE = frozenset({"active", "ended", "terminated"})


async def organization_of(session: AsyncSession, organization_id: uuid.UUID) -> Organization:
    org = await session.get(Organization, organization_id)
    if org is None:  # the session outlived its organization
        raise ConflictError("The organization no longer exists")
    return org


def today_in(org: Organization) -> date:
    """Today's date where the organization is (its timezone), so due dates age locally."""
    return today_in_zone(org.timezone)


def today_in_zone(timezone: str) -> date:
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return datetime.now(UTC).astimezone(zone).date()


@dataclass(frozen=True, slots=True)
class LedgerView:
    currency: str
    summary: Summary
    entries: list[tuple[PlainRow, int]]  # (entry, balanceAfter)


async def view(reader: Reader, organization_id: uuid.UUID, lease_id: uuid.UUID) -> LedgerView:
    """The ledger of a lease of the organization (404 for any other), read in one statement."""
    rows = await repository.ledger_rows(reader, organization_id, lease_id)
    if not rows:
        raise NotFoundError(f"No lease with id {lease_id}")
    entries = [row for row in rows if row.id is not None]
    by_id = {e.id: e for e in entries}
    lines = ordered(repository.line_of(e) for e in entries)
    after = running_balances(lines)
    return LedgerView(
        currency=rows[0].org_currency,
        summary=summarize(lines, today_in_zone(rows[0].org_timezone)),
        entries=[(by_id[line.id], bal) for line, bal in zip(lines, after, strict=True)],
    )


def _check_postable(lease: Lease) -> None:
    if lease.status not in POSTABLE:
        raise ConflictError(f"The lease is {lease.status}; activate it before posting money")


async def _post(session: AsyncSession, entry: LedgerEntry) -> tuple[LedgerEntry, int]:
    session.add(entry)
    await session.flush()
    return entry, await repository.balance_of(session, entry.lease_id)


async def post_charge(
    session: AsyncSession, lease: Lease, data: ChargeIn, user_id: uuid.UUID | None
) -> tuple[LedgerEntry, int]:
    _check_postable(lease)
    return await _post(
        session,
        LedgerEntry(
            organization_id=lease.organization_id,
            lease_id=lease.id,
            type="charge",
            kind=data.kind,
            amount=data.amount,
            date=data.due_date,
            description=data.description,
            created_by_id=user_id,
        ),
    )


async def post_credit(
    session: AsyncSession, lease: Lease, data: CreditIn, user_id: uuid.UUID | None, today: date
) -> tuple[LedgerEntry, int]:
    _check_postable(lease)
    return await _post(
        session,
        LedgerEntry(
            organization_id=lease.organization_id,
            lease_id=lease.id,
            type="credit",
            kind="credit",
            amount=-data.amount,
            date=data.date or today,
            description=data.description,
            created_by_id=user_id,
        ),
    )


async def post_payment(
    session: AsyncSession, lease: Lease, data: PaymentIn, user_id: uuid.UUID | None
) -> tuple[LedgerEntry, int]:
    _check_postable(lease)
    return await _post(
        session,
        LedgerEntry(
            organization_id=lease.organization_id,
            lease_id=lease.id,
            type="payment",
            kind=data.method,
            amount=-data.amount,
            date=data.received_on,
            description=f"Payment ({data.method})",
            method=data.method,
            reference=data.reference,
            created_by_id=user_id,
        ),
    )


async def get_entry(
    session: AsyncSession, organization_id: uuid.UUID, entry_id: uuid.UUID
) -> LedgerEntry:
    return await get_owned(session, LedgerEntry, organization_id, entry_id)


async def reverse(
    session: AsyncSession,
    entry: LedgerEntry,
    data: ReverseIn | None,
    user_id: uuid.UUID | None,
    today: date,
) -> tuple[LedgerEntry, int]:
    """Undo `entry` with a new entry of the opposite amount; an entry is reversed at most once."""
    if entry.type == "reversal":
        raise ConflictError("A reversal cannot be reversed; post a new entry instead")
    already = await session.execute(
        select(LedgerEntry.id).where(LedgerEntry.reverses_id == entry.id)
    )
    if already.first() is not None:
        raise ConflictError("This entry has already been reversed")
    description = (data.description if data else None) or f"Reversal of {entry.type}"
    reversal = LedgerEntry(
        organization_id=entry.organization_id,
        lease_id=entry.lease_id,
        type="reversal",
        kind=entry.kind,
        amount=-entry.amount,
        date=today,
        description=description,
        reverses_id=entry.id,
        created_by_id=user_id,
    )
    try:
        async with session.begin_nested():
            session.add(reversal)
    except IntegrityError:
        # Another instance reversed it in the same moment: the unique key on reverses_id won.
        raise ConflictError("This entry has already been reversed") from None
    return reversal, await repository.balance_of(session, entry.lease_id)
