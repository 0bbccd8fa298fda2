"""Reading the audit trail (writing it is haven.uow.recorder's job)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.db.pagination import Page, paginate, resolve_sort, sort_keys
from haven.db.query import scoped
from haven.models import AuditEvent, User

SORTS = sort_keys({"at": (AuditEvent.at, datetime)})


async def list_events(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    sort: str | None,
    entity_type: str | None = None,
    entity_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    action: str | None = None,
) -> Page[AuditEvent]:
    sort_name, key = resolve_sort(SORTS, sort, "-at")
    stmt = scoped(AuditEvent, organization_id)
    if entity_type:
        stmt = stmt.where(AuditEvent.entity_type == entity_type)
    if entity_id is not None:
        stmt = stmt.where(AuditEvent.entity_id == entity_id)
    if actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == actor_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    return await paginate(
        session,
        stmt,
        id_column=AuditEvent.id,
        sort_name=sort_name,
        key=key,
        limit=limit,
        cursor=cursor,
    )


async def emails_of(
    session: AsyncSession, user_ids: Sequence[uuid.UUID | None]
) -> dict[uuid.UUID, str]:
    """Current emails of the actors on a page, in one query (deleted users have none)."""
    ids = {u for u in user_ids if u is not None}
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.email).where(User.id.in_(ids)))
    return {row[0]: row[1] for row in rows}
