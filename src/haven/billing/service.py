"""Rent, recurring charges and late fees: what is due on a date, posted once per key.

What a lease owes for a month comes from haven.billing.schedule (proration by
days, rent changes, recurring charges, due dates inside the lease). A run on a
date posts the charges of that date's month whose covered days have begun. When
the run date is past a rent charge's due date plus graceDays and that charge is
still unpaid (FIFO allocation, haven.ledger.aging), the lease's late fee is due
too: a flat amount, or basis points of that rent charge.

Each charge carries a billing key (`rent:<lease>:YYYY-MM`,
`recurring:<charge>:YYYY-MM`, `late_fee:<lease>:YYYY-MM`) with a unique index, so
a second run, or three instances running at once, post each charge exactly once:
a loser's INSERT fails inside a savepoint and the charge is reported as already
posted. Entries are written through the ORM, so the write recorder (haven.uow) audits each.

When a posted charge no longer matches its schedule (a termination or a rent
change after it was posted), `reconcile` posts the difference as an adjustment
(`adj<n>:<key>`): a credit when less is owed, a charge when more is.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from haven.billing import schedule
from haven.billing.schedule import Due, Recurring, RentChange, Terms
from haven.leases import service as leases
from haven.ledger.aging import Line, summarize
from haven.ledger.repository import LINE_COLUMNS, line_of
from haven.models import Lease, LedgerEntry, Organization, RecurringCharge
from haven.models import RentChange as RentChangeRow
from haven.organizations.service import today_in
from haven.uow import emit, mark_changed

BASIS_POINTS = 10_000
SYSTEM_ACTOR = "system:billing"
BILLED_STATUSES = ("active", "ended", "terminated")


@dataclass(slots=True)
class PlannedCharge:
    organization_id: uuid.UUID
    lease_id: uuid.UUID
    kind: str
    amount: int  # signed as it moves the balance: an adjustment credit is negative
    due_date: date
    description: str
    billing_key: str
    entry_type: str = "charge"
    # would_post (dry run, or not yet tried), posted (by this run), already_posted.
    status: str = "would_post"
    entry_id: uuid.UUID | None = None

    @property
    def posted(self) -> bool:
        return self.status == "posted"

    @property
    def existed(self) -> bool:
        return self.status == "already_posted"


@dataclass(slots=True)
class BillingResult:
    on: date
    period: str
    dry_run: bool
    charges: list[PlannedCharge] = field(default_factory=list)

    @property
    def posted(self) -> int:
        return sum(1 for c in self.charges if c.posted)

    @property
    def already_posted(self) -> int:
        return sum(1 for c in self.charges if c.existed)


def billing_key(kind: str, lease_id: uuid.UUID, period: str) -> str:
    return f"{kind}:{lease_id}:{period}"


def due_key(due: Due, lease_id: uuid.UUID) -> str:
    if due.key == "rent":
        return billing_key("rent", lease_id, due.period)
    return f"{due.key}:{due.period}"


def late_fee_amount(lease: Lease, rent: int) -> int:
    if lease.late_fee_kind is None or not lease.late_fee_amount:
        return 0
    if lease.late_fee_kind == "flat":
        return lease.late_fee_amount
    return rent * lease.late_fee_amount // BASIS_POINTS


async def _leases_due(
    session: AsyncSession,
    organization_id: uuid.UUID | None,
    start: date,
    end: date,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int | None = None,
) -> Sequence[Lease]:
    """The leases billed for the month [start, end], in (created_at, id) order; a batch of
    `limit` after the keyset `after` (ix_leases_org_created serves both) when given."""
    stmt = select(Lease).where(
        Lease.status.in_(BILLED_STATUSES),
        Lease.start_date <= end,
        (Lease.end_date.is_(None)) | (Lease.end_date >= start),
    )
    if organization_id is not None:
        stmt = stmt.where(Lease.organization_id == organization_id)
    if after is not None:
        stmt = stmt.where(tuple_(Lease.created_at, Lease.id) > tuple_(*after))
    stmt = stmt.order_by(Lease.created_at, Lease.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def terms_of(session: AsyncSession, leases_: Sequence[Lease]) -> dict[uuid.UUID, Terms]:
    """Each lease's billing terms: dates, due day, rent, rent changes, recurring charges."""
    ids = [lease.id for lease in leases_]
    changes: dict[uuid.UUID, list[RentChange]] = {i: [] for i in ids}
    recurring: dict[uuid.UUID, list[Recurring]] = {i: [] for i in ids}
    if ids:
        for row in (
            await session.execute(select(RentChangeRow).where(RentChangeRow.lease_id.in_(ids)))
        ).scalars():
            changes[row.lease_id].append(RentChange(row.effective_date, row.rent))
        stmt = (
            select(RecurringCharge)
            .where(RecurringCharge.lease_id.in_(ids))
            .order_by(RecurringCharge.created_at, RecurringCharge.id)
        )
        for rc in (await session.execute(stmt)).scalars():
            recurring[rc.lease_id].append(
                Recurring(
                    str(rc.id), rc.kind, rc.amount, rc.start_date, rc.end_date, rc.description
                )
            )
    return {
        lease.id: Terms(
            start=lease.start_date,
            end=lease.end_date,
            due_day=lease.due_day,
            rent=lease.rent,
            changes=schedule.sorted_changes(changes[lease.id]),
            recurring=tuple(recurring[lease.id]),
        )
        for lease in leases_
    }


