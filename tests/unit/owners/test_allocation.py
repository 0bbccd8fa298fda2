"""haven.owners.allocation: share sets and exact splits, against the module's definitions."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haven.owners.allocation import (
    WHOLE,
    allocate,
    make_set,
    percent_of,
    replace_from,
    set_on,
    share_problems,
    split,
)

PROPERTY = settings(deadline=None, max_examples=200)
OWNERS = [uuid.UUID(int=n) for n in range(1, 9)]
START = date(2025, 1, 1)


@st.composite
def share_sets(draw: st.DrawFn) -> list[tuple[uuid.UUID, int]]:
    """A valid set: distinct owners, 1..10000 each, summing to 10000."""
    count = draw(st.integers(1, len(OWNERS)))
    owners = draw(st.permutations(OWNERS))[:count]
    cuts = sorted(draw(st.sets(st.integers(1, WHOLE - 1), min_size=count - 1, max_size=count - 1)))
    bounds = [0, *cuts, WHOLE]
    return [(o, bounds[i + 1] - bounds[i]) for i, o in enumerate(owners)]


@PROPERTY
@given(st.integers(-(10**12), 10**12), st.lists(st.integers(-1000, 1000), min_size=1, max_size=8))
def test_allocate_sums_exactly_and_is_close(amount: int, weights: list[int]) -> None:
    if sum(weights) == 0:
        with pytest.raises(ValueError):
            allocate(amount, weights)
        return
    parts = allocate(amount, weights)
    assert sum(parts) == amount
    total = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part * total - amount * weight) < abs(total)  # within one unit of exact
    assert allocate(amount, weights) == parts  # deterministic


def test_allocate_ties_go_to_the_earlier_share() -> None:
    assert allocate(1, [1, 1, 1]) == [1, 0, 0]
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate(-1, [1, 1]) == [0, -1]
    assert allocate(100, [3333, 3333, 3334]) == [33, 33, 34]


@PROPERTY
@given(share_sets(), st.integers(-(10**10), 10**10))
def test_a_split_between_owners_sums_to_the_amount(
    shares: list[tuple[uuid.UUID, int]], amount: int
) -> None:
    assert share_problems(shares) == []
    parts = split(amount, make_set(START, shares))
    assert set(parts) == {o for o, _ in shares}
    assert sum(parts.values()) == amount


@PROPERTY
@given(
    st.lists(st.tuples(st.integers(0, 2000), share_sets()), min_size=1, max_size=6),
    st.integers(0, 2500),
)
def test_shares_sum_to_100_percent_at_every_date(
    puts: list[tuple[int, list[tuple[uuid.UUID, int]]]], probe: int
) -> None:
    history: list = []
    for offset, shares in puts:
        history = replace_from(history, make_set(START + timedelta(days=offset), shares))
    dates = [s.effective_from for s in history]
    assert dates == sorted(set(dates))
    day = START + timedelta(days=probe)
    current = set_on(history, day)
    if day < history[0].effective_from:
        assert current is None
    else:
        assert current is not None
        assert sum(s.basis_points for s in current.shares) == WHOLE
        assert current.effective_from <= day
        # the latest set put for that date wins
        last_put = [s for o, s in puts if START + timedelta(days=o) == current.effective_from][-1]
        assert sorted(current.shares, key=lambda s: s.owner_id) == list(current.shares)
        assert {(s.owner_id, s.basis_points) for s in current.shares} == set(last_put)


@pytest.mark.parametrize(
    ("shares", "fields"),
    [
        ([], ["shares"]),
        ([(OWNERS[0], 6000), (OWNERS[1], 5000)], ["shares"]),
        ([(OWNERS[0], 5000), (OWNERS[1], 4999)], ["shares"]),
        ([(OWNERS[0], 5000), (OWNERS[0], 5000)], ["shares[1].ownerId"]),
        ([(OWNERS[0], 0), (OWNERS[1], 10000)], ["shares[0].basisPoints"]),
        ([(OWNERS[0], 10001), (OWNERS[1], -1)], ["shares[0].basisPoints", "shares[1].basisPoints"]),
    ],
)
def test_bad_sets_are_named(shares: list[tuple[uuid.UUID, int]], fields: list[str]) -> None:
    problems = [f for f, _ in share_problems(shares)]
    for field in fields:
        assert field in problems
    with pytest.raises(ValueError):
        make_set(START, shares)


def test_percent_rounds_half_away_from_zero() -> None:
    assert percent_of(1000, 850) == 85
    assert percent_of(5, 1000) == 1  # 0.5 -> 1
    assert percent_of(-5, 1000) == -1
    assert percent_of(4, 1000) == 0
