"""/api/v1/vendors."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import MANAGERS, STAFF, Principal, roles
from haven.db.reader import Reader
from haven.models import Vendor
from haven.organizations.service import get_organization, today_in, today_of
from haven.schemas import ListOf
from haven.vendors import service
from haven.vendors.schemas import Trade, VendorIn, VendorOut, VendorPatch
from haven.vendors.service import VendorRow, insured_on
from haven.web import NO_STORE, ListParams, check_version, with_etag


def vendor_out(v: Vendor | VendorRow, today: Any) -> VendorOut:
    return VendorOut(
        id=v.id,
        name=v.name,
        trade=v.trade,
        contact_name=v.contact_name,
        email=v.email,
        phone=v.phone,
        insurance_expires_on=v.insurance_expires_on,
        insured=insured_on(v.insurance_expires_on, today),
        payout_reference=v.payout_reference,
        notes=v.notes,
        version=v.version,
        created_at=v.created_at,
        updated_at=v.updated_at,
    )


class VendorsController(Controller):
    path = "/vendors"
    tags = ["vendors"]

    @get("/")
    async def list_vendors(
        self,
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        page: ListParams,
        trade: Trade | None = None,
        insured: bool | None = None,
    ) -> Response[ListOf[VendorOut]]:
        """Vendors by name (`sort=createdAt` too); `insured=true|false` by today's insurance."""
        today = today_in(await get_organization(db, principal.organization_id))
        result = await service.list_vendors(
            reader,
            principal.organization_id,
            limit=page.limit,
            cursor=page.cursor,
            sort=page.sort,
            search=page.search,
            trade=trade,
            insured=insured,
            today=today,
        )
        body = ListOf([vendor_out(v, today) for v in result.items], result.next_cursor)
        return Response(body, headers=NO_STORE)

    @post("/", status_code=HTTP_201_CREATED, opt=roles(*STAFF))
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        data: VendorIn,
    ) -> Response[VendorOut]:
        """Add a vendor (a business that does work on properties)."""
        today = await today_of(reader, principal.organization_id)
        vendor = await service.create(db, principal.organization_id, data)
        return with_etag(request, vendor_out(vendor, today), vendor.version, HTTP_201_CREATED)

    @get("/{vendor_id:uuid}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        vendor_id: uuid.UUID,
    ) -> Response[VendorOut]:
        """One vendor, with whether its insurance covers today."""
        today = today_in(await get_organization(db, principal.organization_id))
        vendor = await service.get(db, principal.organization_id, vendor_id)
        return with_etag(request, vendor_out(vendor, today), vendor.version)

    @patch("/{vendor_id:uuid}", opt=roles(*STAFF))
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        vendor_id: uuid.UUID,
        data: VendorPatch,
    ) -> Response[VendorOut]:
        """Change a vendor; send If-Match with its ETag to refuse a stale write (412)."""
        today = today_in(await get_organization(db, principal.organization_id))
        vendor = await service.get(db, principal.organization_id, vendor_id)
        check_version(vendor, request.headers.get("if-match"))
        vendor = await service.update(db, vendor, data)
        return with_etag(request, vendor_out(vendor, today), vendor.version)

    @delete("/{vendor_id:uuid}", status_code=HTTP_204_NO_CONTENT, opt=roles(*MANAGERS))
    async def remove(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        vendor_id: uuid.UUID,
    ) -> None:
        """Delete a vendor; 409 while it has work orders or bills."""
        vendor = await service.get(db, principal.organization_id, vendor_id)
        check_version(vendor, request.headers.get("if-match"))
        await service.delete(db, vendor)
