"""Tenant records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from haven.db.pagination import ListQuery, Page, sort_keys
from haven.db.query import get_owned
from haven.db.reader import Reader
from haven.models import Tenant
from haven.tenants.schemas import TenantIn, TenantPatch
from haven.uow import add_new


async def create(session: AsyncSession, organization_id: uuid.UUID, data: TenantIn) -> Tenant:
    tenant = Tenant(
        organization_id=organization_id,
        first_name=data.first_name.strip(),
        last_name=data.last_name.strip(),
        email=data.email.strip().lower() if data.email else None,
        phone=data.phone,
        notes=data.notes,
    )
    add_new(session, tenant)  # written with the commit's statement (haven.uow.recorder)
    return tenant


async def get(session: AsyncSession, organization_id: uuid.UUID, tenant_id: uuid.UUID) -> Tenant:
    return await get_owned(session, Tenant, organization_id, tenant_id)


async def update(session: AsyncSession, tenant: Tenant, data: TenantPatch) -> Tenant:
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    for field, value in changes.items():
        if field in ("first_name", "last_name"):
            value = value.strip()
        elif field == "email" and value is not None:
            value = value.strip().lower()
        setattr(tenant, field, value)
    await session.flush()
    return tenant


async def delete(session: AsyncSession, tenant: Tenant) -> None:
    from haven.leases.service import lease_statuses, refuse_delete_with_leases

    refuse_delete_with_leases("The tenant", await lease_statuses(session, tenant_id=tenant.id))
    await session.delete(tenant)
    await session.flush()


class TenantRow(NamedTuple):
    """A tenant as its list shows it (a row of `tenants`)."""

    id: uuid.UUID
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime


LIST = ListQuery(
    Tenant,
    TenantRow,
    sort_keys({"lastName": (Tenant.last_name, str), "createdAt": (Tenant.created_at, datetime)}),
    default_sort="lastName",
    search=(Tenant.first_name, Tenant.last_name, Tenant.email),
)


async def list_tenants(
    reader: Reader,
    organization_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    sort: str | None,
    search: str | None,
) -> Page[TenantRow]:
    return await LIST.page(
        reader,
        organization_id,
        limit=limit,
        cursor=cursor,
        sort=sort,
        search=search,
    )
