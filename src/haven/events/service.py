"""Reading the feed, and purging events past their retention (the outbox writes them)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from haven.db.base import utcnow
from haven.db.reader import Reader
from haven.errors import FieldError, HavenError, ValidationError
from haven.models import Event, EventCounter


class CursorExpiredError(HavenError):
    status, slug, title = 410, "cursor-expired", "Events after this cursor have been purged"


@dataclass(frozen=True, slots=True)
class Feed:
    items: list[Event]
    next_position: int
    has_more: bool


class Counter(NamedTuple):
    """An organization's feed: the last position handed out, the position purged through."""

    position: int
    purged_through: int


COUNTER = select(EventCounter.position, EventCounter.purged_through).where(
    EventCounter.organization_id == bindparam("organization_id")
)


async def counter(reader: Reader, organization_id: uuid.UUID) -> Counter:
    """The organization's feed counter ((0, 0) before its first event)."""
    row = await reader.first(COUNTER, {"organization_id": organization_id}, Counter)
    return row if row is not None else Counter(0, 0)


async def read_feed(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    after: int | None,
    types: frozenset[str],
    limit: int,
    retention_days: int,
) -> Feed:
    """Events after `after` in position (= commit) order.

    The counter is read first: every event at or below the position it shows is
    committed, so a short page (nothing more matched) may move the cursor up to it,
    and a filtered consumer does not rescan what it has already skipped.
    """
    top, purged = await counter(Reader.inside(session), organization_id)
    if after is None:
        after = purged
    elif after < purged:
        raise CursorExpiredError(
            f"Events up to position {purged} are past the {retention_days}-day retention "
            "and have been purged; start again without `after` (from the oldest event kept) "
            "and reconcile what you missed from the resources themselves"
        )
    elif after > top:
        raise ValidationError(
            "This cursor is ahead of the organization's feed",
            errors=[FieldError("after", f"the feed's last position is {top}")],
        )
    stmt = (
        select(Event)
        .where(Event.organization_id == organization_id, Event.position > after)
        .order_by(Event.position)
        .limit(limit + 1)
    )
    if types:
        stmt = stmt.where(Event.type.in_(sorted(types)))
    rows = list((await session.execute(stmt)).scalars())
    has_more = len(rows) > limit
    items = rows[:limit]
    if has_more:
        next_position = items[-1].position
    else:
        next_position = max(top, items[-1].position if items else after)
    return Feed(items, next_position, has_more)


async def purge_expired(
    session: AsyncSession, retention_days: int, *, now: datetime | None = None
) -> int:
    """Delete each organization's events older than the retention, as a prefix of its feed.

    Whole prefixes go (every position up to the newest expired one), so a feed never has
    a hole, and `purged_through` tells a reader with an older cursor that it is too late.
    """
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    tops = (
        await session.execute(
            select(Event.organization_id, func.max(Event.position))
            .where(Event.occurred_at < cutoff)
            .group_by(Event.organization_id)
        )
    ).all()
    deleted = 0
    for organization_id, position in tops:
        result = await session.execute(
            delete(Event).where(
                Event.organization_id == organization_id, Event.position <= position
            )
        )
        deleted += int(result.rowcount or 0)  # type: ignore[attr-defined]
        await session.execute(
            update(EventCounter)
            .where(
                EventCounter.organization_id == organization_id,
                EventCounter.purged_through < position,
            )
            .values(purged_through=position)
        )
    return deleted
