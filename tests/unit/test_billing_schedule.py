"""haven.billing.schedule against an independent per-day model (hypothesis).

The model (tests/support_billing.py) knows nothing of segments or clamping: it walks
the lease day by day, looks up the rent in force by scanning the changes, adds it to
its calendar month, and rounds each month's sum / days-in-month half up.
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from haven.billing import schedule
from haven.billing.schedule import Recurring, RentChange, Terms
from support_billing import owed

DAY = timedelta(days=1)


def model(terms: Terms, last_day: date) -> dict[tuple[str, str], int]:
    """The independent per-day model (tests/support_billing.py) over these terms."""
    return owed(
        terms.start,
        min(terms.end or last_day, last_day),
        terms.rent,
        [(c.effective, c.rent) for c in terms.changes],
        [(f"recurring:{r.id}", r.amount, r.start, r.end) for r in terms.recurring],
    )


def bill_every_day(terms: Terms, first: date, last: date) -> dict[tuple[str, str], schedule.Due]:
    """Run billing for every day from `first` to `last`, keeping what each key posted first."""
    posted: dict[tuple[str, str], schedule.Due] = {}
    day = first
    while day <= last:
        for due in schedule.due_on(terms, day):
            key = (due.key, due.period)
            if key in posted:
                assert posted[key] == due, "a later run computed another amount for a posted key"
            posted.setdefault(key, due)
        day += DAY
    return posted


dates = st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31))


@st.composite
def leases(draw: st.DrawFn) -> Terms:
    start = draw(dates)
    length = draw(st.one_of(st.none(), st.integers(0, 800)))
    end = None if length is None else start + timedelta(days=length)
    span = length if length is not None else 400
    offsets = draw(st.lists(st.integers(0, span), max_size=4, unique=True))
    changes = tuple(
        sorted(
            (
                RentChange(start + timedelta(days=o), draw(st.integers(0, 5_000_000)))
                for o in offsets
            ),
            key=lambda c: c.effective,
        )
    )
    recurring = []
    for n in range(draw(st.integers(0, 3))):
        lo = draw(st.integers(0, span))
        hi = draw(st.one_of(st.none(), st.integers(lo, span + 60)))
        recurring.append(
            Recurring(
                f"r{n}",
                draw(st.sampled_from(["parking", "pet", "utility"])),
                draw(st.integers(1, 200_000)),
                start + timedelta(days=lo),
                None if hi is None else start + timedelta(days=hi),
                "Extra",
            )
        )
    return Terms(
        start=start,
        end=end,
        due_day=draw(st.integers(1, 28)),
        rent=draw(st.integers(0, 5_000_000)),
        changes=changes,
        recurring=tuple(recurring),
    )


@settings(max_examples=150, deadline=None)
@given(leases())
def test_billing_every_day_bills_what_the_model_says_and_nothing_outside_the_lease(
    terms: Terms,
) -> None:
    last = (terms.end or terms.start + timedelta(days=400)) + timedelta(days=40)
    posted = bill_every_day(terms, terms.start - timedelta(days=40), last)
    # An open-ended lease: the last run bills its whole month.
    horizon = schedule.month_of(last)[1] if terms.end is None else terms.end
    expected = model(terms, horizon)
    assert {k: d.amount for k, d in posted.items()} == expected
    for due in posted.values():
        assert terms.start <= due.due_date
        assert terms.end is None or due.due_date <= terms.end
        assert due.covers[0] <= due.due_date <= due.covers[1]
        # Due on the due day unless the covered days begin after it or end before it.
        wanted = date(due.covers[0].year, due.covers[0].month, terms.due_day)
        assert due.due_date == min(max(wanted, due.covers[0]), due.covers[1])


@settings(max_examples=100, deadline=None)
@given(
    start=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 1)).map(
        lambda d: d.replace(day=1)
    ),
    months=st.integers(1, 36),
    rent=st.integers(0, 10_000_000),
    due_day=st.integers(1, 28),
)
def test_whole_months_sum_to_rent_times_months(
    start: date, months: int, rent: int, due_day: int
) -> None:
    first = start
    for _ in range(months):
        first = schedule.next_month(first)
    terms = Terms(start=start, end=first - DAY, due_day=due_day, rent=rent)
    posted = bill_every_day(terms, start - DAY, first + timedelta(days=40))
    assert sum(d.amount for d in posted.values()) == rent * months
    assert all(d.due_date.day == due_day for d in posted.values())


def test_a_lease_starting_on_the_25th_is_charged_seven_days_due_on_its_start() -> None:
    terms = Terms(start=date(2026, 3, 25), end=None, due_day=1, rent=310_000)
    assert schedule.due_on(terms, date(2026, 3, 1)) == []  # nothing before the lease begins
    (due,) = schedule.due_on(terms, date(2026, 3, 25))
    assert (due.amount, due.due_date) == (70_000, date(2026, 3, 25))  # 310000 * 7 / 31
    (april,) = schedule.due_on(terms, date(2026, 4, 1))
    assert (april.amount, april.due_date) == (310_000, date(2026, 4, 1))


def test_rounding_is_half_up_once_per_month() -> None:
    # 100001 * 15 / 30 = 50000.5 -> 50001
    terms = Terms(start=date(2026, 4, 16), end=None, due_day=1, rent=100_001)
    assert [d.amount for d in schedule.due_on(terms, date(2026, 4, 16))] == [50_001]


def test_a_rent_change_mid_month_splits_the_month() -> None:
    terms = Terms(
        start=date(2026, 1, 1),
        end=None,
        due_day=1,
        rent=300_000,
        changes=(RentChange(date(2026, 6, 11), 330_000),),
    )
    (june,) = schedule.due_on(terms, date(2026, 6, 1))
    assert june.amount == 320_000  # (10 * 300000 + 20 * 330000) / 30


def test_escalation_compounds_every_so_many_months_within_the_lease() -> None:
    steps = schedule.escalations(
        date(2026, 1, 31), date(2028, 12, 31), 100_000, 300, 12, date(2099, 1, 1)
    )
    assert steps == [
        RentChange(date(2027, 1, 31), 103_000),
        RentChange(date(2028, 1, 31), 106_090),
    ]
    monthly = schedule.escalations(date(2026, 1, 31), None, 100_000, 100, 1, date(2026, 4, 30))
    assert [s.effective for s in monthly] == [
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]