@dataclass(slots=True)
class _Ledger:
    lines: list[Line] = field(default_factory=list)
    keyed: dict[str, Line] = field(default_factory=dict)  # a billing key's entry


async def _ledgers(session: AsyncSession, lease_ids: list[uuid.UUID]) -> dict[uuid.UUID, _Ledger]:
    """Each lease's lines, read as plain rows: a run over every lease of an organization
    reads thousands of entries, which as ORM objects (identity map, instance state) cost
    several times the memory and stayed as the process's high-water mark."""
    out: dict[uuid.UUID, _Ledger] = {i: _Ledger() for i in lease_ids}
    if not lease_ids:
        return out
    stmt = select(*LINE_COLUMNS, LedgerEntry.billing_key).where(LedgerEntry.lease_id.in_(lease_ids))
    for row in await session.execute(stmt):
        book = out[row.lease_id]
        line = line_of(row)
        book.lines.append(line)
        if row.billing_key is not None:
            book.keyed[row.billing_key] = line
    return out


def _period_first(period: str) -> date:
    year, month = period.split("-")
    return date(int(year), int(month), 1)


def _adjustments(lease: Lease, terms: Terms, book: _Ledger, on: date) -> list[PlannedCharge]:
    """Differences between what was posted per billing key and what its schedule says now."""
    posted: dict[str, int] = {}
    for key, entry in book.keyed.items():
        if key.startswith(("rent:", "recurring:")):
            posted[key] = posted.get(key, 0) + entry.amount
    adjusted: dict[str, int] = {}
    for key, entry in book.keyed.items():
        if key.startswith("adj"):
            target = key.split(":", 1)[1]
            posted[target] = posted.get(target, 0) + entry.amount
            adjusted[target] = adjusted.get(target, 0) + 1
    if not posted:
        return []
    expected: dict[str, Due] = {}
    for period in {key.rsplit(":", 1)[1] for key in posted}:
        for scheduled in schedule.period_charges(terms, _period_first(period)):
            expected[due_key(scheduled, lease.id)] = scheduled
    out: list[PlannedCharge] = []
    for key, amount in sorted(posted.items()):
        now_due = expected.get(key)
        want = now_due.amount if now_due is not None else 0
        if want == amount:
            continue
        diff = want - amount
        kind = key.split(":", 1)[0] if now_due is None else now_due.kind
        if kind == "recurring":
            kind = "other"
        out.append(
            PlannedCharge(
                lease.organization_id,
                lease.id,
                kind,
                diff,
                on,
                f"Adjustment of {key.split(':', 1)[0]} {key.rsplit(':', 1)[1]}: "
                + ("now owed" if diff > 0 else "no longer owed"),
                f"adj{adjusted.get(key, 0) + 1}:{key}",
                entry_type="charge" if diff > 0 else "credit",
            )
        )
    return out


def _lease_plan(
    lease: Lease, terms: Terms, book: _Ledger, on: date, *, reconcile: bool
) -> list[PlannedCharge]:
    planned: list[PlannedCharge] = []
    lines = list(book.lines)
    for due in schedule.due_on(terms, on):
        key = due_key(due, lease.id)
        charge = PlannedCharge(
            lease.organization_id,
            lease.id,
            due.kind,
            due.amount,
            due.due_date,
            due.description,
            key,
        )
        entry = book.keyed.get(key)
        if entry is not None:
            charge.status, charge.entry_id, charge.amount = "already_posted", entry.id, entry.amount
        planned.append(charge)
        if due.key != "rent":
            continue
        fee = late_fee_amount(lease, due.amount)
        if fee <= 0 or (on - due.due_date).days <= lease.grace_days:
            continue
        rent_id = entry.id if entry is not None else uuid.uuid4()
        if entry is None:  # not posted yet: it will be, in this run
            lines.append(Line(rent_id, "charge", due.amount, due.due_date, None, datetime.now(UTC)))
        if summarize(lines, on).unpaid.get(rent_id, 0) <= 0:
            continue
        fee_key = billing_key("late_fee", lease.id, due.period)
        late = PlannedCharge(
            lease.organization_id,
            lease.id,
            "late_fee",
            fee,
            on,
            f"Late fee {due.period}",
            fee_key,
        )
        if (fee_entry := book.keyed.get(fee_key)) is not None:
            late.status, late.entry_id = "already_posted", fee_entry.id
            late.amount, late.due_date = fee_entry.amount, fee_entry.date
        planned.append(late)
    if reconcile:
        planned.extend(_adjustments(lease, terms, book, on))
    return planned


