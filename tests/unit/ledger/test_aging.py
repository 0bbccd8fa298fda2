"""haven.ledger.aging against its documented definitions, without HTTP or a database.

The definitions (module docstring of haven.ledger.aging): the balance is the sum of the
signed amounts; everything paid or credited (not reversed) is allocated to the charges
that are not reversed, oldest due date first; what is left of each charge falls in a
bucket by days past due on the as-of date; the buckets add up to the balance, and a
credit balance is a negative `current`.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haven.ledger.aging import (
    BUCKETS,
    Aging,
    Line,
    bucket_of,
    oldest_unpaid_on,
    ordered,
    running_balances,
    summarize,
)

AS_OF = date(2026, 3, 15)
POSTED = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
PROPERTY = settings(deadline=None, max_examples=150)


def _id(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def charge(n: int, amount: int, due: date) -> Line:
    return Line(_id(n), "charge", amount, due, None, POSTED + timedelta(minutes=n))


def payment(n: int, amount: int, on: date = AS_OF) -> Line:
    return Line(_id(n), "payment", -amount, on, None, POSTED + timedelta(minutes=n))


def credit(n: int, amount: int, on: date = AS_OF) -> Line:
    return Line(_id(n), "credit", -amount, on, None, POSTED + timedelta(minutes=n))


def reversal(n: int, of: Line, on: date = AS_OF) -> Line:
    return Line(_id(n), "reversal", -of.amount, on, of.id, POSTED + timedelta(minutes=n))


def days_ago(days: int) -> date:
    return AS_OF - timedelta(days=days)


# -- worked examples a reader can check by hand ------------------------------------------


def test_an_empty_ledger_owes_nothing() -> None:
    summary = summarize([], AS_OF)
    assert summary.balance == 0
    assert summary.aging.as_dict() == dict.fromkeys(BUCKETS, 0)
    assert summary.unpaid == {}


def test_three_months_of_rent_with_one_and_a_half_paid() -> None:
    """Jan, Feb and Mar rent of 1000.00; 1500.00 paid. On 15 March the January rent is
    settled, 500.00 of February's is 42 days late and March's is 14 days late."""
    jan = charge(1, 100_000, date(2026, 1, 1))
    feb = charge(2, 100_000, date(2026, 2, 1))
    mar = charge(3, 100_000, date(2026, 3, 1))
    paid = payment(4, 150_000, on=date(2026, 3, 10))
    summary = summarize([mar, paid, jan, feb], AS_OF)
    assert summary.balance == 150_000
    assert summary.aging.as_dict() == {
        "current": 0,
        "days1to30": 100_000,
        "days31to60": 50_000,
        "days61to90": 0,
        "over90": 0,
    }
    assert summary.unpaid == {jan.id: 0, feb.id: 50_000, mar.id: 100_000}
    assert summary.aging.overdue() == 150_000


def test_paying_more_than_charged_is_a_negative_current_bucket() -> None:
    summary = summarize([charge(1, 1000, days_ago(100)), payment(2, 1500)], AS_OF)
    assert summary.balance == -500
    assert summary.aging.as_dict() == {**dict.fromkeys(BUCKETS, 0), "current": -500}
    assert summary.unpaid == {_id(1): 0}


def test_a_reversed_charge_takes_no_payment() -> None:
    """The old charge is reversed, so the payment settles the newer one."""
    old = charge(1, 500, days_ago(120))
    new = charge(2, 300, days_ago(10))
    lines = [old, new, payment(3, 300), reversal(4, old)]
    summary = summarize(lines, AS_OF)
    assert summary.balance == 0
    assert summary.aging.total() == 0
    assert summary.unpaid == {new.id: 0}


def test_a_reversed_payment_leaves_the_charge_owing_in_its_bucket() -> None:
    rent = charge(1, 800, days_ago(45))
    paid = payment(2, 800)
    summary = summarize([rent, paid, reversal(3, paid)], AS_OF)
    assert summary.balance == 800
    assert summary.aging.days31to60 == 800
    assert summary.aging.total() == 800


def test_a_credit_pays_like_a_payment() -> None:
    summary = summarize([charge(1, 700, days_ago(5)), credit(2, 200)], AS_OF)
    assert summary.balance == 500
    assert summary.aging.days1to30 == 500


def test_a_charge_due_in_the_future_is_current() -> None:
    summary = summarize([charge(1, 900, AS_OF + timedelta(days=20))], AS_OF)
    assert summary.aging.as_dict() == {**dict.fromkeys(BUCKETS, 0), "current": 900}


@pytest.mark.parametrize(
    ("days_past_due", "bucket"),
    [
        (-1, "current"),
        (0, "current"),
        (1, "days1to30"),
        (30, "days1to30"),
        (31, "days31to60"),
        (60, "days31to60"),
        (61, "days61to90"),
        (90, "days61to90"),
        (91, "over90"),
        (3650, "over90"),
    ],
)
def test_bucket_edges_on_exact_day_counts(days_past_due: int, bucket: str) -> None:
    """Both the classifier and a one-charge ledger put a charge due that many days ago there."""
    assert bucket_of(days_past_due) == bucket
    aging = summarize([charge(1, 123, days_ago(days_past_due))], AS_OF).aging
    assert aging.as_dict() == {**dict.fromkeys(BUCKETS, 0), bucket: 123}


def test_running_balances_follow_posting_order() -> None:
    a = charge(2, 1000, days_ago(3))
    b = payment(1, 400)  # posted first (n=1), whatever its position in the input
    lines = ordered([a, b])
    assert [line.id for line in lines] == [b.id, a.id]
    assert running_balances(lines) == [-400, 600]


# -- properties over any ledger the API can produce --------------------------------------


@dataclass(frozen=True)
class Book:
    lines: list[Line]

    def live_charges(self) -> list[Line]:
        reversed_ids = {line.reverses_id for line in self.lines if line.reverses_id}
        return [
            line for line in self.lines if line.type == "charge" and line.id not in reversed_ids
        ]


@st.composite
def books(draw: st.DrawFn) -> Book:
    """Charges, payments and credits of any size and date; reversals of earlier entries,
    at most once each and never of a reversal (the service's rules)."""
    lines: list[Line] = []
    reversible: list[Line] = []
    for n in range(1, draw(st.integers(0, 20)) + 1):
        kind = draw(st.sampled_from(("charge", "charge", "payment", "credit", "reversal")))
        day = AS_OF + timedelta(days=draw(st.integers(-400, 60)))
        amount = draw(st.integers(1, 500_000))
        if kind == "reversal" and reversible:
            target = reversible.pop(draw(st.integers(0, len(reversible) - 1)))
            lines.append(reversal(n, target, on=day))
            continue
        line = {"payment": payment, "credit": credit}.get(kind)
        made = line(n, amount, day) if line else charge(n, amount, day)
        lines.append(made)
        reversible.append(made)
    return Book(lines)


@PROPERTY
@given(book=books(), as_of_shift=st.integers(-30, 400))
def test_buckets_always_add_up_to_the_balance(book: Book, as_of_shift: int) -> None:
    summary = summarize(book.lines, AS_OF + timedelta(days=as_of_shift))
    assert summary.balance == sum(line.amount for line in book.lines)
    assert summary.aging.total() == summary.balance
    assert running_balances(ordered(book.lines))[-1:] == ([summary.balance] if book.lines else [])


@PROPERTY
@given(book=books())
def test_a_credit_balance_is_only_a_negative_current(book: Book) -> None:
    summary = summarize(book.lines, AS_OF)
    if summary.balance < 0:
        assert summary.aging.as_dict() == {**dict.fromkeys(BUCKETS, 0), "current": summary.balance}
        assert all(left == 0 for left in summary.unpaid.values())
    else:
        assert all(getattr(summary.aging, name) >= 0 for name in BUCKETS)


@PROPERTY
@given(book=books())
def test_payments_settle_the_oldest_due_charges_first(book: Book) -> None:
    summary = summarize(book.lines, AS_OF)
    charges = book.live_charges()
    assert set(summary.unpaid) == {c.id for c in charges}
    for c in charges:
        assert 0 <= summary.unpaid[c.id] <= c.amount
    assert sum(summary.unpaid.values()) == max(summary.balance, 0)
    for older in charges:
        for newer in charges:
            if older.date < newer.date and summary.unpaid[newer.id] < newer.amount:
                # Anything went to the newer charge only once the older one was settled.
                assert summary.unpaid[older.id] == 0, (older, newer)


@PROPERTY
@given(book=books(), as_of_shift=st.integers(-30, 400))
def test_each_unpaid_remainder_sits_in_the_bucket_of_its_days_past_due(
    book: Book, as_of_shift: int
) -> None:
    as_of = AS_OF + timedelta(days=as_of_shift)
    summary = summarize(book.lines, as_of)
    if summary.balance < 0:
        return
    expected = Aging()
    for c in book.live_charges():
        name = bucket_of((as_of - c.date).days)
        setattr(expected, name, getattr(expected, name) + summary.unpaid[c.id])
    assert summary.aging == expected


@PROPERTY
@given(book=books(), seed=st.integers(0, 2**32))
def test_the_order_entries_arrive_in_does_not_matter(book: Book, seed: int) -> None:
    shuffled = list(book.lines)
    random.Random(seed).shuffle(shuffled)
    assert summarize(shuffled, AS_OF) == summarize(book.lines, AS_OF)


@PROPERTY
@given(book=books(), amount=st.integers(1, 500_000), days=st.integers(-60, 400))
def test_an_entry_and_its_reversal_change_nothing(book: Book, amount: int, days: int) -> None:
    before = summarize(book.lines, AS_OF)
    n = len(book.lines) + 1
    for made in (charge(n, amount, days_ago(days)), payment(n, amount), credit(n, amount)):
        after = summarize([*book.lines, made, reversal(n + 1, made)], AS_OF)
        assert after.balance == before.balance
        assert after.aging == before.aging
        assert {k: v for k, v in after.unpaid.items() if k != made.id} == before.unpaid


@PROPERTY
@given(book=books(), days=st.integers(0, 200), later=st.integers(1, 120))
def test_debt_only_grows_older_as_time_passes(book: Book, days: int, later: int) -> None:
    """Later, the total is the same and at least as much sits in each tail of older buckets."""
    now = summarize(book.lines, AS_OF + timedelta(days=days)).aging.as_dict()
    then = summarize(book.lines, AS_OF + timedelta(days=days + later)).aging.as_dict()
    assert sum(now.values()) == sum(then.values())
    for i in range(1, len(BUCKETS)):
        tail = BUCKETS[i:]
        assert sum(then[b] for b in tail) >= sum(now[b] for b in tail)


@PROPERTY
@given(book=books(), as_of_shift=st.integers(-450, 450))
def test_a_lease_is_overdue_exactly_when_its_oldest_unpaid_charge_is_due_before_the_day(
    book: Book, as_of_shift: int
) -> None:
    """The dashboard counts overdue leases from `oldest_unpaid_on`, kept with the writes
    (haven.ledger.totals): it must say what the aging on any day says."""
    as_of = AS_OF + timedelta(days=as_of_shift)
    oldest = oldest_unpaid_on(book.lines, summarize(book.lines, date.min))
    assert (oldest is not None and oldest < as_of) == (
        summarize(book.lines, as_of).aging.overdue() > 0
    )
