"""Unit rules: labels unique per property, status follows leases, no delete under a lease."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from msgspec import UNSET
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from haven.db.base import utcnow
from haven.db.pagination import ListQuery, Page, sort_keys
from haven.db.query import get_owned
from haven.db.reader import Reader
from haven.errors import ConflictError, FieldError
from haven.models import Property, Unit
from haven.units.schemas import UnitIn, UnitPatch, bathrooms_value


async def has_active_lease(session: AsyncSession, unit_id: uuid.UUID) -> bool:
    from haven.leases.service import unit_has_active_lease

    return await unit_has_active_lease(session, unit_id)


async def _label_taken(
    session: AsyncSession, property_id: uuid.UUID, label: str, exclude: uuid.UUID | None = None
) -> bool:
    stmt = select(Unit.id).where(Unit.property_id == property_id, Unit.label == label)
    if exclude is not None:
        stmt = stmt.where(Unit.id != exclude)
    return (await session.execute(stmt)).first() is not None


def _label_conflict(label: str) -> ConflictError:
    return ConflictError(
        f"This property already has a unit labelled {label!r}",
        errors=[FieldError("label", "must be unique within the property")],
    )


async def _bump_unit_count(session: AsyncSession, property_id: uuid.UUID, delta: int) -> None:
    # One UPDATE, so concurrent unit writes on other instances cannot lose an increment.
    # unitCount is part of the property's representation, so its version (the ETag) moves
    # too: a client revalidating with If-None-Match must not get 304 for a stale count.
    await session.execute(
        update(Property)
        .where(Property.id == property_id)
        .values(
            unit_count=Property.unit_count + delta,
            version=Property.version + 1,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    loaded = session.identity_map.get(identity_key(Property, property_id))
    if loaded is not None:
        # Keep an already-loaded row in step, so a later flush of it is not taken for stale.
        await session.refresh(loaded, ["unit_count", "version", "updated_at"])


async def create(
    session: AsyncSession, organization_id: uuid.UUID, prop: Property, data: UnitIn
) -> Unit:
    label = data.label.strip()
    if await _label_taken(session, prop.id, label):
        raise _label_conflict(label)
    unit = Unit(
        organization_id=organization_id,
        property_id=prop.id,
        label=label,
        bedrooms=data.bedrooms,
        bathrooms=bathrooms_value(data.bathrooms),
        area_sqft=data.area_sqft,
        market_rent=data.market_rent,
        status=data.status,
    )
    session.add(unit)
    try:
        await session.flush()
    except IntegrityError:
        raise _label_conflict(label) from None
    await _bump_unit_count(session, prop.id, 1)
    return unit


async def get(session: AsyncSession, organization_id: uuid.UUID, unit_id: uuid.UUID) -> Unit:
    return await get_owned(session, Unit, organization_id, unit_id)


async def update_unit(session: AsyncSession, unit: Unit, data: UnitPatch) -> Unit:
    if data.label is not UNSET:
        label = data.label.strip()
        if label != unit.label and await _label_taken(session, unit.property_id, label, unit.id):
            raise _label_conflict(label)
        unit.label = label
    if data.bedrooms is not UNSET:
        unit.bedrooms = data.bedrooms
    if data.bathrooms is not UNSET:
        unit.bathrooms = bathrooms_value(data.bathrooms)
    if data.area_sqft is not UNSET:
        unit.area_sqft = data.area_sqft
    if data.market_rent is not UNSET:
        unit.market_rent = data.market_rent
    if data.status is not UNSET and data.status != unit.status:
        if await has_active_lease(session, unit.id):
            raise ConflictError("The unit has an active lease, so it is occupied")
        unit.status = data.status
    try:
        await session.flush()
    except IntegrityError:
        raise _label_conflict(unit.label) from None
    return unit


async def delete(session: AsyncSession, unit: Unit) -> None:
    from haven.leases.service import lease_statuses, refuse_delete_with_leases

    refuse_delete_with_leases("The unit", await lease_statuses(session, unit_id=unit.id))
    property_id = unit.property_id
    await session.delete(unit)
    await session.flush()
    await _bump_unit_count(session, property_id, -1)


class UnitRow(NamedTuple):
    """A unit as its list shows it (a row of `units`)."""

    id: uuid.UUID
    property_id: uuid.UUID
    label: str
    bedrooms: int
    bathrooms: Decimal
    area_sqft: int | None
    market_rent: int
    status: str
    version: int
    created_at: datetime
    updated_at: datetime


LIST = ListQuery(
    Unit,
    UnitRow,
    sort_keys(
        {
            "label": (Unit.label, str),
            "createdAt": (Unit.created_at, datetime),
            "marketRent": (Unit.market_rent, int),
        }
    ),
    default_sort="label",
    filters={
        "property_id": lambda value: Unit.property_id == value,
        "status": lambda value: Unit.status == value,
    },
    search=(Unit.label,),
)


async def list_units(
    reader: Reader,
    organization_id: uuid.UUID,
    *,
    property_id: uuid.UUID | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    sort: str | None,
    search: str | None,
) -> Page[UnitRow]:
    return await LIST.page(
        reader,
        organization_id,
        limit=limit,
        cursor=cursor,
        sort=sort,
        property_id=property_id,
        status=status or None,
        search=search,
    )
