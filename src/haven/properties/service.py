"""Property rules: create, change, list, and refuse to delete one with an active lease."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from msgspec import UNSET
from sqlalchemy.ext.asyncio import AsyncSession

from haven.db.pagination import ListQuery, Page, sort_keys
from haven.db.query import get_owned
from haven.db.reader import Reader
from haven.errors import FieldError, ValidationError
from haven.models import Property
from haven.properties.schemas import Address, ManagementFee, PropertyIn, PropertyPatch
from haven.uow import add_new


def _apply_address(prop: Property, address: Address) -> None:
    prop.address_line1 = address.line1.strip()
    prop.address_line2 = address.line2
    prop.city = address.city.strip()
    prop.region = address.region
    prop.postal_code = address.postal_code
    prop.country = address.country


def _apply_fee(prop: Property, fee: ManagementFee | None) -> None:
    if fee is None:
        prop.management_fee_kind = prop.management_fee_amount = None
        return
    if fee.kind == "percent" and fee.amount > 10_000:
        raise ValidationError(
            errors=[FieldError("managementFee.amount", "a percent fee is 1..10000 basis points")]
        )
    prop.management_fee_kind = fee.kind
    prop.management_fee_amount = fee.amount


async def create(session: AsyncSession, organization_id: uuid.UUID, data: PropertyIn) -> Property:
    prop = Property(
        organization_id=organization_id,
        name=data.name.strip(),
        type=data.type,
        year_built=data.year_built,
        unit_count=0,
    )
    _apply_address(prop, data.address)
    _apply_fee(prop, data.management_fee)
    add_new(session, prop)  # written with the commit's statement (haven.uow.recorder)
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
    if data.management_fee is not UNSET:
        _apply_fee(prop, data.management_fee)
    await session.flush()
    return prop


async def delete(session: AsyncSession, prop: Property) -> None:
    from haven.bills.service import refuse_delete_with_bills
    from haven.leases.service import lease_statuses, refuse_delete_with_leases

    refuse_delete_with_leases(
        "A unit of this property", await lease_statuses(session, property_id=prop.id)
    )
    await refuse_delete_with_bills(session, prop.id)
    await session.delete(prop)
    await session.flush()


class PropertyRow(NamedTuple):
    """A property as its list shows it (a row of `properties`)."""

    id: uuid.UUID
    name: str
    type: str
    address_line1: str
    address_line2: str | None
    city: str
    region: str | None
    postal_code: str | None
    country: str
    year_built: int | None
    unit_count: int
    management_fee_kind: str | None
    management_fee_amount: int | None
    version: int
    created_at: datetime
    updated_at: datetime


LIST = ListQuery(
    Property,
    PropertyRow,
    sort_keys({"name": (Property.name, str), "createdAt": (Property.created_at, datetime)}),
    default_sort="name",
    search=(Property.name, Property.city, Property.address_line1),
    filters={"type": lambda value: Property.type == value},
)


async def list_properties(
    reader: Reader,
    organization_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    sort: str | None,
    search: str | None,
    type_: str | None,
) -> Page[PropertyRow]:
    return await LIST.page(
        reader,
        organization_id,
        limit=limit,
        cursor=cursor,
        sort=sort,
        search=search,
        type=type_ or None,
    )
