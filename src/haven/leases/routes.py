"""/api/v1/leases."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import MANAGERS, Principal, roles
from haven.db.query import check_version
from haven.leases import service
from haven.leases.schemas import (
    LateFeeOut,
    LeaseIn,
    LeaseOut,
    LeasePatch,
    LeaseStatus,
    TerminateIn,
)
from haven.models import Lease
from haven.schemas import ListOf
from haven.web import NO_STORE, ListParams, with_etag


def lease_out(lease: Lease, tenant_ids: list[uuid.UUID], property_id: uuid.UUID) -> LeaseOut:
    fee = None
    if lease.late_fee_kind is not None and lease.late_fee_amount is not None:
        fee = LateFeeOut(kind=lease.late_fee_kind, amount=lease.late_fee_amount)
    return LeaseOut(
        id=lease.id,
        unit_id=lease.unit_id,
        property_id=property_id,
        tenant_ids=tenant_ids,
        start_date=lease.start_date,
        end_date=lease.end_date,
        rent=lease.rent,
        deposit=lease.deposit,
        due_day=lease.due_day,
        grace_days=lease.grace_days,
        late_fee=fee,
        status=lease.status,
        activated_at=lease.activated_at,
        terminated_on=lease.terminated_on,
        version=lease.version,
        created_at=lease.created_at,
        updated_at=lease.updated_at,
    )


async def render(db: AsyncSession, lease: Lease) -> LeaseOut:
    tenants = await service.tenants_of(db, [lease.id])
    props = await service.properties_of(db, [lease.unit_id])
    return lease_out(lease, tenants[lease.id], props[lease.unit_id])


class LeasesController(Controller):
    path = "/leases"
    tags = ["leases"]

    @get("/")
    async def list_leases(
        self,
        db: AsyncSession,
        principal: Principal,
        page: ListParams,
        status: LeaseStatus | None = None,
        unit_id: Annotated[uuid.UUID | None, Parameter(query="unitId")] = None,
        tenant_id: Annotated[uuid.UUID | None, Parameter(query="tenantId")] = None,
        property_id: Annotated[uuid.UUID | None, Parameter(query="propertyId")] = None,
    ) -> Response[ListOf[LeaseOut]]:
        """Leases; filter by status, unitId, tenantId, propertyId; sort `createdAt`, `startDate`."""
        result = await service.list_leases(
            db,
            principal.organization_id,
            limit=page.limit,
            cursor=page.cursor,
            sort=page.sort,
            status=status,
            unit_id=unit_id,
            tenant_id=tenant_id,
            property_id=property_id,
        )
        tenants = await service.tenants_of(db, [lease.id for lease in result.items])
        props = await service.properties_of(db, [lease.unit_id for lease in result.items])
        items = [lease_out(x, tenants[x.id], props[x.unit_id]) for x in result.items]
        return Response(ListOf(items, result.next_cursor), headers=NO_STORE)

    @post("/", status_code=HTTP_201_CREATED, opt=roles(*MANAGERS))
    async def create(
        self, request: Request[Any, Any, Any], db: AsyncSession, principal: Principal, data: LeaseIn
    ) -> Response[LeaseOut]:
        """Draft a lease: unit, one or more tenants, dates (no endDate = month-to-month), terms."""
        lease = await service.create(db, principal.organization_id, data)
        return with_etag(request, await render(db, lease), lease.version, HTTP_201_CREATED)

    @get("/{lease_id:uuid}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        lease_id: uuid.UUID,
    ) -> Response[LeaseOut]:
        """One lease."""
        lease = await service.get(db, principal.organization_id, lease_id)
        return with_etag(request, await render(db, lease), lease.version)

    @patch("/{lease_id:uuid}", opt=roles(*MANAGERS))
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        lease_id: uuid.UUID,
        data: LeasePatch,
    ) -> Response[LeaseOut]:
        """Change a lease (drafts: anything; active: endDate, graceDays, lateFee); If-Match."""
        lease = await service.get(db, principal.organization_id, lease_id)
        check_version(lease, request.headers.get("if-match"))
        lease = await service.update(db, lease, data)
        return with_etag(request, await render(db, lease), lease.version)

    @post("/{lease_id:uuid}/activate", status_code=HTTP_200_OK, opt=roles(*MANAGERS))
    async def activate(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        lease_id: uuid.UUID,
    ) -> Response[LeaseOut]:
        """draft -> active, unit occupied; 409 lease-overlap if another active lease overlaps."""
        lease = await service.get(db, principal.organization_id, lease_id)
        lease = await service.activate(db, lease)
        return with_etag(request, await render(db, lease), lease.version)

    @post("/{lease_id:uuid}/terminate", status_code=HTTP_200_OK, opt=roles(*MANAGERS))
    async def terminate(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        lease_id: uuid.UUID,
        data: TerminateIn,
    ) -> Response[LeaseOut]:
        """active -> terminated on `date`; the unit becomes vacant."""
        lease = await service.get(db, principal.organization_id, lease_id)
        lease = await service.terminate(db, lease, data.date)
        return with_etag(request, await render(db, lease), lease.version)
