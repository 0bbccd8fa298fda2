"""API key rules: who may create and revoke, which role, the one-time secret."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from haven.apikeys.schemas import ApiKeyIn
from haven.auth.apikeys import keys
from haven.db.base import utcnow
from haven.db.pagination import ListQuery, Page, sort_keys
from haven.db.query import get_owned
from haven.db.reader import Reader
from haven.errors import FieldError, ForbiddenError, ValidationError
from haven.models import ApiKey
from haven.models.organization import ROLES
from haven.services import Services
from haven.uow import add_new, after_commit

SORTS = sort_keys({"createdAt": (ApiKey.created_at, datetime)})


def outranks(role: str, other: str) -> bool:
    """Whether `role` is more powerful than `other`."""
    return ROLES.index(role) < ROLES.index(other)


async def create(
    db: AsyncSession,
    *,
    organization_id: uuid.UUID,
    creator_id: uuid.UUID,
    creator_role: str,
    data: ApiKeyIn,
    production: bool,
) -> tuple[ApiKey, str]:
    """A new key (row, whole key string); the string exists only in this response."""
    if outranks(data.role, creator_role):
        raise ForbiddenError(
            f"A {creator_role} cannot create a key with the {data.role} role "
            "(a key's role is at most its creator's)"
        )
    if data.expires_at is not None and data.expires_at <= utcnow():
        raise ValidationError(
            "expiresAt must be in the future",
            errors=[FieldError("expiresAt", "must be in the future")],
        )
    if not data.name.strip():
        raise ValidationError(
            "name must not be blank", errors=[FieldError("name", "must not be blank")]
        )
    key = keys.generate(production)
    row = ApiKey(
        organization_id=organization_id,
        name=data.name.strip(),
        role=data.role,
        prefix=keys.display_prefix(key),
        key_hash=keys.digest(key),
        created_by=creator_id,
        created_at=utcnow(),
        expires_at=data.expires_at,
    )
    add_new(db, row)  # written with the commit's statement (haven.uow.recorder)
    return row, key


class ApiKeyRow(NamedTuple):
    """An API key as its list shows it (never its hash)."""

    id: uuid.UUID
    name: str
    role: str
    prefix: str
    created_by: uuid.UUID
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


LIST = ListQuery(ApiKey, ApiKeyRow, SORTS, default_sort="-createdAt")


async def list_keys(
    reader: Reader, organization_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[ApiKeyRow]:
    """Newest first, always (the list takes no `sort`)."""
    return await LIST.page(reader, organization_id, limit=limit, cursor=cursor, sort=None)


async def get(db: AsyncSession, organization_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    return await get_owned(db, ApiKey, organization_id, key_id)


async def revoke(
    db: AsyncSession,
    services: Services,
    *,
    organization_id: uuid.UUID,
    key_id: uuid.UUID,
    caller_id: uuid.UUID,
    caller_role: str,
) -> ApiKey:
    """Revoke a key on every instance: owners revoke any key, managers their own.

    The key's Redis record is dropped inside this transaction (so the revocation commits
    only once Redis has let go of it) and marked revoked after the commit; revoking a
    revoked key changes nothing."""
    row = await get_owned(db, ApiKey, organization_id, key_id, for_update=True)
    if caller_role != "owner" and row.created_by != caller_id:
        raise ForbiddenError("Managers can revoke only the keys they created")
    if row.revoked_at is not None:
        return row
    row.revoked_at = utcnow()
    await db.flush()
    store = services.api_keys
    await store.forget(row.key_hash)
    digest = row.key_hash

    async def mark() -> None:
        await store.publish(digest, None, 0)

    after_commit(db, mark)
    return row
