"""Reading the audit trail (writing it is haven.uow.recorder's job)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select

from haven.db.pagination import ListQuery, Page, sort_keys
from haven.db.reader import Reader
from haven.models import AuditEvent, User

SORTS = sort_keys({"at": (AuditEvent.at, datetime)})


class AuditRow(NamedTuple):
    """An audit event as its list shows it (a row of `audit_events`)."""

    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID | None
    system_actor: str | None
    api_key_id: uuid.UUID | None
    action: str
    entity_type: str
    entity_id: uuid.UUID
    instance_id: str | None
    request_id: str | None
    changes: list[Any] | None


class _Email(NamedTuple):
    id: uuid.UUID
    email: str


LIST = ListQuery(
    AuditEvent,
    AuditRow,
    SORTS,
    default_sort="-at",
    filters={
        "entity_type": lambda value: AuditEvent.entity_type == value,
        "entity_id": lambda value: AuditEvent.entity_id == value,
        "actor_id": lambda value: AuditEvent.actor_id == value,
        "action": lambda value: AuditEvent.action == value,
    },
)
EMAILS = select(User.id, User.email).where(User.id.in_(bindparam("ids", expanding=True)))


async def list_events(
    reader: Reader,
    organization_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    sort: str | None,
    entity_type: str | None = None,
    entity_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    action: str | None = None,
) -> Page[AuditRow]:
    return await LIST.page(
        reader,
        organization_id,
        limit=limit,
        cursor=cursor,
        sort=sort,
        entity_type=entity_type or None,
        entity_id=entity_id,
        actor_id=actor_id,
        action=action or None,
    )


async def emails_of(reader: Reader, user_ids: Sequence[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """Current emails of the actors on a page, in one query (deleted users have none)."""
    ids = {u for u in user_ids if u is not None}
    if not ids:
        return {}
    return {row.id: row.email for row in await reader.rows(EMAILS, {"ids": list(ids)}, _Email)}
