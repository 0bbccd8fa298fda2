"""Unit rules: labels unique per property, status follows leases, no delete under a lease."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from msgspec import UNSET
from sqlalchemy import Integer, bindparam, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from haven.db.base import utcnow
from haven.db.pagination import ListQuery, Page, sort_keys
from haven.db.query import get_owned
from haven.db.reader import Reader
from haven.errors import ConflictError, FieldError, NotFoundError
from haven.models import Property, Unit
from haven.units.schemas import UnitIn, UnitPatch, bathrooms_value
from haven.uow import add_change, add_new


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


_properties: Any = Property.__table__
# The property's unit count, moved by one UPDATE written with the commit (haven.uow
# `add_change`: a CTE of its tail statement on PostgreSQL), so concurrent unit writes on
# other instances cannot lose an increment. unitCount is part of the property's
# representation, so its version (the ETag) moves too: a client revalidating with
# If-None-Match must not get 304 for a stale count.
_COUNT_UNITS = (
    update(_properties)
    .where(_properties.c.id == bindparam("units_property_id", type_=_properties.c.id.type))
    .values(
        unit_count=_properties.c.unit_count + bindparam("units_delta", type_=Integer()),
        version=_properties.c.version + 1,
        updated_at=bindparam("units_at", type_=_properties.c.updated_at.type),
    )
)


async def _count_units(session: AsyncSession, property_id: uuid.UUID, delta: int) -> None:
    params = {"units_property_id": property_id, "units_delta": delta, "units_at": utcnow()}
    loaded = session.identity_map.get(identity_key(Property, property_id))
    if loaded is None:
        add_change(session, _COUNT_UNITS, params)
        return
    # A transaction holding the property (a script's: the demo data changes it later) keeps
    # its copy in step, or a later flush of it would be taken for stale: the UPDATE now.
    await session.execute(_COUNT_UNITS, params)
    await session.refresh(loaded, ["unit_count", "version", "updated_at"])


class _Slot(NamedTuple):
    """A row of `_SLOT`: the organization's property, and whether the label is taken in it."""

    property_id: uuid.UUID
    taken: bool


_SLOT = select(
    Property.id,
    exists()
    .where(Unit.property_id == Property.id, Unit.label == bindparam("label"))
    .label("taken"),
).where(
    Property.id == bindparam("property_id"),
    Property.organization_id == bindparam("organization_id"),
)


async def create(
    session: AsyncSession,
    reader: Reader,
    organization_id: uuid.UUID,
    property_id: uuid.UUID,
    data: UnitIn,
) -> Unit:
    """A unit of the organization's property (404 for another's). The property and the
    label are one read through `reader` (no lock: a property deleted meanwhile fails the
    unit's foreign key at the commit, a 409; a label taken meanwhile fails the unique index,
    the same 409 as a label taken before). The unit is added with `add_new` and the
    property's count moved with `add_change`: both written with the commit's statement
    (haven.uow.recorder)."""
    label = data.label.strip()
    params = {"organization_id": organization_id, "property_id": property_id, "label": label}
    slot = await reader.first(_SLOT, params, _Slot)
    if slot is None:
        raise NotFoundError(f"No property with id {property_id}")
    if slot.taken:
        raise _label_conflict(label)
    unit = Unit(
        organization_id=organization_id,
        property_id=slot.property_id,
        label=label,
        bedrooms=data.bedrooms,
        bathrooms=bathrooms_value(data.bathrooms),
        area_sqft=data.area_sqft,
        market_rent=data.market_rent,
        status=data.status,
    )
    add_new(session, unit, taken=_label_conflict(label))
    await _count_units(session, slot.property_id, 1)
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
    await _count_units(session, property_id, -1)


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
