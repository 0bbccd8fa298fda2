"""/api/v1/properties."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import MANAGERS, Principal, roles
from haven.db.reader import Reader
from haven.models import Property
from haven.properties import service
from haven.properties.schemas import (
    AddressOut,
    ManagementFeeOut,
    PropertyIn,
    PropertyOut,
    PropertyPatch,
    PropertyType,
)
from haven.properties.service import PropertyRow
from haven.schemas import ListOf
from haven.web import NO_STORE, ListParams, check_version, with_etag


def property_out(p: Property | PropertyRow) -> PropertyOut:
    """The body of a property, from its model or from a plain row of its table."""
    return PropertyOut(
        id=p.id,
        name=p.name,
        type=p.type,
        address=AddressOut(
            line1=p.address_line1,
            line2=p.address_line2,
            city=p.city,
            region=p.region,
            postal_code=p.postal_code,
            country=p.country,
        ),
        year_built=p.year_built,
        unit_count=p.unit_count,
        management_fee=(
            ManagementFeeOut(kind=p.management_fee_kind, amount=p.management_fee_amount)
            if p.management_fee_kind is not None and p.management_fee_amount is not None
            else None
        ),
        version=p.version,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


class PropertiesController(Controller):
    path = "/properties"
    tags = ["properties"]

    @get("/")
    async def list_properties(
        self,
        reader: Reader,
        principal: Principal,
        page: ListParams,
        type_: Annotated[PropertyType | None, Parameter(query="type")] = None,
    ) -> Response[ListOf[PropertyOut]]:
        """Properties of the organization; sort by `name` or `createdAt` (prefix `-` to reverse)."""
        result = await service.list_properties(
            reader,
            principal.organization_id,
            limit=page.limit,
            cursor=page.cursor,
            sort=page.sort,
            search=page.search,
            type_=type_,
        )
        body = ListOf([property_out(p) for p in result.items], result.next_cursor)
        return Response(body, headers=NO_STORE)

    @post("/", status_code=HTTP_201_CREATED, opt=roles(*MANAGERS))
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        data: PropertyIn,
    ) -> Response[PropertyOut]:
        """Add a property."""
        prop = await service.create(db, principal.organization_id, data)
        return with_etag(request, property_out(prop), prop.version, HTTP_201_CREATED)

    @get("/{property_id:uuid}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        property_id: uuid.UUID,
    ) -> Response[PropertyOut]:
        """One property."""
        prop = await service.get(db, principal.organization_id, property_id)
        return with_etag(request, property_out(prop), prop.version)

    @patch("/{property_id:uuid}", opt=roles(*MANAGERS))
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        property_id: uuid.UUID,
        data: PropertyPatch,
    ) -> Response[PropertyOut]:
        """Change a property; send If-Match with its ETag to refuse a stale write (412)."""
        prop = await service.get(db, principal.organization_id, property_id)
        check_version(prop, request.headers.get("if-match"))
        prop = await service.update(db, prop, data)
        return with_etag(request, property_out(prop), prop.version)

    @delete("/{property_id:uuid}", status_code=HTTP_204_NO_CONTENT, opt=roles(*MANAGERS))
    async def remove(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        property_id: uuid.UUID,
    ) -> None:
        """Delete a property and its units; 409 while a unit has a lease that is not a draft."""
        prop = await service.get(db, principal.organization_id, property_id)
        check_version(prop, request.headers.get("if-match"))
        await service.delete(db, prop)
