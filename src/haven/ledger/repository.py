"""Ledger queries: the only SQL the ledger needs."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Select, Text, bindparam, cast, func, literal_column, null, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from haven.db.reader import Reader
from haven.ledger.aging import Line
from haven.models import Lease, LeaseBalance, LedgerEntry, Organization, PaymentsByDay


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


# A new entry's one read (the charge, credit and payment POSTs): the lease's status, its
# organization's time zone, and its lines after its `lease_balances` row is locked.


class LockedRow(NamedTuple):
    """One row of `_locking`: the lease and its organization, whether the lines are as of
    the lock (`fresh`), whether a payment's day total was written (`collected`), then one
    line's columns (all None for a lease without entries: the lines are outer-joined)."""

    status: str
    timezone: str
    fresh: bool | None
    collected: int | None
    id: uuid.UUID | None
    type: str | None
    amount: int | None
    date: dt.date | None
    reverses_id: uuid.UUID | None
    created_at: dt.datetime | None
    kind: str | None


@dataclass(frozen=True, slots=True)
class Locked:
    """What a new entry's rules need of its lease, read under the lease's totals lock."""

    status: str
    timezone: str
    lines: list[Line]  # every line of the lease, as of the lock


_LINE_FIELDS = ("id", "type", "amount", "date", "reverses_id", "created_at", "kind")


def _locking(dialect: str, payment: bool) -> Select[Any]:
    """The lease (404: no row), its organization and its lines, in one statement.

    On PostgreSQL the lease's row is locked (FOR KEY SHARE), then its `lease_balances` row
    (FOR UPDATE, in a CTE): a writer
    of the lease's ledger holds that lock to its commit (haven.ledger.totals). The lines are
    read in the statement's snapshot, taken before the lock was granted: they are the lines
    as of the lock only if no writer committed in between, which every writer's commit shows
    by updating that row, so `fresh` compares the row version locked (`xmin`: PostgreSQL's
    latest version, once the lock is granted) with the one in the snapshot. A payment's
    day total is added in it too, from the locked row (so after the lock, as every ledger
    writer takes them: its lease's row, then the day's). A lease without that row yet
    (no entry so far) locks nothing here: `fresh` is NULL, and `lock_for_entry` takes the
    lock with an upsert, as haven.ledger.totals does.
    On SQLite (BEGIN IMMEDIATE: the write lock is held already) the lines are as of it."""
    entry = LedgerEntry.__table__
    balances: Any = LeaseBalance.__table__
    lease_id = bindparam("lease_id", type_=Lease.id.type)
    org_id = bindparam("org_id", type_=Lease.organization_id.type)
    fresh: Any = null()
    collected: Any = null()
    stmt: Any = select(Lease.status, Organization.timezone).select_from(Lease)
    stmt = stmt.join(Organization, Organization.id == Lease.organization_id)
    if dialect == "postgresql":
        # The lease's row first (FOR KEY SHARE, what the entry's foreign key takes anyway),
        # then its totals row: the order every other ledger writer takes them in (their
        # entries' foreign keys at the flush, the totals at the commit), so a payment never
        # holds the totals row while it waits for a writer holding the lease's row.
        lease_first = (
            select(Lease.id)
            .where(Lease.id == lease_id, Lease.organization_id == org_id)
            .with_for_update(read=True, key_share=True)
            .scalar_subquery()
        )
        locked = (
            select(balances.c.lease_id, literal_column("xmin").label("version"))
            .where(balances.c.lease_id == lease_first, balances.c.organization_id == org_id)
            .with_for_update()
            .cte("haven_locked")
        )
        seen = (
            select(literal_column("xmin"))
            .select_from(balances)
            .where(balances.c.lease_id == lease_id)
            .scalar_subquery()
        )
        fresh = locked.c.version == seen
        stmt = stmt.outerjoin(locked, true())
        if payment:
            days: Any = PaymentsByDay.__table__
            source = select(
                org_id, bindparam("paid_on", type_=days.c.on_date.type),
                bindparam("paid", type_=days.c.collected.type),
            ).select_from(locked)  # fmt: skip
            add = postgresql.insert(days).from_select(
                ["organization_id", "on_date", "collected"], source
            )
            written = (
                add.on_conflict_do_update(
                    index_elements=[days.c.organization_id, days.c.on_date],
                    set_={"collected": days.c.collected + add.excluded.collected},
                )
                .returning(days.c.on_date)
                .cte("haven_collected")
            )
            collected = select(func.count()).select_from(written).scalar_subquery()
    stmt = stmt.add_columns(fresh.label("fresh"), collected.label("collected"))
    stmt = stmt.add_columns(*(entry.c[name] for name in _LINE_FIELDS))
    stmt = stmt.outerjoin(entry, entry.c.lease_id == Lease.id)
    return stmt.where(Lease.id == lease_id, Lease.organization_id == org_id)


_LOCKING = {
    (dialect, payment): _locking(dialect, payment)
    for dialect in ("postgresql", "sqlite")
    for payment in (False, True)
}


def _lock_balance(dialect_insert: Any) -> Any:
    balances: Any = LeaseBalance.__table__
    stmt = dialect_insert(balances).values(
        lease_id=bindparam("lease_id", type_=balances.c.lease_id.type),
        organization_id=bindparam("org_id", type_=balances.c.organization_id.type),
    )
    return stmt.on_conflict_do_update(
        index_elements=[balances.c.lease_id], set_={"balance": balances.c.balance}
    )


