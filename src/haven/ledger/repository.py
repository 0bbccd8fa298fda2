"""Ledger queries: the only SQL the ledger needs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.ledger.aging import Line
from haven.models import LedgerEntry


def line_of(entry: LedgerEntry) -> Line:
    return Line(
        id=entry.id,
        type=entry.type,
        amount=entry.amount,
        date=entry.date,
        reverses_id=entry.reverses_id,
        created_at=entry.created_at,
    )


async def entries_of(session: AsyncSession, lease_id: uuid.UUID) -> Sequence[LedgerEntry]:
    stmt = (
        select(LedgerEntry)
        .where(LedgerEntry.lease_id == lease_id)
        .order_by(LedgerEntry.created_at, LedgerEntry.id)
    )
    return (await session.execute(stmt)).scalars().all()


async def lines_by_lease(
    session: AsyncSession, organization_id: uuid.UUID
) -> dict[uuid.UUID, list[Line]]:
    """Every ledger line of an organization, grouped by lease (dashboard, reports, billing)."""
    stmt = select(
        LedgerEntry.id,
        LedgerEntry.lease_id,
        LedgerEntry.type,
        LedgerEntry.amount,
        LedgerEntry.date,
        LedgerEntry.reverses_id,
        LedgerEntry.created_at,
    ).where(LedgerEntry.organization_id == organization_id)
    out: dict[uuid.UUID, list[Line]] = {}
    for row in await session.execute(stmt):
        out.setdefault(row.lease_id, []).append(
            Line(row.id, row.type, row.amount, row.date, row.reverses_id, row.created_at)
        )
    return out


async def balance_of(session: AsyncSession, lease_id: uuid.UUID) -> int:
    stmt = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.lease_id == lease_id
    )
    return int((await session.execute(stmt)).scalar_one())