async def plan(
    session: AsyncSession, organization_id: uuid.UUID | None, on: date
) -> tuple[str, list[PlannedCharge]]:
    """The charges due on `on`, plus adjustments (already posted ones marked so)."""
    start, end = schedule.month_of(on)
    due_leases = await _leases_due(session, organization_id, start, end)
    return schedule.period_label(on), await _plan_leases(session, due_leases, on)


async def _plan_leases(
    session: AsyncSession, due_leases: Sequence[Lease], on: date
) -> list[PlannedCharge]:
    terms = await terms_of(session, due_leases)
    books = await _ledgers(session, [lease.id for lease in due_leases])
    planned: list[PlannedCharge] = []
    for lease in due_leases:
        planned.extend(_lease_plan(lease, terms[lease.id], books[lease.id], on, reconcile=True))
    return planned


def _entry(charge: PlannedCharge) -> LedgerEntry:
    return LedgerEntry(
        id=uuid.uuid4(),
        organization_id=charge.organization_id,
        lease_id=charge.lease_id,
        type=charge.entry_type,
        kind=charge.kind,
        amount=charge.amount,
        date=charge.due_date,
        description=charge.description,
        billing_key=charge.billing_key,
        created_at=datetime.now(UTC),
    )


async def _post(session: AsyncSession, charge: PlannedCharge) -> None:
    """Insert the charge's entry unless its billing key exists (another run won the race)."""
    entry = _entry(charge)
    try:
        async with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        existing = await session.execute(
            select(LedgerEntry.id).where(LedgerEntry.billing_key == charge.billing_key)
        )
        charge.status, charge.entry_id = "already_posted", existing.scalar_one_or_none()
        return
    charge.status, charge.entry_id = "posted", entry.id
    mark_changed(session, charge.organization_id)


async def post_planned(session: AsyncSession, charges: Sequence[PlannedCharge]) -> None:
    """Post the charges not posted yet: all in one savepoint (one flush, the INSERTs batched);
    when a billing key exists already (a concurrent run won some), one savepoint per charge."""
    todo = [charge for charge in charges if charge.status == "would_post"]
    if len(todo) > 1:
        entries = [_entry(charge) for charge in todo]
        try:
            async with session.begin_nested():
                session.add_all(entries)
        except IntegrityError:
            pass  # the savepoint's rows are gone: charge by charge below
        else:
            for charge, entry in zip(todo, entries, strict=True):
                charge.status, charge.entry_id = "posted", entry.id
                mark_changed(session, charge.organization_id)
            return
    for charge in todo:
        await _post(session, charge)


async def reconcile(session: AsyncSession, org: Organization, lease: Lease) -> list[PlannedCharge]:
    """Post the adjustments one lease's posted charges need after its terms changed.

    Counted as of today where the organization is.
    """
    terms = await terms_of(session, [lease])
    books = await _ledgers(session, [lease.id])
    adjustments = _adjustments(lease, terms[lease.id], books[lease.id], today_in(org))
    await post_planned(session, adjustments)
    return adjustments


def run_date(org: Organization, requested: date | None) -> date:
    """The date a run from the API bills for: the one asked for, or the organization's today."""
    return requested or today_in(org)


async def run_for(
    session: AsyncSession, org: Organization, on: date, *, dry_run: bool
) -> BillingResult:
    """A run from the API: leases move along as of today where the organization is."""
    return await run(session, org.id, on, dry_run=dry_run, today=today_in(org))


