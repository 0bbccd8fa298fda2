"""/api/v1/properties/{id}/units and /api/v1/units/{id}."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import MANAGERS, Principal, roles
from haven.db.reader import Reader
from haven.models import Unit
from haven.properties import service as properties
from haven.schemas import ListOf
from haven.units import service
from haven.units.schemas import UnitIn, UnitOut, UnitPatch
from haven.units.service import UnitRow
from haven.web import NO_STORE, ListParams, check_version, with_etag

UnitStatus = Literal["vacant", "occupied", "unavailable"]


def unit_out(u: Unit | UnitRow) -> UnitOut:
    return UnitOut(
        id=u.id,
        property_id=u.property_id,
        label=u.label,
        bedrooms=u.bedrooms,
        bathrooms=float(u.bathrooms),
        area_sqft=u.area_sqft,
        market_rent=u.market_rent,
        status=u.status,
        version=u.version,
        created_at=u.created_at,
        updated_at=u.updated_at,
    )


async def _list(
    reader: Reader,
    principal: Principal,
    page: ListParams,
    property_id: uuid.UUID | None,
    status: str | None,
) -> Response[ListOf[UnitOut]]:
    result = await service.list_units(
        reader,
        principal.organization_id,
        property_id=property_id,
        status=status,
        limit=page.limit,
        cursor=page.cursor,
        sort=page.sort,
        search=page.search,
    )
    return Response(
        ListOf([unit_out(u) for u in result.items], result.next_cursor), headers=NO_STORE
    )


class PropertyUnitsController(Controller):
    path = "/properties/{property_id:uuid}/units"
    tags = ["units"]

    @get("/")
    async def list_units(
        self,
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        property_id: uuid.UUID,
        page: ListParams,
        status: UnitStatus | None = None,
    ) -> Response[ListOf[UnitOut]]:
        """Units of one property; sort by `label`, `createdAt` or `marketRent`."""
        await properties.get(db, principal.organization_id, property_id)
        return await _list(reader, principal, page, property_id, status)

    @post("/", status_code=HTTP_201_CREATED, opt=roles(*MANAGERS))
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        property_id: uuid.UUID,
        data: UnitIn,
    ) -> Response[UnitOut]:
        """Add a unit to a property; its label must be unique within the property (409)."""
        unit = await service.create(db, reader, principal.organization_id, property_id, data)
        return with_etag(request, unit_out(unit), unit.version, HTTP_201_CREATED)


class UnitsController(Controller):
    path = "/units"
    tags = ["units"]

    @get("/")
    async def list_all(
        self,
        reader: Reader,
        principal: Principal,
        page: ListParams,
        property_id: Annotated[uuid.UUID | None, Parameter(query="propertyId")] = None,
        status: UnitStatus | None = None,
    ) -> Response[ListOf[UnitOut]]:
        """Units across the organization, optionally of one property or status."""
        return await _list(reader, principal, page, property_id, status)

    @get("/{unit_id:uuid}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        unit_id: uuid.UUID,
    ) -> Response[UnitOut]:
        """One unit."""
        unit = await service.get(db, principal.organization_id, unit_id)
        return with_etag(request, unit_out(unit), unit.version)

    @patch("/{unit_id:uuid}", opt=roles(*MANAGERS))
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        unit_id: uuid.UUID,
        data: UnitPatch,
    ) -> Response[UnitOut]:
        """Change a unit; If-Match with its ETag refuses a stale write (412)."""
        unit = await service.get(db, principal.organization_id, unit_id)
        check_version(unit, request.headers.get("if-match"))
        unit = await service.update_unit(db, unit, data)
        return with_etag(request, unit_out(unit), unit.version)

    @delete("/{unit_id:uuid}", status_code=HTTP_204_NO_CONTENT, opt=roles(*MANAGERS))
    async def remove(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        unit_id: uuid.UUID,
    ) -> None:
        """Delete a unit; 409 while it has a lease that is not a draft (ledger history stays)."""
        unit = await service.get(db, principal.organization_id, unit_id)
        check_version(unit, request.headers.get("if-match"))
        await service.delete(db, unit)
