"""/api/v1/maintenance-requests, their transitions and comments."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import ANYONE, MANAGERS, RESIDENT, STAFF, Principal, roles
from haven.db.reader import Reader
from haven.maintenance import service
from haven.maintenance.schemas import (
    CommentIn,
    CommentOut,
    MaintenanceIn,
    MaintenanceOut,
    MaintenancePatch,
    Priority,
    Status,
    TransitionIn,
)
from haven.maintenance.service import CommentRow, MaintenanceRow
from haven.models import MaintenanceComment, MaintenanceRequest
from haven.schemas import ListOf
from haven.web import NO_STORE, ListParams, check_version, with_etag


def request_out(r: MaintenanceRequest | MaintenanceRow) -> MaintenanceOut:
    return MaintenanceOut(
        id=r.id,
        property_id=r.property_id,
        unit_id=r.unit_id,
        title=r.title,
        description=r.description,
        priority=r.priority,
        status=r.status,
        assignee_id=r.assignee_id,
        created_by_id=r.created_by_id,
        created_by_tenant_id=r.created_by_tenant_id,
        created_by_resident=r.created_by_tenant_id is not None,
        cost_estimate=r.cost_estimate,
        cost_actual=r.cost_actual,
        version=r.version,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def comment_out(c: MaintenanceComment | CommentRow, names: dict[uuid.UUID, str]) -> CommentOut:
    return CommentOut(
        id=c.id,
        request_id=c.request_id,
        author_id=c.author_id,
        author_name=names.get(c.author_id) if c.author_id else None,
        author_tenant_id=c.author_tenant_id,
        by_resident=c.author_tenant_id is not None,
        body=c.body,
        created_at=c.created_at,
    )


async def _get(db: AsyncSession, principal: Principal, request_id: uuid.UUID) -> MaintenanceRequest:
    """The organization's request; for a resident, only one about a unit of their leases."""
    row = await service.get(db, principal.organization_id, request_id)
    if principal.resident_tenant_id is not None:
        await service.visible_to_resident(db, row, principal.resident_tenant_id)
    return row


class MaintenanceController(Controller):
    path = "/maintenance-requests"
    tags = ["maintenance"]

    @get("/", opt=roles(*ANYONE, RESIDENT))
    async def list_requests(
        self,
        reader: Reader,
        principal: Principal,
        page: ListParams,
        status: Status | None = None,
        priority: Priority | None = None,
        property_id: Annotated[uuid.UUID | None, Parameter(query="propertyId")] = None,
        unit_id: Annotated[uuid.UUID | None, Parameter(query="unitId")] = None,
        assignee_id: Annotated[uuid.UUID | None, Parameter(query="assigneeId")] = None,
    ) -> Response[ListOf[MaintenanceOut]]:
        """Maintenance requests, newest first; sort by `createdAt`, `updatedAt` or `title`.

        A resident sees the requests about the units of their leases."""
        result = await service.list_requests(
            reader,
            principal.organization_id,
            limit=page.limit,
            cursor=page.cursor,
            sort=page.sort,
            search=page.search,
            status=status,
            priority=priority,
            property_id=property_id,
            unit_id=unit_id,
            assignee_id=assignee_id,
            resident_tenant_id=principal.resident_tenant_id,
        )
        body = ListOf([request_out(r) for r in result.items], result.next_cursor)
        return Response(body, headers=NO_STORE)

    @post("/", status_code=HTTP_201_CREATED, opt=roles(*STAFF, RESIDENT))
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        data: MaintenanceIn,
    ) -> Response[MaintenanceOut]:
        """Open a maintenance request for a property (and optionally one of its units);
        a resident opens one for a unit of their leases (no assignee or costs)."""
        row = await service.create(
            db,
            reader,
            principal.organization_id,
            principal.user_id,
            data,
            resident_tenant_id=principal.resident_tenant_id,
        )
        return with_etag(request, request_out(row), row.version, HTTP_201_CREATED)

    @get("/{request_id:uuid}", opt=roles(*ANYONE, RESIDENT))
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        request_id: uuid.UUID,
    ) -> Response[MaintenanceOut]:
        """One maintenance request."""
        row = await _get(db, principal, request_id)
        return with_etag(request, request_out(row), row.version)

    @patch("/{request_id:uuid}", opt=roles(*STAFF))
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        request_id: uuid.UUID,
        data: MaintenancePatch,
    ) -> Response[MaintenanceOut]:
        """Change a request's details (not its status); If-Match refuses a stale write (412)."""
        row = await service.get(db, principal.organization_id, request_id)
        check_version(row, request.headers.get("if-match"))
        row = await service.update(db, row, data)
        return with_etag(request, request_out(row), row.version)

    @delete("/{request_id:uuid}", status_code=HTTP_204_NO_CONTENT, opt=roles(*MANAGERS))
    async def remove(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        request_id: uuid.UUID,
    ) -> None:
        """Erase a request and its comments (owner or manager); staff cancel instead."""
        row = await service.get(db, principal.organization_id, request_id)
        check_version(row, request.headers.get("if-match"))
        await service.delete(db, row)

    @post("/{request_id:uuid}/transition", status_code=200, opt=roles(*STAFF))
    async def transition(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        request_id: uuid.UUID,
        data: TransitionIn,
    ) -> Response[MaintenanceOut]:
        """Move a request to another status; a change the workflow does not allow is a 409."""
        row = await service.get(db, principal.organization_id, request_id, for_update=True)
        check_version(row, request.headers.get("if-match"))
        row = await service.transition(db, row, data.to)
        return with_etag(request, request_out(row), row.version)

    @get("/{request_id:uuid}/comments", opt=roles(*ANYONE, RESIDENT))
    async def list_comments(
        self,
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        request_id: uuid.UUID,
        page: ListParams,
    ) -> Response[ListOf[CommentOut]]:
        """Comments on a request, oldest first (`sort=-createdAt` for newest first)."""
        row = await _get(db, principal, request_id)
        result = await service.list_comments(
            reader, row, limit=page.limit, cursor=page.cursor, sort=page.sort
        )
        names = await service.user_names(db, [c.author_id for c in result.items])
        body = ListOf([comment_out(c, names) for c in result.items], result.next_cursor)
        return Response(body, headers=NO_STORE)

    @post("/{request_id:uuid}/comments", status_code=HTTP_201_CREATED, opt=roles(*STAFF, RESIDENT))
    async def add_comment(
        self,
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        request_id: uuid.UUID,
        data: CommentIn,
    ) -> Response[CommentOut]:
        """Comment on a request as the signed-in user (a resident: on one of their units)."""
        comment, author_name = await service.add_comment(
            db,
            reader,
            principal.organization_id,
            request_id,
            principal.user_id,
            data,
            resident_tenant_id=principal.resident_tenant_id,
        )
        names = {principal.user_id: author_name} if author_name is not None else {}
        return Response(comment_out(comment, names), status_code=HTTP_201_CREATED, headers=NO_STORE)
