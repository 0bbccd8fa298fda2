"""Vendor rules: create, change, list, the insurance check, and no delete while referenced."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import NamedTuple, Protocol

from msgspec import UNSET
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.db.pagination import ListQuery, Page, sort_keys
from haven.db.query import get_owned
from haven.db.reader import Reader
from haven.errors import ConflictError, VendorUninsuredError
from haven.models import Bill, Vendor, WorkOrder
from haven.uow import add_new
from haven.vendors.schemas import VendorIn, VendorPatch


def insured_on(expires_on: date | None, today: date) -> bool:
    """Insurance covers `today` when it is recorded and expires today or later."""
    return expires_on is not None and expires_on >= today


class Insurable(Protocol):
    """A vendor as the insurance check reads it (a `Vendor`, or a row read for a check)."""

    @property
    def name(self) -> str: ...
    @property
    def insurance_expires_on(self) -> date | None: ...


def check_insured(vendor: Insurable, today: date) -> None:
    """409 `vendor-uninsured` unless the vendor may be assigned work today."""
    if vendor.insurance_expires_on is None:
        raise VendorUninsuredError(
            f"Vendor {vendor.name} has no insurance on record and cannot be assigned work"
        )
    if not insured_on(vendor.insurance_expires_on, today):
        raise VendorUninsuredError(
            f"Vendor {vendor.name}'s insurance lapsed on {vendor.insurance_expires_on.isoformat()}"
            " and they cannot be assigned work until it is renewed"
        )


async def create(session: AsyncSession, organization_id: uuid.UUID, data: VendorIn) -> Vendor:
    vendor = Vendor(
        organization_id=organization_id,
        name=data.name.strip(),
        trade=data.trade,
        contact_name=data.contact_name,
        email=data.email,
        phone=data.phone,
        insurance_expires_on=data.insurance_expires_on,
        payout_reference=data.payout_reference,
        notes=data.notes,
    )
    add_new(session, vendor)  # written with the commit's statement (haven.uow.recorder)
    return vendor


async def get(
    session: AsyncSession,
    organization_id: uuid.UUID,
    vendor_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Vendor:
    return await get_owned(session, Vendor, organization_id, vendor_id, for_update=for_update)


async def update(session: AsyncSession, vendor: Vendor, data: VendorPatch) -> Vendor:
    if data.name is not UNSET:
        vendor.name = data.name.strip()
    for field in (
        "trade",
        "contact_name",
        "email",
        "phone",
        "insurance_expires_on",
        "payout_reference",
        "notes",
    ):
        value = getattr(data, field)
        if value is not UNSET:
            setattr(vendor, field, value)
    await session.flush()
    return vendor


async def delete(session: AsyncSession, vendor: Vendor) -> None:
    """Delete a vendor nothing refers to; work orders and bills keep their vendor (409)."""
    for model, what in ((WorkOrder, "work orders"), (Bill, "bills")):
        found = await session.execute(select(model.id).where(model.vendor_id == vendor.id).limit(1))
        if found.first() is not None:
            raise ConflictError(f"This vendor has {what}; it cannot be deleted")
    await session.delete(vendor)
    await session.flush()


class VendorRow(NamedTuple):
    """A vendor as its list shows it (a row of `vendors`)."""

    id: uuid.UUID
    name: str
    trade: str
    contact_name: str | None
    email: str | None
    phone: str | None
    insurance_expires_on: date | None
    payout_reference: str | None
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime


LIST = ListQuery(
    Vendor,
    VendorRow,
    sort_keys({"name": (Vendor.name, str), "createdAt": (Vendor.created_at, datetime)}),
    default_sort="name",
    search=(Vendor.name, Vendor.contact_name, Vendor.email),
    filters={
        "trade": lambda value: Vendor.trade == value,
        "insured_on": lambda value: Vendor.insurance_expires_on >= value,
        "lapsed_on": lambda value: (
            (Vendor.insurance_expires_on.is_(None)) | (Vendor.insurance_expires_on < value)
        ),
    },
)


async def list_vendors(
    reader: Reader,
    organization_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    sort: str | None,
    search: str | None,
    trade: str | None,
    insured: bool | None,
    today: date,
) -> Page[VendorRow]:
    return await LIST.page(
        reader,
        organization_id,
        limit=limit,
        cursor=cursor,
        sort=sort,
        search=search,
        trade=trade or None,
        insured_on=today if insured is True else None,
        lapsed_on=today if insured is False else None,
    )
