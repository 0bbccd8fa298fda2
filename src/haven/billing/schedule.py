"""What a lease owes for each calendar month, as pure functions (property-tested).

Definitions (docs/billing.md has worked examples):

* A period is a calendar month. A charge (the rent, or one recurring charge) covers
  the days of the period that lie inside both the lease and the charge's own
  [start, end]; a period it does not cover at all owes nothing.
* The amount is the sum, over the covered days, of the rate in force that day,
  divided by the number of days in the month, rounded half up to the cent once per
  charge and period: `(2 * sum + days) // (2 * days)`. A fully covered month at one
  rate is therefore exactly that rate; a rent change mid-month splits the month.
* The rate in force on a day is the latest rent change whose effective date is on or
  before that day, else the lease's rent.
* The due date is the lease's due day of that month, moved into the covered days:
  never before the first covered day (a lease starting after its due day is due on
  its start date) nor after the last (a lease ending before its due day is due on its
  end date). No charge is ever due outside the lease.
* A charge is posted by any billing run on or after its first covered day.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class RentChange:
    effective: date
    rent: int


@dataclass(frozen=True, slots=True)
class Recurring:
    """A recurring charge on a lease: its id keys the billing, its kind names the ledger line."""

    id: str
    kind: str
    amount: int
    start: date
    end: date | None
    description: str


@dataclass(frozen=True, slots=True)
class Terms:
    start: date
    end: date | None
    due_day: int
    rent: int
    changes: tuple[RentChange, ...] = ()
    recurring: tuple[Recurring, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Due:
    """One charge of one period."""

    key: str  # "rent" or "recurring:<id>"
    kind: str
    period: str
    amount: int
    due_date: date
    covers: tuple[date, date]
    description: str


def month_of(day: date) -> tuple[date, date]:
    last = calendar.monthrange(day.year, day.month)[1]
    return day.replace(day=1), day.replace(day=last)


def period_label(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def next_month(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def months(start: date, through: date) -> Iterator[date]:
    """First days of the months from start's month through `through`'s month."""
    first = start.replace(day=1)
    while first <= through:
        yield first
        first = next_month(first)


def prorate(day_sum: int, days_in_month: int) -> int:
    """`day_sum / days_in_month` rounded half up (amounts are never negative)."""
    return (2 * day_sum + days_in_month) // (2 * days_in_month)


def rent_on(terms: Terms, day: date) -> int:
    rent = terms.rent
    for change in terms.changes:  # sorted by effective date
        if change.effective <= day:
            rent = change.rent
    return rent


def _overlap(first: date, last: date, start: date, end: date | None) -> tuple[date, date] | None:
    lo = max(first, start)
    hi = last if end is None else min(last, end)
    return (lo, hi) if lo <= hi else None


def _due(first: date, covers: tuple[date, date], due_day: int) -> date:
    return min(max(first.replace(day=due_day), covers[0]), covers[1])


def rent_day_sum(terms: Terms, lo: date, hi: date) -> int:
    """Sum of the rent in force on each day of [lo, hi], a segment per rent change."""
    total = 0
    bounds = [c for c in terms.changes if lo < c.effective <= hi]
    seg_start, rate = lo, rent_on(terms, lo)
    for change in bounds:
        total += rate * (change.effective - seg_start).days
        seg_start, rate = change.effective, change.rent
    return total + rate * ((hi - seg_start).days + 1)


def period_charges(terms: Terms, first: date) -> list[Due]:
    """The charges of the month that starts on `first` (rent first, then recurring ones)."""
    first, last = month_of(first)
    days = last.day
    label = period_label(first)
    lease_days = _overlap(first, last, terms.start, terms.end)
    if lease_days is None:
        return []
    out: list[Due] = []
    amount = prorate(rent_day_sum(terms, *lease_days), days)
    if amount > 0:
        out.append(
            Due(
                "rent",
                "rent",
                label,
                amount,
                _due(first, lease_days, terms.due_day),
                lease_days,
                f"Rent {label}" + _partial(lease_days, first, last),
            )
        )
    for rc in terms.recurring:
        covers = _overlap(lease_days[0], lease_days[1], rc.start, rc.end)
        if covers is None:
            continue
        amount = prorate(rc.amount * ((covers[1] - covers[0]).days + 1), days)
        if amount > 0:
            out.append(
                Due(
                    f"recurring:{rc.id}",
                    rc.kind,
                    label,
                    amount,
                    _due(first, covers, terms.due_day),
                    covers,
                    f"{rc.description} {label}" + _partial(covers, first, last),
                )
            )
    return out


def _partial(covers: tuple[date, date], first: date, last: date) -> str:
    if covers == (first, last):
        return ""
    return f" ({covers[0].isoformat()} to {covers[1].isoformat()})"


def due_on(terms: Terms, on: date) -> list[Due]:
    """The charges of `on`'s month that a billing run on `on` posts (covered days begun)."""
    return [d for d in period_charges(terms, on.replace(day=1)) if d.covers[0] <= on]


def all_charges(terms: Terms, through: date) -> list[Due]:
    """Every charge of every month from the lease's start through `through`'s month."""
    out: list[Due] = []
    for first in months(terms.start, through):
        out.extend(period_charges(terms, first))
    return out


def escalations(
    start: date, end: date | None, rent: int, basis_points: int, every_months: int, limit: date
) -> list[RentChange]:
    """Rent changes an escalation generates: +basis points of the rent in force, rounded half up,
    every `every_months` months from the start, through `limit` (and the lease's end)."""
    out: list[RentChange] = []
    current = rent
    n = 1
    while n <= 600:  # bounded: fifty years of monthly steps
        months_ahead = start.month - 1 + n * every_months
        year = start.year + months_ahead // 12
        month = months_ahead % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        effective = date(year, month, day)
        if effective > limit or (end is not None and effective > end):
            break
        current = current + (2 * current * basis_points + 10_000) // 20_000
        out.append(RentChange(effective, current))
        n += 1
    return out


def sorted_changes(changes: Sequence[RentChange]) -> tuple[RentChange, ...]:
    return tuple(sorted(changes, key=lambda c: c.effective))
