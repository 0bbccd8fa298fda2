"""Lease rules. (Placeholder until the leases issue lands: no lease is ever active.)"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession


async def unit_has_active_lease(session: AsyncSession, unit_id: uuid.UUID) -> bool:
    return False


async def property_has_active_lease(session: AsyncSession, property_id: uuid.UUID) -> bool:
    return False
