"""haven.store.ratelimit.decide: the Decision (allowed, binding limit, headers) from a reply.

The script's reply is {1, count1, pttl1, count2, pttl2, ...} when the request was counted
against every limit, or {0, i, count, pttl} naming the exhausted limit that frees up last.
What a client sees: RateLimit-Limit and RateLimit-Remaining of the most restrictive limit
(fewest requests left), RateLimit-Reset and, on a 429, Retry-After in whole seconds, never 0.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haven.store.ratelimit import Decision, Limit, decide

WINDOW_MS = 60_000

IP = Limit("ip", "203.0.113.7", 6000)
USER = Limit("user", "0123abcd", 1200)
AUTH = Limit("auth", "feedbeef", 10)


def header_map(decision: Decision) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in decision.headers()}


def test_an_allowed_request_reports_what_is_left_of_its_only_limit() -> None:
    decision = decide([IP], [1, 1, WINDOW_MS])
    assert decision.allowed
    assert header_map(decision) == {
        "ratelimit-limit": "6000",
        "ratelimit-remaining": "5999",
        "ratelimit-reset": "60",
    }


def test_the_limit_with_fewest_requests_left_is_the_one_reported() -> None:
    """The IP has 5990 left but this session only 1: the session's limit binds."""
    decision = decide([IP, USER], [1, 10, 59_000, 1199, 12_345])
    assert decision.allowed
    assert (decision.scope, decision.limit, decision.remaining) == ("user", 1200, 1)
    assert header_map(decision) == {
        "ratelimit-limit": "1200",
        "ratelimit-remaining": "1",
        "ratelimit-reset": "13",
    }


def test_the_last_allowed_request_has_zero_left() -> None:
    decision = decide([IP, USER, AUTH], [1, 50, 1000, 40, 1000, 10, 30_000])
    assert decision.allowed
    assert (decision.scope, decision.remaining) == ("auth", 0)
    assert header_map(decision)["ratelimit-remaining"] == "0"


def test_a_denied_request_names_the_exhausted_limit_and_when_to_retry() -> None:
    decision = decide([IP, USER, AUTH], [0, 3, 10, 41_200])
    assert not decision.allowed
    assert (decision.scope, decision.limit, decision.remaining) == ("auth", 10, 0)
    assert decision.reset_seconds == 42  # what Retry-After says
    assert header_map(decision) == {
        "ratelimit-limit": "10",
        "ratelimit-remaining": "0",
        "ratelimit-reset": "42",
    }


@pytest.mark.parametrize(
    ("pttl_ms", "seconds"),
    [(0, 1), (1, 1), (999, 1), (1000, 1), (1001, 2), (59_999, 60), (60_000, 60)],
)
def test_retry_after_rounds_the_remaining_window_up_and_is_never_zero(
    pttl_ms: int, seconds: int
) -> None:
    """Retrying after a rounded-down wait would be refused again; 0 would invite a hot loop."""
    assert decide([USER], [0, 1, 1200, pttl_ms]).reset_seconds == seconds
    assert decide([USER], [1, 5, pttl_ms]).reset_seconds == seconds


def test_remaining_is_never_negative_in_a_header() -> None:
    """A limit lowered by configuration while a window runs: more counted than now allowed."""
    decision = decide([Limit("ip", "x", 100)], [1, 150, 5000])
    assert header_map(decision)["ratelimit-remaining"] == "0"


limits_and_counts = st.lists(
    st.tuples(st.sampled_from(["ip", "user", "auth"]), st.integers(1, 10_000)).flatmap(
        lambda pair: st.tuples(
            st.just(Limit(pair[0], "who", pair[1])),
            st.integers(1, pair[1]),
            st.integers(1, WINDOW_MS),
        )
    ),
    min_size=1,
    max_size=4,
)


@settings(deadline=None, max_examples=200)
@given(rows=limits_and_counts)
def test_an_allowed_decision_reports_the_most_restrictive_limit(
    rows: list[tuple[Limit, int, int]],
) -> None:
    limits = [limit for limit, _, _ in rows]
    raw = [1]
    for _, count, ttl in rows:
        raw += [count, ttl]
    decision = decide(limits, raw)
    left = [limit.limit - count for limit, count, _ in rows]
    first = left.index(min(left))
    assert decision.allowed
    assert decision.remaining == min(left)
    assert (decision.limit, decision.scope) == (limits[first].limit, limits[first].scope)
    assert decision.reset_seconds == max(1, math.ceil(rows[first][2] / 1000))
    headers = header_map(decision)
    assert int(headers["ratelimit-remaining"]) == min(left)
    assert int(headers["ratelimit-limit"]) == limits[first].limit
    assert 1 <= int(headers["ratelimit-reset"]) <= WINDOW_MS // 1000


@settings(deadline=None, max_examples=200)
@given(rows=limits_and_counts, data=st.data())
def test_a_denied_decision_reports_the_exhausted_limit(
    rows: list[tuple[Limit, int, int]], data: st.DataObject
) -> None:
    limits = [limit for limit, _, _ in rows]
    index = data.draw(st.integers(1, len(limits)))
    exhausted = limits[index - 1]
    ttl = data.draw(st.integers(0, WINDOW_MS))
    decision = decide(limits, [0, index, exhausted.limit, ttl])
    assert not decision.allowed
    assert (decision.limit, decision.scope, decision.remaining) == (
        exhausted.limit,
        exhausted.scope,
        0,
    )
    assert decision.reset_seconds == max(1, math.ceil(ttl / 1000))
    assert header_map(decision)["ratelimit-remaining"] == "0"
