"""Ledger rules: post charges, credits and payments; correct only by reversal."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from haven.clock import today_in_zone
from haven.db.query import get_owned
from haven.db.reader import Reader
from haven.errors import ConflictError, FieldError, NotFoundError, ValidationError
from haven.ledger import repository
from haven.ledger.aging import Line, Summary, deposit_held, ordered, running_balances, summarize
from haven.ledger.schemas import (
    ChargeIn,
    CreditIn,
    DepositStatementOut,
    DispositionIn,
    PaymentIn,
    ReverseIn,
    StatementLineOut,
)
from haven.ledger.totals import Seen, settle
from haven.models import Lease, LedgerEntry, Organization
from haven.organizations.service import today_in
from haven.uow import add_new, is_rerun, may_guard

# Money can only move on a lease that is or was in force.
POSTABLE = frozenset({"active", "ended", "terminated"})


@dataclass(frozen=True, slots=True)
class LedgerView:
    currency: str
    summary: Summary
    deposit_held: int
    entries: list[tuple[repository.EntryRow, int]]  # (entry, balanceAfter)


async def view(reader: Reader, organization_id: uuid.UUID, lease_id: uuid.UUID) -> LedgerView:
    """The ledger of a lease of the organization (404 for any other), read in one statement."""
    rows = await repository.ledger_rows(reader, organization_id, lease_id)
    if not rows:
        raise NotFoundError(f"No lease with id {lease_id}")
    entries = [entry for row in rows if (entry := row.entry()) is not None]
    by_id = {e.id: e for e in entries}
    lines = ordered(repository.line_of(e) for e in entries)
    after = running_balances(lines)
    summary = summarize(lines, today_in_zone(rows[0].org_timezone))
    return LedgerView(
        currency=rows[0].org_currency,
        summary=summary,
        deposit_held=deposit_held(lines, summary),
        entries=[(by_id[line.id], bal) for line, bal in zip(lines, after, strict=True)],
    )


def _check_postable(status: str) -> None:
    if status not in POSTABLE:
        raise ConflictError(f"The lease is {status}; activate it before posting money")


class _Contended:
    """Leases whose money POST had to run again lately, on this instance (a hint, never a
    rule: it only picks the locking read). Concurrent writers of one lease (a burst of
    payments on it, a billing run) would change what each unlocked read saw: every first
    run would be refused and done again, twice the work of locking at once
    (bench/RESULTS-writes.md). For `SECONDS` after a run again, its lease's POSTs lock
    first; at most `SIZE` leases are kept, the oldest forgotten first."""

    SECONDS = 5.0
    SIZE = 1024

    def __init__(self) -> None:
        self._until: OrderedDict[uuid.UUID, float] = OrderedDict()

    def mark(self, lease_id: uuid.UUID) -> None:
        self._until[lease_id] = time.monotonic() + self.SECONDS
        self._until.move_to_end(lease_id)
        while len(self._until) > self.SIZE:
            self._until.popitem(last=False)

    def __contains__(self, lease_id: object) -> bool:
        until = self._until.get(lease_id)  # type: ignore[call-overload]
        if until is None:
            return False
        if until < time.monotonic():
            del self._until[lease_id]  # type: ignore[arg-type]
            return False
        return True


CONTENDED = _Contended()


async def _post(
    session: AsyncSession,
    reader: Reader | None,
    organization_id: uuid.UUID,
    lease_id: uuid.UUID,
    entry_of: Callable[[repository.Locked], LedgerEntry],
    paid: tuple[date, int] | None = None,
) -> tuple[LedgerEntry, int]:
    """Read what the rules need, check, then add the entry with `add_new`: the entry, its
    audit row, its event, the lease's new totals (and a payment's day total) and the key's
    record are the commit's one statement. The answer's balance is the read lines' plus the
    entry's, exact since no other writer of the lease commits in between:

    * on PostgreSQL, with `reader` (a request's POST): the read takes no lock (repository
      `seen_for_entry`, in autocommit) and the commit writes only if the lease's totals row
      is still the version it saw (totals `settle` with `seen`), or else nothing, and the
      request runs again (haven.uow.http), locking as below: two round trips, no BEGIN
      or COMMIT;
    * otherwise (that second run, a lease `CONTENDED` lately, SQLite, a script) the read
      locks the lease's totals to the commit (repository `lock_for_entry`, one statement
      most often), as every other ledger writer does."""
    seen: Seen | None = None
    if is_rerun(session):
        CONTENDED.mark(lease_id)
    if reader is not None and may_guard(session) and lease_id not in CONTENDED:
        read = await repository.seen_for_entry(reader, organization_id, lease_id)
        locked = read[0] if read is not None else None
        seen = Seen(read[1]) if read is not None else None
    else:
        locked = await repository.lock_for_entry(session, organization_id, lease_id, paid)
    if locked is None:
        raise NotFoundError(f"No lease with id {lease_id}")
    _check_postable(locked.status)
    entry = entry_of(locked)
    add_new(session, entry)
    counted = paid is not None and seen is None  # the lock's statement added the day's total
    totals = settle(session, entry, locked.lines, counted=counted, seen=seen)
    return entry, totals.balance


async def post_charge(
    session: AsyncSession,
    organization_id: uuid.UUID,
    lease_id: uuid.UUID,
    data: ChargeIn,
    user_id: uuid.UUID | None,
    reader: Reader | None = None,
) -> tuple[LedgerEntry, int]:
    return await _post(
        session,
        reader,
        organization_id,
        lease_id,
        lambda _: LedgerEntry(
            organization_id=organization_id,
            lease_id=lease_id,
            type="charge",
            kind=data.kind,
            amount=data.amount,
            date=data.due_date,
            description=data.description,
            created_by_id=user_id,
        ),
    )


async def post_credit(
    session: AsyncSession,
    organization_id: uuid.UUID,
    lease_id: uuid.UUID,
    data: CreditIn,
    user_id: uuid.UUID | None,
    reader: Reader | None = None,
) -> tuple[LedgerEntry, int]:
    """A credit dated `data.date`, or today where the organization is."""
    return await _post(
        session,
        reader,
        organization_id,
        lease_id,
        lambda locked: LedgerEntry(
            organization_id=organization_id,
            lease_id=lease_id,
            type="credit",
            kind="credit",
            amount=-data.amount,
            date=data.date or today_in_zone(locked.timezone),
            description=data.description,
            created_by_id=user_id,
        ),
    )


async def post_payment(
    session: AsyncSession,
    organization_id: uuid.UUID,
    lease_id: uuid.UUID,
    data: PaymentIn,
    user_id: uuid.UUID | None,
    reader: Reader | None = None,
) -> tuple[LedgerEntry, int]:
    """A payment; its amount is added to the organization's total of its receipt date."""
    return await _post(
        session,
        reader,
        organization_id,
        lease_id,
        lambda _: LedgerEntry(
            organization_id=organization_id,
            lease_id=lease_id,
            type="payment",
            kind=data.method,
            amount=-data.amount,
            date=data.received_on,
            description=f"Payment ({data.method})",
            method=data.method,
            reference=data.reference,
            created_by_id=user_id,
        ),
        paid=(data.received_on, data.amount),
    )


