"""Balance and aging of a ledger, as pure functions (property-tested in tests/integration/ledger).

Definitions (also in the OpenAPI description of GET /leases/{id}/ledger):

* `balance` is the sum of the signed amounts: charges positive, payments and
  credits negative, a reversal the negation of the entry it reverses. It is
  what the tenants owe; negative means they are in credit.
* Aging allocates everything paid or credited (payments and credits that are
  not reversed) to the charges that are not reversed, oldest due date first
  (FIFO). What is left unpaid of each charge falls in a bucket by how many
  days past its due date it is on the as-of date: `current` (not yet due, or
  due today), `days1to30`, `days31to60`, `days61to90`, `over90`.
* The buckets always add up to `balance`: a credit balance (more paid than
  charged) is reported as a negative `current` with the other buckets 0.
* A deposit refund (type `refund`) is money paid back to the tenants: it is
  allocated like a charge, and the release of the deposit (a credit of kind
  `deposit`) posted with it pays it.
* `deposit_held` is what the organization holds as the tenants' deposit: the
  paid part of the live deposit charges (the FIFO allocation above) less the
  live deposit credits (deductions applied and amounts released for refund).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

BUCKETS = ("current", "days1to30", "days31to60", "days61to90", "over90")


@dataclass(frozen=True, slots=True)
class Line:
    """What aging needs of one entry."""

    id: uuid.UUID
    type: str
    amount: int
    date: date
    reverses_id: uuid.UUID | None
    created_at: datetime
    kind: str | None = None


@dataclass(slots=True)
class Aging:
    current: int = 0
    days1to30: int = 0
    days31to60: int = 0
    days61to90: int = 0
    over90: int = 0

    def total(self) -> int:
        return self.current + self.days1to30 + self.days31to60 + self.days61to90 + self.over90

    def overdue(self) -> int:
        return self.days1to30 + self.days31to60 + self.days61to90 + self.over90

    def add(self, other: Aging) -> None:
        self.current += other.current
        self.days1to30 += other.days1to30
        self.days31to60 += other.days31to60
        self.days61to90 += other.days61to90
        self.over90 += other.over90

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in BUCKETS}


@dataclass(slots=True)
class Summary:
    balance: int
    aging: Aging
    # Unpaid remainder of each live charge, by entry id.
    unpaid: dict[uuid.UUID, int] = field(default_factory=dict)


def bucket_of(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "days1to30"
    if days_past_due <= 60:
        return "days31to60"
    if days_past_due <= 90:
        return "days61to90"
    return "over90"


def ordered(lines: Iterable[Line]) -> list[Line]:
    """Ledger order: when each entry was posted."""
    return sorted(lines, key=lambda line: (line.created_at, str(line.id)))


def running_balances(lines: Sequence[Line]) -> list[int]:
    """balanceAfter of each line, in the given order."""
    out: list[int] = []
    total = 0
    for line in lines:
        total += line.amount
        out.append(total)
    return out


def summarize(lines: Iterable[Line], as_of: date) -> Summary:
    """Balance, aging buckets and unpaid remainders of a lease's ledger on `as_of`."""
    items = list(lines)
    balance = sum(line.amount for line in items)
    reversed_ids = {line.reverses_id for line in items if line.reverses_id is not None}
    live = [line for line in items if line.id not in reversed_ids and line.type != "reversal"]
    charges = sorted(
        (line for line in live if line.type in ("charge", "refund")),
        key=lambda line: (line.date, line.created_at, str(line.id)),
    )
    available = sum(-line.amount for line in live if line.type in ("payment", "credit"))
    aging = Aging()
    unpaid: dict[uuid.UUID, int] = {}
    for charge in charges:
        applied = min(charge.amount, max(available, 0))
        available -= applied
        left = charge.amount - applied
        unpaid[charge.id] = left
        if left:
            bucket = bucket_of((as_of - charge.date).days)
            setattr(aging, bucket, getattr(aging, bucket) + left)
    if balance < 0:
        aging = Aging(current=balance)
    return Summary(balance=balance, aging=aging, unpaid=unpaid)


def oldest_unpaid_on(lines: Iterable[Line], summary: Summary) -> date | None:
    """The due date of the oldest charge the FIFO allocation leaves (partly) unpaid, or None.

    The allocation does not depend on the as-of date, so neither does this: on any date `d`,
    `summarize(lines, d).aging.overdue() > 0` exactly when this is before `d` (what the
    dashboard's `overdueLeases` counts from the maintained `lease_balances`).
    """
    if summary.balance < 0:  # a credit balance: aging reports it all as current
        return None
    dates = {line.id: line.date for line in lines}
    return min((dates[i] for i, left in summary.unpaid.items() if left > 0), default=None)


def deposit_held(lines: Iterable[Line], summary: Summary) -> int:
    """The deposit held for the tenants (see the module docstring), given the ledger's summary."""
    items = list(lines)
    reversed_ids = {line.reverses_id for line in items if line.reverses_id is not None}
    held = 0
    for line in items:
        if line.kind != "deposit" or line.id in reversed_ids or line.type == "reversal":
            continue
        if line.type == "charge":
            held += line.amount - summary.unpaid.get(line.id, 0)
        elif line.type == "credit":
            held += line.amount
    return max(held, 0)
