"""haven.owners.statement: the statements of all owners of a property add up to the
property's own figures to the cent, and balances roll from month to month."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from haven.owners.allocation import make_set, percent_of, replace_from, set_on
from haven.owners.statement import Book, Expense, Receipt, month_bounds, month_index, statement

from .test_allocation import OWNERS, share_sets

PROPERTY = settings(deadline=None, max_examples=150)
START = date(2026, 1, 1)
UNITS = [(uuid.UUID(int=100 + n), f"U{n}") for n in range(3)]
FIRST, LAST = month_index(START), month_index(START) + 5


@st.composite
def books(draw: st.DrawFn) -> Book:
    history: list = []
    for offset, shares in draw(
        st.lists(st.tuples(st.integers(0, 170), share_sets()), min_size=1, max_size=4)
    ):
        history = replace_from(history, make_set(START + timedelta(days=offset), shares))
    receipts = [
        Receipt(START + timedelta(days=d), amount, *UNITS[u])
        for d, amount, u in draw(
            st.lists(
                st.tuples(st.integers(0, 180), st.integers(-50_000, 200_000), st.integers(0, 2)),
                max_size=25,
            )
        )
    ]
    expenses = [
        Expense(START + timedelta(days=d), amount)
        for d, amount in draw(
            st.lists(st.tuples(st.integers(0, 180), st.integers(-10_000, 90_000)), max_size=10)
        )
    ]
    kind = draw(st.sampled_from([None, "percent", "flat"]))
    amount = None if kind is None else draw(st.integers(1, 10_000 if kind == "percent" else 50_000))
    return Book(uuid.UUID(int=999), "P", kind, amount, history, receipts, expenses)


def owned(book: Book, day: date) -> bool:
    return set_on(book.history, day) is not None


@PROPERTY
@given(
    books(),
    st.lists(
        st.tuples(st.sampled_from(OWNERS), st.integers(0, 180), st.integers(-5000, 50_000)),
        max_size=8,
    ),
)
def test_statements_reconcile_with_the_property(
    book: Book, payouts: list[tuple[uuid.UUID, int, int]]
) -> None:
    owners = {s.owner_id for ss in book.history for s in ss.shares}
    for month in range(FIRST, LAST + 1):
        first, last = month_bounds(month)

        def in_month(day: date, first: date = first, last: date = last) -> bool:
            return first <= day <= last

        statements = {
            o: statement(
                o,
                month,
                [book],
                [(START + timedelta(days=d), a) for who, d, a in payouts if who == o],
            )
            for o in owners
        }
        rent = sum(r.amount for r in book.receipts if in_month(r.day) and owned(book, r.day))
        spent = sum(e.amount for e in book.expenses if in_month(e.day) and owned(book, e.day))
        assert sum(s.rent for s in statements.values()) == rent
        assert sum(s.expenses for s in statements.values()) == spent
        by_unit: dict[uuid.UUID, int] = {}
        for s in statements.values():
            for unit, amount in s.properties[0].figures.units.items():
                by_unit[unit] = by_unit.get(unit, 0) + amount
        for unit, _ in UNITS:
            assert by_unit.get(unit, 0) == sum(
                r.amount
                for r in book.receipts
                if r.unit_id == unit and in_month(r.day) and owned(book, r.day)
            )
        fee = sum(s.fee for s in statements.values())
        if book.fee_kind == "percent":
            assert fee == percent_of(rent, book.fee_amount or 0)
        elif book.fee_kind == "flat":
            assert fee == (book.fee_amount if owned(book, last) else 0)
        else:
            assert fee == 0
        for o, s in statements.items():
            assert s.closing == s.opening + s.net - s.payouts
            if month > FIRST:
                before = statement(
                    o,
                    month - 1,
                    [book],
                    [(START + timedelta(days=d), a) for who, d, a in payouts if who == o],
                )
                assert s.opening == before.closing
            else:
                assert s.opening == 0


def test_a_worked_example() -> None:
    a, b = OWNERS[0], OWNERS[1]
    history = [make_set(START, [(a, 6000), (b, 4000)]), make_set(date(2026, 2, 1), [(a, 10000)])]
    unit = UNITS[0]
    book = Book(
        uuid.UUID(int=7),
        "Maple",
        "percent",
        1000,
        history,
        [Receipt(date(2026, 1, 5), 100_001, *unit), Receipt(date(2026, 2, 5), 50_000, *unit)],
        [Expense(date(2026, 1, 20), 10_000)],
    )
    jan_a = statement(a, month_index(START), [book], [(date(2026, 1, 31), 40_000)])
    jan_b = statement(b, month_index(START), [book], [])
    assert (jan_a.rent, jan_b.rent) == (60_001, 40_000)
    assert (jan_a.expenses, jan_b.expenses) == (6_000, 4_000)
    assert jan_a.fee + jan_b.fee == 10_000  # 10% of 100,001 rounds to 10,000
    assert jan_a.closing == 60_001 - 6_000 - jan_a.fee - 40_000
    feb_a = statement(a, month_index(START) + 1, [book], [(date(2026, 1, 31), 40_000)])
    assert feb_a.opening == jan_a.closing
    assert feb_a.rent == 50_000
    assert feb_a.fee == 5_000
    feb_b = statement(b, month_index(START) + 1, [book], [])
    assert feb_b.rent == 0
    assert feb_b.opening == jan_b.closing == feb_b.closing
