"""An independent model of what a lease owes, and a helper to run schedulers (billing tests).

The model knows nothing of haven.billing.schedule: it walks the lease day by day,
looks up the rate in force by scanning the changes, adds rate / days-in-month to
that calendar month, and rounds each month half up with exact fractions.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

DAY = timedelta(days=1)


def half_up(value: Fraction) -> int:
    return int(value + Fraction(1, 2))


def owed(
    start: date,
    end: date,
    rent: int,
    changes: Sequence[tuple[date, int]] = (),
    recurring: Sequence[tuple[str, int, date, date | None]] = (),
) -> dict[tuple[str, str], int]:
    """Per (charge, YYYY-MM): what [start, end] owes; recurring = (name, amount, from, to)."""
    sums: dict[tuple[str, str], Fraction] = defaultdict(Fraction)
    day = start
    while day <= end:
        month = f"{day.year:04d}-{day.month:02d}"
        days = calendar.monthrange(day.year, day.month)[1]
        rate = rent
        for effective, new_rent in changes:
            if effective <= day:
                rate = new_rent
        sums[("rent", month)] += Fraction(rate, days)
        for name, amount, lo, hi in recurring:
            if lo <= day and (hi is None or day <= hi):
                sums[(name, month)] += Fraction(amount, days)
        day += DAY
    return {k: half_up(v) for k, v in sums.items() if half_up(v) > 0}


def billed(entries: Sequence[dict[str, Any]]) -> int:
    """Rent and recurring charges plus their adjustments (not deposits, fees, manual `other`)."""
    return sum(
        e["amount"]
        for e in entries
        if e["kind"] not in ("deposit", "late_fee", "other", "credit")
        and e["type"] in ("charge", "credit")
    )