def _add_paid(dialect_insert: Any) -> Any:
    days: Any = PaymentsByDay.__table__
    stmt = dialect_insert(days).values(
        organization_id=bindparam("org_id", type_=days.c.organization_id.type),
        on_date=bindparam("paid_on", type_=days.c.on_date.type),
        collected=bindparam("paid", type_=days.c.collected.type),
    )
    return stmt.on_conflict_do_update(
        index_elements=[days.c.organization_id, days.c.on_date],
        set_={"collected": days.c.collected + stmt.excluded.collected},
    )


_LOCK_BALANCE = {
    "postgresql": _lock_balance(postgresql.insert),
    "sqlite": _lock_balance(sqlite.insert),
}
ADD_PAID = {"postgresql": _add_paid(postgresql.insert), "sqlite": _add_paid(sqlite.insert)}
_LINES = select(*(getattr(LedgerEntry, name) for name in _LINE_FIELDS)).where(
    LedgerEntry.lease_id == bindparam("lease_id")
)


def _line(row: Any) -> Line:
    return Line(
        id=row.id,
        type=row.type,
        amount=row.amount,
        date=row.date,
        reverses_id=row.reverses_id,
        created_at=row.created_at,
        kind=row.kind,
    )


async def lock_for_entry(
    session: AsyncSession,
    organization_id: uuid.UUID,
    lease_id: uuid.UUID,
    paid: tuple[dt.date, int] | None = None,
) -> Locked | None:
    """The lease (None: not the organization's), its organization's time zone and its lines
    as of the lock on its `lease_balances` row, which is held to the commit; `paid` (a
    payment's receipt date and amount) is added to that day's total after the lock.

    One statement on PostgreSQL when no writer of the lease committed while it waited for
    the lock (`_locking`); otherwise the lines are read again now that it holds it (and a
    lease's first entry takes the lock with an upsert first, as haven.ledger.totals does)."""
    dialect = session.sync_session.get_bind().dialect.name
    ids: dict[str, Any] = {"lease_id": lease_id, "org_id": organization_id}
    day = {} if paid is None else {"paid_on": paid[0], "paid": paid[1]}
    rows = [
        LockedRow._make(row)
        for row in await session.execute(_LOCKING[dialect, paid is not None], ids | day)
    ]
    if not rows:
        return None
    first = rows[0]
    lines = [_line(row) for row in rows if row.id is not None]
    if dialect == "postgresql" and not first.fresh:
        await session.execute(_LOCK_BALANCE[dialect], ids)  # held already, unless it is new
        lines = [_line(row) for row in await session.execute(_LINES, ids)]
    if day and not (dialect == "postgresql" and first.collected):
        await session.execute(ADD_PAID[dialect], ids | day)
    return Locked(first.status, first.timezone, lines)


# The same read without a lock, on PostgreSQL (the charge, credit and payment POSTs): the
# lease's status, its time zone, its lines and the version of its `lease_balances` row
# (`xmin`: the transaction that last wrote it; NULL: no row yet), in one statement's
# snapshot. Every writer of a lease's entries rewrites that row in the same transaction
# (haven.ledger.totals), so the commit's guarded change (`settle` with `seen`) writes the
# totals only if the row is still that version: the lines are still these.


class SeenRow(NamedTuple):
    """One row of `_SEEING`: `LockedRow` with the totals row's version instead of the lock's
    flags."""

    status: str
    timezone: str
    version: str | None
    id: uuid.UUID | None
    type: str | None
    amount: int | None
    date: dt.date | None
    reverses_id: uuid.UUID | None
    created_at: dt.datetime | None
    kind: str | None


def _seeing() -> Select[Any]:
    entry = LedgerEntry.__table__
    balances: Any = LeaseBalance.__table__
    lease_id = bindparam("lease_id", type_=Lease.id.type)
    version = (
        select(cast(literal_column("lease_balances.xmin"), Text))
        .where(balances.c.lease_id == lease_id)
        .scalar_subquery()
    )
    stmt: Any = select(Lease.status, Organization.timezone, version.label("version"))
    stmt = stmt.add_columns(*(entry.c[name] for name in _LINE_FIELDS)).select_from(Lease)
    stmt = stmt.join(Organization, Organization.id == Lease.organization_id)
    stmt = stmt.outerjoin(entry, entry.c.lease_id == Lease.id)
    org_id = bindparam("org_id", type_=Lease.organization_id.type)
    return stmt.where(Lease.id == lease_id, Lease.organization_id == org_id)


_SEEING = _seeing()


async def seen_for_entry(
    reader: Reader, organization_id: uuid.UUID, lease_id: uuid.UUID
) -> tuple[Locked, str | None] | None:
    """The lease (None: not the organization's), its time zone and lines, and its totals
    row's version (None: no row yet), read without a lock (PostgreSQL)."""
    rows = await reader.rows(_SEEING, {"lease_id": lease_id, "org_id": organization_id}, SeenRow)
    if not rows:
        return None
    first = rows[0]
    lines = [_line(row) for row in rows if row.id is not None]
    return Locked(first.status, first.timezone, lines), first.version
