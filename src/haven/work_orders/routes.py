"""/api/v1/work-orders, and POST /api/v1/maintenance-requests/{id}/work-orders."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import STAFF, Principal, roles
from haven.db.reader import Reader
from haven.models import WorkOrder
from haven.organizations.service import get_organization, today_in
from haven.schemas import ListOf
from haven.web import NO_STORE, ListParams, check_version, with_etag
from haven.work_orders import service
from haven.work_orders.schemas import (
    Status,
    WorkOrderIn,
    WorkOrderOut,
    WorkOrderPatch,
    WorkOrderTransitionIn,
)
from haven.work_orders.service import WorkOrderRow


def work_order_out(w: WorkOrder | WorkOrderRow) -> WorkOrderOut:
    return WorkOrderOut(
        id=w.id,
        request_id=w.request_id,
        property_id=w.property_id,
        unit_id=w.unit_id,
        vendor_id=w.vendor_id,
        title=w.title,
        description=w.description,
        status=w.status,
        estimate=w.estimate,
        scheduled_start=w.scheduled_start,
        scheduled_end=w.scheduled_end,
        completed_at=w.completed_at,
        version=w.version,
        created_at=w.created_at,
        updated_at=w.updated_at,
    )


class RequestWorkOrdersController(Controller):
    path = "/maintenance-requests/{request_id:uuid}/work-orders"
    tags = ["maintenance"]

    @post("/", status_code=HTTP_201_CREATED, opt=roles(*STAFF))
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        request_id: uuid.UUID,
        data: WorkOrderIn,
    ) -> Response[WorkOrderOut]:
        """Spawn a work order from a maintenance request; a lapsed vendor is a 409."""
        order = await service.create(db, reader, principal.organization_id, request_id, data)
        return with_etag(request, work_order_out(order), order.version, HTTP_201_CREATED)


class WorkOrdersController(Controller):
    path = "/work-orders"
    tags = ["maintenance"]

    @get("/")
    async def list_work_orders(
        self,
        reader: Reader,
        principal: Principal,
        page: ListParams,
        status: Status | None = None,
        vendor_id: Annotated[uuid.UUID | None, Parameter(query="vendorId")] = None,
        property_id: Annotated[uuid.UUID | None, Parameter(query="propertyId")] = None,
        request_id: Annotated[uuid.UUID | None, Parameter(query="requestId")] = None,
    ) -> Response[ListOf[WorkOrderOut]]:
        """Work orders, newest first; sort by `createdAt`, `updatedAt` or `title`."""
        result = await service.list_work_orders(
            reader,
            principal.organization_id,
            limit=page.limit,
            cursor=page.cursor,
            sort=page.sort,
            search=page.search,
            status=status,
            vendor_id=vendor_id,
            property_id=property_id,
            request_id=request_id,
        )
        body = ListOf([work_order_out(w) for w in result.items], result.next_cursor)
        return Response(body, headers=NO_STORE)

    @get("/{work_order_id:uuid}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        work_order_id: uuid.UUID,
    ) -> Response[WorkOrderOut]:
        """One work order."""
        order = await service.get(db, principal.organization_id, work_order_id)
        return with_etag(request, work_order_out(order), order.version)

    @patch("/{work_order_id:uuid}", opt=roles(*STAFF))
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        work_order_id: uuid.UUID,
        data: WorkOrderPatch,
    ) -> Response[WorkOrderOut]:
        """Change a work order's details, vendor or schedule (not its status); If-Match: 412."""
        today = today_in(await get_organization(db, principal.organization_id))
        order = await service.get(db, principal.organization_id, work_order_id, for_update=True)
        check_version(order, request.headers.get("if-match"))
        order = await service.update(db, order, data, today)
        return with_etag(request, work_order_out(order), order.version)

    @post("/{work_order_id:uuid}/transition", status_code=200, opt=roles(*STAFF))
    async def transition(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        work_order_id: uuid.UUID,
        data: WorkOrderTransitionIn,
    ) -> Response[WorkOrderOut]:
        """Move a work order to another status; a change the workflow refuses is a 409."""
        today = today_in(await get_organization(db, principal.organization_id))
        order = await service.get(db, principal.organization_id, work_order_id, for_update=True)
        check_version(order, request.headers.get("if-match"))
        order = await service.transition(db, order, data, today)
        return with_etag(request, work_order_out(order), order.version)
