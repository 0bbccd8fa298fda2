"""/api/v1/tenants."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import MANAGERS, Principal, roles
from haven.db.reader import Reader
from haven.models import Tenant
from haven.schemas import ListOf
from haven.tenants import service
from haven.tenants.schemas import TenantIn, TenantOut, TenantPatch
from haven.tenants.service import TenantRow
from haven.web import NO_STORE, ListParams, check_version, with_etag


def tenant_out(t: Tenant | TenantRow) -> TenantOut:
    return TenantOut(
        id=t.id,
        first_name=t.first_name,
        last_name=t.last_name,
        email=t.email,
        phone=t.phone,
        notes=t.notes,
        version=t.version,
        created_at=t.created_at,
        updated_at=t.updated_at,
    )


class TenantsController(Controller):
    path = "/tenants"
    tags = ["tenants"]

    @get("/")
    async def list_tenants(
        self, reader: Reader, principal: Principal, page: ListParams
    ) -> Response[ListOf[TenantOut]]:
        """Tenants; search matches names and email; sort by `lastName` or `createdAt`."""
        result = await service.list_tenants(
            reader,
            principal.organization_id,
            limit=page.limit,
            cursor=page.cursor,
            sort=page.sort,
            search=page.search,
        )
        body = ListOf([tenant_out(t) for t in result.items], result.next_cursor)
        return Response(body, headers=NO_STORE)

    @post("/", status_code=HTTP_201_CREATED, opt=roles(*MANAGERS))
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        data: TenantIn,
    ) -> Response[TenantOut]:
        """Add a tenant."""
        tenant = await service.create(db, principal.organization_id, data)
        return with_etag(request, tenant_out(tenant), tenant.version, HTTP_201_CREATED)

    @get("/{tenant_id:uuid}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        tenant_id: uuid.UUID,
    ) -> Response[TenantOut]:
        """One tenant."""
        tenant = await service.get(db, principal.organization_id, tenant_id)
        return with_etag(request, tenant_out(tenant), tenant.version)

    @patch("/{tenant_id:uuid}", opt=roles(*MANAGERS))
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        tenant_id: uuid.UUID,
        data: TenantPatch,
    ) -> Response[TenantOut]:
        """Change a tenant; If-Match with its ETag refuses a stale write (412)."""
        tenant = await service.get(db, principal.organization_id, tenant_id)
        check_version(tenant, request.headers.get("if-match"))
        tenant = await service.update(db, tenant, data)
        return with_etag(request, tenant_out(tenant), tenant.version)

    @delete("/{tenant_id:uuid}", status_code=HTTP_204_NO_CONTENT, opt=roles(*MANAGERS))
    async def remove(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        tenant_id: uuid.UUID,
    ) -> None:
        """Delete a tenant; 409 while they are on a lease that is not a draft."""
        tenant = await service.get(db, principal.organization_id, tenant_id)
        check_version(tenant, request.headers.get("if-match"))
        await service.delete(db, tenant)