async def run(
    session: AsyncSession,
    organization_id: uuid.UUID | None,
    on: date,
    *,
    dry_run: bool,
    today: date | None = None,
) -> BillingResult:
    """Plan and (unless dry_run) post the charges; the caller commits.

    Jobs call this with explicit dates: a billing run is for a given day, and the
    scheduler catches up day by day, each day its own `today` (see `run_for` for the API).

    Before planning, a real run moves leases along as of min(on, today): expired ones
    end, and renewals whose predecessor has ended and whose start has come activate.
    """
    if not dry_run:
        as_of = min(on, today or datetime.now(UTC).date())
        await leases.end_expired(session, organization_id, as_of)
        await leases.activate_renewals(session, organization_id, as_of)
    period, charges = await plan(session, organization_id, on)
    result = BillingResult(on=on, period=period, dry_run=dry_run, charges=charges)
    if not dry_run:
        await post_planned(session, charges)
        _announce(session, result)
    return result


BATCH_SIZE = 500  # leases per transaction of a batched run


@dataclass(slots=True)
class BatchedRun:
    """What a batched run did for one organization: counts, not the charges (flat memory)."""

    organization_id: uuid.UUID
    on: date
    period: str
    leases: int = 0
    batches: int = 0
    posted: int = 0
    already_posted: int = 0


async def run_batched(
    maker: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    organization_id: uuid.UUID,
    on: date,
    *,
    today: date,
    prepare: Callable[[AsyncSession], None] = lambda _session: None,
    committed: Callable[[AsyncSession], Awaitable[None]] | None = None,
    batch_size: int | None = None,
) -> BatchedRun:
    """`run` for one organization in transactions of `batch_size` leases (keyset over
    (created_at, id)), each committed before the next is read: memory stays flat however many
    leases there are, and a run that stops halfway is finished by the next one (the billing
    keys post each charge once). Leases move along first, in their own transaction; the
    `billing_run.completed` event comes last, after every batch.

    `prepare` sets up each session (the audit actor); `committed(session)` runs after each
    commit (to bump the organization's cache version with what the session changed).
    """
    size = batch_size or BATCH_SIZE
    start, end = schedule.month_of(on)
    out = BatchedRun(organization_id, on, schedule.period_label(on))

    async def transaction(work: Callable[[AsyncSession], Awaitable[None]]) -> None:
        async with maker() as session:
            async with session.begin():
                prepare(session)
                await work(session)
            if committed is not None:
                await committed(session)

    async def move_along(session: AsyncSession) -> None:
        as_of = min(on, today)
        await leases.end_expired(session, organization_id, as_of)
        await leases.activate_renewals(session, organization_id, as_of)

    await transaction(move_along)
    after: tuple[datetime, uuid.UUID] | None = None
    posted_ids: list[uuid.UUID] = []
    while True:
        done = False

        async def batch(session: AsyncSession) -> None:
            nonlocal after, done
            due = await _leases_due(session, organization_id, start, end, after, size)
            if not due:
                done = True
                return
            after = (due[-1].created_at, due[-1].id)
            done = len(due) < size
            charges = await _plan_leases(session, due, on)
            await post_planned(session, charges)
            out.leases += len(due)
            out.batches += 1
            for charge in charges:
                if charge.posted and charge.entry_id is not None:
                    out.posted += 1
                    posted_ids.append(charge.entry_id)
                elif charge.existed:
                    out.already_posted += 1

        await transaction(batch)
        if done:
            break
    if posted_ids:

        async def announce(session: AsyncSession) -> None:
            _completed(session, organization_id, on, out.period, posted_ids)

        await transaction(announce)
    return out


def _completed(
    session: AsyncSession,
    org_id: uuid.UUID,
    on: date,
    period: str,
    entry_ids: Sequence[uuid.UUID],
) -> None:
    run_id = uuid.uuid5(org_id, f"billing-run:{on.isoformat()}")
    emit(
        session,
        org_id,
        "billing_run.completed",
        "billing_run",
        run_id,
        {
            "id": str(run_id),
            "date": on.isoformat(),
            "period": period,
            "posted": len(entry_ids),
            "entryIds": [str(i) for i in entry_ids],
        },
    )


def _announce(session: AsyncSession, result: BillingResult) -> None:
    """A `billing_run.completed` event per organization that this run posted anything for.

    The entries themselves are `ledger_entry.posted` events (the outbox sees the ORM
    writes); this one tells a consumer that the run for the date is done, with its id
    stable per organization and date, so a re-run that posts more says so under the same id.
    """
    posted: dict[uuid.UUID, list[PlannedCharge]] = {}
    for charge in result.charges:
        if charge.posted:
            posted.setdefault(charge.organization_id, []).append(charge)
    for org_id, charges in posted.items():
        ids = [c.entry_id for c in charges if c.entry_id is not None]
        _completed(session, org_id, result.on, result.period, ids)
