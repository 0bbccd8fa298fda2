"""Rent charges and late fees: what is due on a date, posted once per (lease, kind, period).

For the month containing the run date, every active lease in force that month
owes its rent, due on its dueDay. When the run date is past the due date plus
graceDays and that rent is still unpaid (FIFO allocation, haven.ledger.aging),
the lease's late fee is due too: a flat amount, or basis points of the rent.

Each charge carries a billing key `kind:lease:YYYY-MM` with a unique index,
inserted with ON CONFLICT DO NOTHING, so a second run, or three instances
running at once, post each charge exactly once. The Redis lock in `run`
only saves the duplicate work.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from haven.leases import service as leases
from haven.ledger.aging import Line, summarize
from haven.models import Lease, LedgerEntry
from haven.store import org_cache

BASIS_POINTS = 10_000


@dataclass(slots=True)
class PlannedCharge:
    organization_id: uuid.UUID
    lease_id: uuid.UUID
    kind: str
    amount: int
    due_date: date
    description: str
    billing_key: str
    posted: bool = False
    existed: bool = False


@dataclass(slots=True)
class BillingResult:
    on: date
    period: str
    dry_run: bool
    charges: list[PlannedCharge]

    @property
    def posted(self) -> int:
        return sum(1 for c in self.charges if c.posted)

    @property
    def already_posted(self) -> int:
        return sum(1 for c in self.charges if c.existed)


def period_of(on: date) -> tuple[date, date, str]:
    last = calendar.monthrange(on.year, on.month)[1]
    return on.replace(day=1), on.replace(day=last), f"{on.year:04d}-{on.month:02d}"


def billing_key(kind: str, lease_id: uuid.UUID, period: str) -> str:
    return f"{kind}:{lease_id}:{period}"


def late_fee_amount(lease: Lease) -> int:
    if lease.late_fee_kind is None or not lease.late_fee_amount:
        return 0
    if lease.late_fee_kind == "flat":
        return lease.late_fee_amount
    return lease.rent * lease.late_fee_amount // BASIS_POINTS


async def _leases_due(
    session: AsyncSession, organization_id: uuid.UUID | None, start: date, end: date
) -> Sequence[Lease]:
    stmt = select(Lease).where(
        Lease.status == "active",
        Lease.start_date <= end,
        (Lease.end_date.is_(None)) | (Lease.end_date >= start),
    )
    if organization_id is not None:
        stmt = stmt.where(Lease.organization_id == organization_id)
    return (await session.execute(stmt.order_by(Lease.created_at, Lease.id))).scalars().all()


async def _ledgers(
    session: AsyncSession, lease_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, list[Line]], dict[str, uuid.UUID]]:
    lines: dict[uuid.UUID, list[Line]] = {i: [] for i in lease_ids}
    keyed: dict[str, uuid.UUID] = {}
    if not lease_ids:
        return lines, keyed
    stmt = select(LedgerEntry).where(LedgerEntry.lease_id.in_(lease_ids))
    for e in (await session.execute(stmt)).scalars():
        lines[e.lease_id].append(Line(e.id, e.type, e.amount, e.date, e.reverses_id, e.created_at))
        if e.billing_key is not None:
            keyed[e.billing_key] = e.id
    return lines, keyed


async def plan(
    session: AsyncSession, organization_id: uuid.UUID | None, on: date
) -> tuple[str, list[PlannedCharge]]:
    """The rent and late-fee charges due on `on` (already posted ones marked `existed`)."""
    start, end, period = period_of(on)
    due_leases = await _leases_due(session, organization_id, start, end)
    ledgers, keyed = await _ledgers(session, [lease.id for lease in due_leases])
    planned: list[PlannedCharge] = []
    for lease in due_leases:
        due = start.replace(day=lease.due_day)
        rent_key = billing_key("rent", lease.id, period)
        rent = PlannedCharge(
            lease.organization_id,
            lease.id,
            "rent",
            lease.rent,
            due,
            f"Rent {period}",
            rent_key,
            existed=rent_key in keyed,
        )
        planned.append(rent)
        fee = late_fee_amount(lease)
        if fee <= 0 or (on - due).days <= lease.grace_days:
            continue
        lines = list(ledgers[lease.id])
        rent_id = keyed.get(rent_key)
        if rent_id is None:  # not posted yet: it will be, in this run
            rent_id = uuid.uuid4()
            lines.append(Line(rent_id, "charge", lease.rent, due, None, datetime.now(UTC)))
        if summarize(lines, on).unpaid.get(rent_id, 0) <= 0:
            continue
        fee_key = billing_key("late_fee", lease.id, period)
        planned.append(
            PlannedCharge(
                lease.organization_id,
                lease.id,
                "late_fee",
                fee,
                on,
                f"Late fee {period}",
                fee_key,
                existed=fee_key in keyed,
            )
        )
    return period, planned


async def _insert(session: AsyncSession, charge: PlannedCharge) -> bool:
    """Insert unless its billing key exists; True when this call posted it."""
    bind = session.get_bind()
    insert = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(LedgerEntry)
        .values(
            id=uuid.uuid4(),
            organization_id=charge.organization_id,
            lease_id=charge.lease_id,
            type="charge",
            kind=charge.kind,
            amount=charge.amount,
            date=charge.due_date,
            description=charge.description,
            billing_key=charge.billing_key,
            created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["billing_key"])
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def run(
    session: AsyncSession, organization_id: uuid.UUID | None, on: date, *, dry_run: bool
) -> BillingResult:
    """Plan and (unless dry_run) post the charges; the caller commits."""
    period, charges = await plan(session, organization_id, on)
    if not dry_run:
        for charge in charges:
            if charge.existed:
                continue
            charge.posted = await _insert(session, charge)
            if not charge.posted:
                charge.existed = True
            else:
                org_cache.mark_changed(session, charge.organization_id)
        today = datetime.now(UTC).date()
        await leases.end_expired(session, organization_id, min(on, today))
    return BillingResult(on=on, period=period, dry_run=dry_run, charges=charges)
