"""Latency percentiles and the 60 s window of haven.cluster.state, with an injected clock.

The window keeps a histogram whose buckets grow by 15 %, so a percentile is the upper
bound of the bucket holding the nearest-rank sample: never below the true value, less
than one step (15 %) above it, rounded to 0.01 ms. The reference here is the plain
definition: sort the samples and take the ceil(q * n)-th.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haven.cluster.metrics import cluster_summary
from haven.cluster.state import LATENCY_BOUNDS_MS, RollingWindow

T0 = 10_000.0  # an arbitrary monotonic reading
QS = (0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0)
TOP = LATENCY_BOUNDS_MS[-1]
ROUNDING = 0.005  # percentile() rounds to 0.01 ms

durations = st.floats(min_value=0.0, max_value=TOP, allow_nan=False)


def nearest_rank(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def window_of(samples: list[float], at: float = T0) -> RollingWindow:
    window = RollingWindow()
    for duration in samples:
        window.record(200, duration, now=at)
    return window


def assert_close_above(reported: float, truth: float) -> None:
    """Within one histogram step at or above the truth (0.05 ms is the smallest bound)."""
    assert reported >= truth - ROUNDING
    assert reported <= max(truth * 1.15, LATENCY_BOUNDS_MS[0]) + ROUNDING


@settings(deadline=None, max_examples=200)
@given(samples=st.lists(durations, min_size=1, max_size=300), q=st.sampled_from(QS))
def test_percentiles_match_the_sorted_list_within_one_step(samples: list[float], q: float) -> None:
    snap = window_of(samples).snapshot(now=T0)
    reported = snap.percentile(q)
    assert_close_above(reported, nearest_rank(samples, q))
    # What the number promises a reader: at least a q share of requests took no longer.
    assert sum(1 for s in samples if s <= reported + ROUNDING) >= q * len(samples)


@settings(deadline=None, max_examples=100)
@given(samples=st.lists(durations, min_size=1, max_size=200))
def test_higher_percentiles_are_never_lower(samples: list[float]) -> None:
    snap = window_of(samples).snapshot(now=T0)
    reported = [snap.percentile(q) for q in QS]
    assert reported == sorted(reported)
    assert snap.count == len(samples)


def test_an_empty_window_reports_zero() -> None:
    snap = RollingWindow().snapshot(now=T0)
    assert snap.count == 0
    assert snap.errors == 0
    assert [snap.percentile(q) for q in QS] == [0.0] * len(QS)


@pytest.mark.parametrize("duration", [0.0, 0.05, 1.0, 12.3, 250.0, 30_000.0])
def test_one_sample_is_every_percentile(duration: float) -> None:
    snap = window_of([duration]).snapshot(now=T0)
    reported = {snap.percentile(q) for q in QS}
    assert len(reported) == 1
    assert_close_above(reported.pop(), duration)


def test_a_worked_example() -> None:
    """99 fast requests and one slow one: p50 and p95 are fast, p99 is fast, max is slow."""
    snap = window_of([10.0] * 99 + [900.0]).snapshot(now=T0)
    assert 10.0 <= snap.percentile(0.5) < 11.5
    assert 10.0 <= snap.percentile(0.99) < 11.5
    assert 900.0 <= snap.percentile(1.0) < 1035.0


def test_beyond_the_last_bucket_reports_the_last_bound() -> None:
    """Over ~2 minutes the histogram saturates: the percentile says "at least that long"."""
    snap = window_of([TOP * 3, TOP * 10]).snapshot(now=T0)
    assert snap.percentile(0.5) == round(TOP, 2)


def test_a_sample_counts_for_sixty_seconds_then_drops_out() -> None:
    window = RollingWindow()
    window.record(200, 5.0, now=T0 + 0.3)
    assert window.snapshot(now=T0 + 0.9).count == 1
    assert window.snapshot(now=T0 + 59.99).count == 1
    assert window.snapshot(now=T0 + 60.0).count == 0
    assert window.snapshot(now=T0 + 60.0).percentile(0.99) == 0.0


def test_a_reused_second_forgets_what_it_held_a_minute_before() -> None:
    window = RollingWindow()
    window.record(500, 4000.0, now=T0)
    window.record(200, 5.0, now=T0 + 60)  # the same slot of the ring, one lap later
    snap = window.snapshot(now=T0 + 60)
    assert (snap.count, snap.errors) == (1, 0)
    assert_close_above(snap.percentile(1.0), 5.0)


def test_errors_are_5xx_only() -> None:
    window = RollingWindow()
    for status in (200, 302, 404, 429, 499, 500, 503, 599):
        window.record(status, 1.0, now=T0)
    snap = window.snapshot(now=T0)
    assert (snap.count, snap.errors) == (8, 3)


@settings(deadline=None, max_examples=150)
@given(
    timed=st.lists(
        st.tuples(st.floats(0, 200, allow_nan=False), durations), min_size=1, max_size=150
    ),
    extra=st.floats(0, 90, allow_nan=False),
    q=st.sampled_from(QS),
)
def test_the_window_holds_exactly_the_last_sixty_whole_seconds(
    timed: list[tuple[float, float]], extra: float, q: float
) -> None:
    timed.sort(key=lambda pair: pair[0])  # a monotonic clock only moves forward
    window = RollingWindow()
    for at, duration in timed:
        window.record(200, duration, now=T0 + at)
    now = T0 + timed[-1][0] + extra
    kept = [d for at, d in timed if int(T0 + at) > int(now) - 60]
    snap = window.snapshot(now=now)
    assert snap.count == len(kept)
    if kept:
        assert_close_above(snap.percentile(q), nearest_rank(kept, q))
    else:
        assert snap.percentile(q) == 0.0


@settings(deadline=None, max_examples=100)
@given(parts=st.lists(st.lists(durations, max_size=60), min_size=1, max_size=5))
def test_the_cluster_percentiles_are_those_of_all_instances_samples(
    parts: list[list[float]],
) -> None:
    """Each instance publishes its window; added up, it reads like one window of everything."""

    def summary(n: int, samples: list[float]) -> dict[str, object]:
        wire = window_of(samples).snapshot(now=T0).to_wire()
        return {"instanceId": f"i{n}", "sessions": {"active": 0}, "window": wire}

    own = summary(0, parts[0])
    records = [{"instanceId": f"i{n}", "metrics": summary(n, p)} for n, p in enumerate(parts)]
    merged = cluster_summary(own, records[1:])
    single = window_of([d for p in parts for d in p]).snapshot(now=T0)
    assert merged["latencyMs"] == {
        "p50": single.percentile(0.50),
        "p95": single.percentile(0.95),
        "p99": single.percentile(0.99),
    }
