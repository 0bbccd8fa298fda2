"""Ownership shares and how money is split between owners, as pure functions.

Definitions (property-tested in tests/unit/test_owner_allocation.py and
tests/unit/test_owner_statement.py):

* A property's ownership is a history of **share sets**. A set is a list of
  (owner, basis points) with distinct owners, each share 1..10,000 basis points, summing to
  exactly 10,000 (100%). A set holds from its `effective_from` date until the day before the
  next set's `effective_from`; before the first set the property has no owner.
* **Allocation** splits an integer amount (minor units, any sign) in proportion to integer
  weights (any sign, non-zero sum) so that the parts sum exactly to the amount: every part
  is first the floor of its exact share, then the units left over go one each to the parts
  with the largest fractional remainders; ties go to the earlier position in the list (the
  callers order owners by id, so the split is the same on every instance and every run).
"""

from __future__ import annotations

import uuid
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

WHOLE = 10_000  # basis points in 100%


@dataclass(frozen=True, slots=True)
class Share:
    owner_id: uuid.UUID
    basis_points: int


@dataclass(frozen=True, slots=True)
class ShareSet:
    """The owners of a property from `effective_from` on (shares sorted by owner id)."""

    effective_from: date
    shares: tuple[Share, ...]

    def of(self, owner_id: uuid.UUID) -> int:
        return next((s.basis_points for s in self.shares if s.owner_id == owner_id), 0)


def share_problems(shares: Sequence[tuple[uuid.UUID, int]]) -> list[tuple[str, str]]:
    """What is wrong with a proposed set, as (field, message) pairs; empty when it is valid."""
    problems: list[tuple[str, str]] = []
    if not shares:
        return [("shares", "at least one owner is needed")]
    seen: set[uuid.UUID] = set()
    for i, (owner_id, points) in enumerate(shares):
        if owner_id in seen:
            problems.append((f"shares[{i}].ownerId", "this owner appears more than once"))
        seen.add(owner_id)
        if not 1 <= points <= WHOLE:
            problems.append((f"shares[{i}].basisPoints", "must be between 1 and 10000"))
    total = sum(points for _, points in shares)
    if total != WHOLE:
        problems.append(("shares", f"basis points sum to {total}, not 10000 (100%)"))
    return problems


def make_set(effective_from: date, shares: Sequence[tuple[uuid.UUID, int]]) -> ShareSet:
    """A valid set (ValueError otherwise), its shares in owner-id order."""
    problems = share_problems(shares)
    if problems:
        raise ValueError("; ".join(f"{f}: {m}" for f, m in problems))
    ordered = sorted((Share(o, p) for o, p in shares), key=lambda s: s.owner_id)
    return ShareSet(effective_from, tuple(ordered))


def history_from_rows(rows: Sequence[tuple[date, uuid.UUID, int]]) -> list[ShareSet]:
    """Sets from stored rows (effective_from, owner_id, basis_points), oldest first."""
    grouped: dict[date, list[Share]] = {}
    for effective_from, owner_id, points in rows:
        grouped.setdefault(effective_from, []).append(Share(owner_id, points))
    return [
        ShareSet(day, tuple(sorted(shares, key=lambda s: s.owner_id)))
        for day, shares in sorted(grouped.items())
    ]


def set_on(history: Sequence[ShareSet], day: date) -> ShareSet | None:
    """The set in effect on `day` (history oldest first), or None before the first."""
    i = bisect_right([s.effective_from for s in history], day)
    return history[i - 1] if i else None


def replace_from(history: Sequence[ShareSet], new: ShareSet) -> list[ShareSet]:
    """The history after `new` is put in place: a set on the same date is replaced,
    sets before and after it keep their dates."""
    kept = [s for s in history if s.effective_from != new.effective_from]
    return sorted([*kept, new], key=lambda s: s.effective_from)


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` in proportion to `weights`; the parts sum exactly to `amount`
    (largest remainder, ties to the earlier weight). The weights must not sum to 0."""
    total = sum(weights)
    if total == 0:
        raise ValueError("weights sum to 0")
    exact = [Fraction(amount * w, total) for w in weights]
    parts = [e.numerator // e.denominator for e in exact]
    left = amount - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def split(amount: int, shares: ShareSet) -> dict[uuid.UUID, int]:
    """`amount` split between the owners of a set."""
    parts = allocate(amount, [s.basis_points for s in shares.shares])
    return {s.owner_id: part for s, part in zip(shares.shares, parts, strict=True)}


def percent_of(amount: int, basis_points: int) -> int:
    """`basis_points` of `amount`, rounded half away from zero (a fee on collected rent)."""
    value = Fraction(amount * basis_points, WHOLE)
    magnitude = abs(value)
    rounded = int(magnitude) + (1 if magnitude - int(magnitude) >= Fraction(1, 2) else 0)
    return rounded if value >= 0 else -rounded
