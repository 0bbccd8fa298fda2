"""Organization-scoped queries: every tenant-owned read goes through here."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.errors import NotFoundError

M = TypeVar("M")


def scoped(model: type[M], organization_id: uuid.UUID) -> Select[M]:
    """SELECT model rows of one organization; the only way routes list owned rows."""
    return select(model).where(model.organization_id == organization_id)  # type: ignore[attr-defined]


async def get_owned(
    session: AsyncSession,
    model: type[M],
    organization_id: uuid.UUID,
    row_id: uuid.UUID,
    *,
    for_update: bool = False,
    options: tuple[Any, ...] = (),
) -> M:
    """One row of the organization, or 404 (another organization's id looks missing too)."""
    stmt = scoped(model, organization_id).where(model.id == row_id)  # type: ignore[attr-defined]
    if options:
        stmt = stmt.options(*options)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"No {model.__name__.lower()} with id {row_id}")
    return row
