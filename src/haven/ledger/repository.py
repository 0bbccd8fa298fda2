"""Ledger queries: the only SQL the ledger needs."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.db.reader import Reader
from haven.ledger.aging import Line
from haven.models import Lease, LedgerEntry, Organization


class EntryRow(NamedTuple):
    """A ledger entry as the ledger view shows it (a row of `ledger_entries`)."""

    id: uuid.UUID
    type: str
    kind: str | None
    amount: int
    date: dt.date
    description: str | None
    reference: str | None
    reverses_id: uuid.UUID | None
    created_at: dt.datetime


class LedgerRow(NamedTuple):
    """One row of `LEDGER`: the organization's currency and timezone, then an entry's
    columns (all None for a lease without entries: the entries are outer-joined)."""

    org_currency: str
    org_timezone: str
    id: uuid.UUID | None
    type: str | None
    kind: str | None
    amount: int | None
    date: dt.date | None
    description: str | None
    reference: str | None
    reverses_id: uuid.UUID | None
    created_at: dt.datetime | None

    def entry(self) -> EntryRow | None:
        return None if self.id is None else EntryRow._make(self[2:])


def line_of(entry: LedgerEntry | EntryRow | Any) -> Line:
    """A ledger line of an entry, or of a row selected with LINE_COLUMNS."""
    return Line(
        id=entry.id,
        type=entry.type,
        amount=entry.amount,
        date=entry.date,
        reverses_id=entry.reverses_id,
        created_at=entry.created_at,
        kind=entry.kind,
    )


def _ledger_statement() -> Select[Any]:
    entry = LedgerEntry.__table__
    return (
        select(
            Organization.currency.label("org_currency"),
            Organization.timezone.label("org_timezone"),
            *(entry.c[name] for name in EntryRow._fields),
        )
        .select_from(Lease)
        .join(Organization, Organization.id == Lease.organization_id)
        .outerjoin(entry, entry.c.lease_id == Lease.id)
        .where(Lease.id == bindparam("lease_id"), Lease.organization_id == bindparam("org_id"))
        .order_by(entry.c.created_at, entry.c.id)
    )


# Built once: only the two ids change between requests.
LEDGER = _ledger_statement()


async def ledger_rows(
    reader: Reader, organization_id: uuid.UUID, lease_id: uuid.UUID
) -> list[LedgerRow]:
    """A lease's entries in posting order, each with its organization's currency and timezone.

    One statement (the lease, its organization and its entries joined): no rows means no
    such lease in this organization; a lease without entries gives one row whose entry
    columns are all NULL.
    """
    return await reader.rows(LEDGER, {"lease_id": lease_id, "org_id": organization_id}, LedgerRow)


# A ledger line's columns, in `Line`'s order after the lease (also haven.ledger.totals).
LINE_COLUMNS = (
    LedgerEntry.id,
    LedgerEntry.lease_id,
    LedgerEntry.type,
    LedgerEntry.amount,
    LedgerEntry.date,
    LedgerEntry.reverses_id,
    LedgerEntry.created_at,
    LedgerEntry.kind,
)


async def lines_by_lease(
    session: AsyncSession, organization_id: uuid.UUID
) -> dict[uuid.UUID, list[Line]]:
    """Every ledger line of an organization, grouped by lease (dashboard, reports, billing)."""
    stmt = select(*LINE_COLUMNS).where(LedgerEntry.organization_id == organization_id)
    out: dict[uuid.UUID, list[Line]] = {}
    for row in await session.execute(stmt):
        out.setdefault(row.lease_id, []).append(line_of(row))
    return out


async def balance_of(session: AsyncSession, lease_id: uuid.UUID) -> int:
    stmt = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.lease_id == lease_id
    )
    return int((await session.execute(stmt)).scalar_one())