async def get_entry(
    session: AsyncSession, organization_id: uuid.UUID, entry_id: uuid.UUID
) -> LedgerEntry:
    return await get_owned(session, LedgerEntry, organization_id, entry_id)


async def reverse(
    session: AsyncSession,
    org: Organization,
    entry: LedgerEntry,
    data: ReverseIn | None,
    user_id: uuid.UUID | None,
) -> tuple[LedgerEntry, int]:
    """Undo `entry` with a new entry of the opposite amount; an entry is reversed at most once.

    The reversal is dated today where the organization is. Like a charge or a payment it
    takes its lease's locks first (repository `lock_for_entry`) and reads the lease's lines
    under them, so whether the entry was reversed already and the answer's balance are as
    of the lock: no other writer of the lease commits before this one does. The totals are
    rewritten at the commit from the lease's lines (haven.ledger.totals `apply`: a reversed
    payment also leaves its receipt date's total).
    """
    if entry.type == "reversal":
        raise ConflictError("A reversal cannot be reversed; post a new entry instead")
    locked = await repository.lock_for_entry(session, entry.organization_id, entry.lease_id)
    if locked is None:  # the entry's lease is its organization's: only if it was deleted
        raise NotFoundError(f"No ledger entry with id {entry.id}")
    if any(line.reverses_id == entry.id for line in locked.lines):
        raise ConflictError("This entry has already been reversed")
    description = (data.description if data else None) or f"Reversal of {entry.type}"
    reversal = LedgerEntry(
        organization_id=entry.organization_id,
        lease_id=entry.lease_id,
        type="reversal",
        kind=entry.kind,
        amount=-entry.amount,
        date=today_in(org),
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
    return reversal, sum(line.amount for line in locked.lines) + reversal.amount


DEPOSIT_KEY = "deposit:{lease_id}"
DEDUCTION_REF = "deposit-deduction"
RELEASE_REF = "deposit-refund"


async def post_deposit_charge(session: AsyncSession, lease: Lease) -> LedgerEntry:
    """The deposit, charged once (its billing key) when the lease is activated, due at start."""
    entry = LedgerEntry(
        organization_id=lease.organization_id,
        lease_id=lease.id,
        type="charge",
        kind="deposit",
        amount=lease.deposit,
        date=lease.start_date,
        description="Security deposit",
        billing_key=DEPOSIT_KEY.format(lease_id=lease.id),
    )
    session.add(entry)
    await session.flush()
    return entry


async def _entries(session: AsyncSession, lease_id: uuid.UUID) -> list[LedgerEntry]:
    stmt = select(LedgerEntry).where(LedgerEntry.lease_id == lease_id)
    return list((await session.execute(stmt)).scalars())


def _lines(entries: list[LedgerEntry]) -> list[Line]:
    return ordered(repository.line_of(e) for e in entries)


async def deposit_statement(
    session: AsyncSession, org: Organization, lease: Lease
) -> DepositStatementOut:
    """The deposit's story on one lease: charged, paid, each deduction, each refund, held.

    What is paid counts as of today where the organization is.
    """
    entries = await _entries(session, lease.id)
    lines = _lines(entries)
    summary = summarize(lines, today_in(org))
    reversed_ids = {e.reverses_id for e in entries if e.reverses_id is not None}
    live = sorted(
        (e for e in entries if e.id not in reversed_ids and e.type != "reversal"),
        key=lambda e: (e.created_at, str(e.id)),
    )
    out: list[StatementLineOut] = []
    charged = paid = deducted = refunded = 0
    for e in live:
        if e.kind != "deposit":
            continue
        if e.type == "charge":
            charged += e.amount
            part = e.amount - summary.unpaid.get(e.id, 0)
            paid += part
            out.append(
                StatementLineOut(e.date, "deposit_charged", e.description or "", e.amount, e.id)
            )
            if part:
                out.append(StatementLineOut(e.date, "deposit_paid", "Deposit paid", part, None))
        elif e.type == "credit" and e.reference == DEDUCTION_REF:
            deducted += -e.amount
            out.append(StatementLineOut(e.date, "deduction", e.description or "", -e.amount, e.id))
        elif e.type == "refund":
            refunded += e.amount
            out.append(StatementLineOut(e.date, "refund", e.description or "", e.amount, e.id))
    return DepositStatementOut(
        lease_id=lease.id,
        currency=org.currency,
        deposit_charged=charged,
        deposit_paid=paid,
        deductions=deducted,
        refunded=refunded,
        deposit_held=deposit_held(lines, summary),
        balance=summary.balance,
        lines=out,
    )


def _refuse(field: str, message: str) -> ValidationError:
    return ValidationError(errors=[FieldError(field, message)])


async def dispose_deposit(
    session: AsyncSession,
    org: Organization,
    lease: Lease,
    data: DispositionIn,
    user_id: uuid.UUID | None,
) -> None:
    """Apply itemized deductions from the deposit to what is owed; refund (part of) the rest.

    Each deduction is a credit of kind `deposit` (it lowers the balance); a refund is a
    credit of kind `deposit` releasing the amount plus a `refund` entry paying it out,
    so the balance is unchanged by it and the deposit held falls by it.
    """
    if lease.status not in ("ended", "terminated"):
        raise ConflictError("The deposit is settled at move-out: end or terminate the lease first")
    today = today_in(org)
    entries = await _entries(session, lease.id)
    lines = _lines(entries)
    held = deposit_held(lines, summarize(lines, today))
    total = sum(d.amount for d in data.deductions)
    if total > held:
        raise _refuse("deductions", f"the deductions ({total}) exceed the deposit held ({held})")
    rest = held - total
    refund = rest if data.refund_amount is None else data.refund_amount
    if refund > rest:
        raise _refuse("refundAmount", f"more than the deposit held after deductions ({rest})")
    if total == 0 and refund == 0:
        raise ConflictError("No deposit is held on this lease, or nothing to settle")
    on = data.date or today
    base = {"organization_id": lease.organization_id, "lease_id": lease.id, "date": on}
    for d in data.deductions:
        session.add(
            LedgerEntry(
                **base,
                type="credit",
                kind="deposit",
                amount=-d.amount,
                description=d.reason,
                reference=DEDUCTION_REF,
                created_by_id=user_id,
            )
        )
    if refund:
        session.add(
            LedgerEntry(
                **base,
                type="credit",
                kind="deposit",
                amount=-refund,
                description="Deposit released for refund",
                reference=RELEASE_REF,
                created_by_id=user_id,
            )
        )
        session.add(
            LedgerEntry(
                **base,
                type="refund",
                kind="deposit",
                amount=refund,
                description=f"Deposit refund ({data.refund_method})",
                method=data.refund_method,
                created_by_id=user_id,
            )
        )
    await session.flush()
