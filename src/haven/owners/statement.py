"""An owner's statement for a month, as pure functions of the property books.

Definitions (docs/owners.md; property-tested in tests/unit/test_owner_statement.py):

* **Rent collected** (cash basis): the payments received on leases of the property's units,
  dated in the month, less the reversals of payments dated in the month.
* **Expenses**: the property's bill payments dated in the month (a reversal counts negative).
* Each of these movements is split between the owners of the share set in effect on its
  date (haven.owners.allocation.split); a movement dated before the property's first set
  belongs to no owner and appears on no statement.
* **Management fee**: `percent` — the property's fee for the month is that many basis points
  of the month's rent collected by its owners (rounded half away from zero), split between
  them in proportion to what each collected; `flat` — the amount, split by the share set in
  effect on the month's last day (no set that day: no fee).
* **Net** = rent - expenses - fee; **payouts** are the owner's payouts dated in the month;
  **closing** = opening + net - payouts, and **opening** is the same sum over every earlier
  month (so a month's opening is the previous month's closing).

Because every split is exact, the statements of all owners of a property add up, to the
cent, to the property's own figures.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from haven.owners.allocation import ShareSet, allocate, percent_of, set_on, split


def month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def month_bounds(index: int) -> tuple[date, date]:
    year, month0 = divmod(index, 12)
    first = date(year, month0 + 1, 1)
    nxt = date(year + (month0 + 1) // 12, (month0 + 1) % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Receipt:
    """Rent collected (positive) or a reversed payment (negative) on a unit."""

    day: date
    amount: int
    unit_id: uuid.UUID
    unit_label: str


@dataclass(frozen=True, slots=True)
class Expense:
    day: date
    amount: int


@dataclass(frozen=True, slots=True)
class Book:
    """What a statement needs of one property."""

    property_id: uuid.UUID
    name: str
    fee_kind: str | None
    fee_amount: int | None
    history: Sequence[ShareSet]
    receipts: Sequence[Receipt]
    expenses: Sequence[Expense]


@dataclass(slots=True)
class Figures:
    """One owner's figures of one property for one month."""

    rent: int = 0
    expenses: int = 0
    fee: int = 0
    units: dict[uuid.UUID, int] = field(default_factory=dict)

    @property
    def net(self) -> int:
        return self.rent - self.expenses - self.fee


def owners_by_month(book: Book, until: int) -> dict[int, dict[uuid.UUID, Figures]]:
    """Every owner's figures of the property, by month index, for months up to `until`."""
    months: dict[int, dict[uuid.UUID, Figures]] = defaultdict(lambda: defaultdict(Figures))
    for r in book.receipts:
        index = month_index(r.day)
        if index > until or (shares := set_on(book.history, r.day)) is None:
            continue
        for owner_id, part in split(r.amount, shares).items():
            figures = months[index][owner_id]
            figures.rent += part
            figures.units[r.unit_id] = figures.units.get(r.unit_id, 0) + part
    for e in book.expenses:
        index = month_index(e.day)
        if index > until or (shares := set_on(book.history, e.day)) is None:
            continue
        for owner_id, part in split(e.amount, shares).items():
            months[index][owner_id].expenses += part
    if book.fee_kind == "percent" and book.fee_amount:
        for owners in months.values():
            ids = sorted(owners)
            weights = [owners[o].rent for o in ids]
            fee = percent_of(sum(weights), book.fee_amount)
            if fee:
                for owner_id, part in zip(ids, allocate(fee, weights), strict=True):
                    owners[owner_id].fee += part
    elif book.fee_kind == "flat" and book.fee_amount and book.history:
        for index in range(month_index(book.history[0].effective_from), until + 1):
            shares = set_on(book.history, month_bounds(index)[1])
            if shares is not None:
                for owner_id, part in split(book.fee_amount, shares).items():
                    months[index][owner_id].fee += part
    return months


@dataclass(frozen=True, slots=True)
class PropertyFigures:
    book: Book
    basis_points: int  # the owner's share on the month's last day
    figures: Figures


@dataclass(frozen=True, slots=True)
class Statement:
    month: int
    opening: int
    properties: list[PropertyFigures]
    payouts: int

    @property
    def rent(self) -> int:
        return sum(p.figures.rent for p in self.properties)

    @property
    def expenses(self) -> int:
        return sum(p.figures.expenses for p in self.properties)

    @property
    def fee(self) -> int:
        return sum(p.figures.fee for p in self.properties)

    @property
    def net(self) -> int:
        return self.rent - self.expenses - self.fee

    @property
    def closing(self) -> int:
        return self.opening + self.net - self.payouts


def statement(
    owner_id: uuid.UUID,
    month: int,
    books: Iterable[Book],
    payouts: Iterable[tuple[date, int]],
) -> Statement:
    """The owner's statement for month index `month`."""
    first, _last = month_bounds(month)
    opening = 0
    lines: list[PropertyFigures] = []
    for book in books:
        by_month = owners_by_month(book, month)
        for index, owners in by_month.items():
            if index < month and owner_id in owners:
                opening += owners[owner_id].net
        current = by_month.get(month, {}).get(owner_id, Figures())
        shares = set_on(book.history, month_bounds(month)[1])
        points = shares.of(owner_id) if shares else 0
        lines.append(PropertyFigures(book, points, current))
    paid_before = paid_in = 0
    for day, amount in payouts:
        if day < first:
            paid_before += amount
        elif month_index(day) == month:
            paid_in += amount
    return Statement(month, opening - paid_before, lines, paid_in)
