"""Property rules: create, change, list, and refuse to delete one with an active lease."""

from __future__ import annotations

import uuid
from datetime import datetime

from msgspec import UNSET
from sqlalchemy import func, or_
from sqlalchemy.ext.asyncio import AsyncSession

from haven.db.pagination import Page, paginate, resolve_sort, sort_keys
from haven.db.query import get_owned, scoped
from haven.models import Property
from haven.properties.schemas import Address, PropertyIn, PropertyPatch

SORTS = sort_keys({"name": (Property.name, str), "createdAt": (Property.created_at, datetime)})


def _apply_address(prop: Property, address: Address) -> None:
    prop.address_line1 = address.line1.strip()
    prop.address_line2 = address.line2
    prop.city = address.city.strip()
    prop.region = address.region
    prop.postal_code = address.postal_code
    prop.country = address.country


async def create(session: AsyncSession, organization_id: uuid.UUID, data: PropertyIn) -> Property:
    prop = Property(
        organization_id=organization_id,
        name=data.name.strip(),
        type=data.type,
        year_built=data.year_built,
        unit_count=0,
    )
    _apply_address(prop, data.address)
    session.add(prop)
    await session.flush()
    return prop


async def get(session: AsyncSession, organization_id: uuid.UUID, prop_id: uuid.UUID) -> Property:
    return await get_owned(session, Property, organization_id, prop_id)


async def update(session: AsyncSession, prop: Property, data: PropertyPatch) -> Property:
    if data.name is not UNSET:
        prop.name = data.name.strip()
    if data.type is not UNSET:
        prop.type = data.type
    if data.address is not UNSET:
        _apply_address(prop, data.address)
    if data.year_built is not UNSET:
        prop.year_built = data.year_built
    await session.flush()
    return prop


async def delete(session: AsyncSession, prop: Property) -> None:
    from haven.leases.service import lease_statuses, refuse_delete_with_leases

    refuse_delete_with_leases(
        "A unit of this property", await lease_statuses(session, property_id=prop.id)
    )
    await session.delete(prop)
    await session.flush()


def _like(term: str) -> str:
    return term.strip().lower()


async def list_properties(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    sort: str | None,
    search: str | None,
    type_: str | None,
) -> Page[Property]:
    sort_name, key = resolve_sort(SORTS, sort, "name")
    stmt = scoped(Property, organization_id)
    if search:
        term = _like(search)
        stmt = stmt.where(
            or_(
                func.lower(Property.name).contains(term, autoescape=True),
                func.lower(Property.city).contains(term, autoescape=True),
                func.lower(Property.address_line1).contains(term, autoescape=True),
            )
        )
    if type_:
        stmt = stmt.where(Property.type == type_)
    return await paginate(
        session,
        stmt,
        id_column=Property.id,
        sort_name=sort_name,
        key=key,
        limit=limit,
        cursor=cursor,
    )
