"""Maintenance rules: references stay inside the organization, status follows the state machine."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from msgspec import UNSET
from sqlalchemy import bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.db.pagination import ListQuery, Page, sort_keys
from haven.db.query import get_owned
from haven.db.reader import Reader
from haven.errors import FieldError, InvalidTransitionError, NotFoundError, ValidationError
from haven.leases.service import tenant_units
from haven.maintenance.schemas import CommentIn, MaintenanceIn, MaintenancePatch
from haven.models import (
    Lease,
    MaintenanceComment,
    MaintenanceRequest,
    Membership,
    Property,
    Unit,
    User,
)
from haven.uow import add_new

# Every allowed status change; anything else is a 409 `invalid-transition`.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress", "cancelled"}),
    "in_progress": frozenset({"on_hold", "resolved", "cancelled"}),
    "on_hold": frozenset({"in_progress", "cancelled"}),
    "resolved": frozenset({"closed", "in_progress"}),  # resolved -> in_progress reopens
    "closed": frozenset(),
    "cancelled": frozenset(),
}

SORTS = sort_keys(
    {
        "createdAt": (MaintenanceRequest.created_at, datetime),
        "updatedAt": (MaintenanceRequest.updated_at, datetime),
        "title": (MaintenanceRequest.title, str),
    }
)
COMMENT_SORTS = sort_keys({"createdAt": (MaintenanceComment.created_at, datetime)})


class MaintenanceRow(NamedTuple):
    """A maintenance request as its list shows it (a row of `maintenance_requests`)."""

    id: uuid.UUID
    property_id: uuid.UUID
    unit_id: uuid.UUID | None
    title: str
    description: str | None
    priority: str
    status: str
    assignee_id: uuid.UUID | None
    created_by_id: uuid.UUID | None
    created_by_tenant_id: uuid.UUID | None
    cost_estimate: int | None
    cost_actual: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class CommentRow(NamedTuple):
    """A comment as its list shows it (a row of `maintenance_comments`)."""

    id: uuid.UUID
    request_id: uuid.UUID
    author_id: uuid.UUID | None
    author_tenant_id: uuid.UUID | None
    body: str
    created_at: datetime


LIST = ListQuery(
    MaintenanceRequest,
    MaintenanceRow,
    SORTS,
    default_sort="-createdAt",
    search=(MaintenanceRequest.title, MaintenanceRequest.description),
    filters={
        "status": lambda value: MaintenanceRequest.status == value,
        "priority": lambda value: MaintenanceRequest.priority == value,
        "property_id": lambda value: MaintenanceRequest.property_id == value,
        "unit_id": lambda value: MaintenanceRequest.unit_id == value,
        "assignee_id": lambda value: MaintenanceRequest.assignee_id == value,
        # A resident's requests: those about a unit they have a lease on.
        "resident_tenant_id": lambda value: MaintenanceRequest.unit_id.in_(tenant_units(value)),
    },
)
COMMENTS = ListQuery(
    MaintenanceComment,
    CommentRow,
    COMMENT_SORTS,
    default_sort="createdAt",
    filters={"request_id": lambda value: MaintenanceComment.request_id == value},
)


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(errors=[FieldError(field, message)])


class _References(NamedTuple):
    """Whether each id a request names is the organization's (`REFERENCES`)."""

    property: bool
    unit: bool  # a unit of that property
    assignee: bool  # a member
    resident_unit: bool  # a unit of the resident's leases


# One statement for every reference a request names (a NULL id matches nothing): one
# round trip however many the payload sets.
REFERENCES = select(
    exists()
    .where(
        Property.id == bindparam("property_id"),
        Property.organization_id == bindparam("organization_id"),
    )
    .label("property"),
    exists()
    .where(
        Unit.id == bindparam("unit_id"),
        Unit.organization_id == bindparam("organization_id"),
        Unit.property_id == bindparam("property_id"),
    )
    .label("unit"),
    exists()
    .where(
        Membership.user_id == bindparam("assignee_id"),
        Membership.organization_id == bindparam("organization_id"),
    )
    .label("assignee"),
    tenant_units(bindparam("tenant_id"))
    .where(Lease.unit_id == bindparam("unit_id"))
    .exists()
    .label("resident_unit"),
)


def _check_resident_payload(data: MaintenanceIn) -> None:
    """A resident names the unit of their lease, and sets no assignee or costs (staff do)."""
    if data.unit_id is None:
        raise _invalid("unitId", "is required: the unit of your lease the request is about")
    for name, value in (
        ("assigneeId", data.assignee_id),
        ("costEstimate", data.cost_estimate),
        ("costActual", data.cost_actual),
    ):
        if value is not None:
            raise _invalid(name, "is set by staff, not by residents")


async def _check_references(
    reader: Reader,
    organization_id: uuid.UUID,
    property_id: uuid.UUID,
    unit_id: uuid.UUID | None,
    assignee_id: uuid.UUID | None,
    *,
    resident_tenant_id: uuid.UUID | None = None,
) -> None:
    """422 unless the property, unit and assignee all belong to the caller's organization
    (and the unit is one of the resident's leases, for a resident): one read."""
    params = {
        "organization_id": organization_id,
        "property_id": property_id,
        "unit_id": unit_id,
        "assignee_id": assignee_id,
        "tenant_id": resident_tenant_id,
    }
    (found,) = await reader.rows(REFERENCES, params, _References)  # no FROM: one row
    if resident_tenant_id is not None and not found.resident_unit:
        raise _invalid("unitId", "is not a unit of your leases")
    if not found.property:
        raise _invalid("propertyId", "is not a property of your organization")
    if unit_id is not None and not found.unit:
        raise _invalid("unitId", "is not a unit of that property")
    if assignee_id is not None and not found.assignee:
        raise _invalid("assigneeId", "is not a member of your organization")


async def visible_to_resident(
    session: AsyncSession, row: MaintenanceRequest, tenant_id: uuid.UUID
) -> None:
    """404 unless the request is about a unit the resident has a lease on."""
    if row.unit_id is not None:
        found = await session.execute(tenant_units(tenant_id).where(Lease.unit_id == row.unit_id))
        if found.first() is not None:
            return
    raise NotFoundError(f"No maintenancerequest with id {row.id}")


async def create(
    session: AsyncSession,
    reader: Reader,
    organization_id: uuid.UUID,
    author_id: uuid.UUID,
    data: MaintenanceIn,
    *,
    resident_tenant_id: uuid.UUID | None = None,
) -> MaintenanceRequest:
    """A new request, its references checked through `reader` (no lock: a property or unit
    deleted meanwhile fails the row's foreign key at the commit, a 409), then added with
    `add_new`: written with the commit's statement (haven.uow.recorder)."""
    if resident_tenant_id is not None:
        _check_resident_payload(data)
    await _check_references(
        reader,
        organization_id,
        data.property_id,
        data.unit_id,
        data.assignee_id,
        resident_tenant_id=resident_tenant_id,
    )
    row = MaintenanceRequest(
        organization_id=organization_id,
        property_id=data.property_id,
        unit_id=data.unit_id,
        title=data.title.strip(),
        description=data.description,
        priority=data.priority,
        status="open",
        assignee_id=data.assignee_id,
        created_by_id=author_id,
        created_by_tenant_id=resident_tenant_id,
        cost_estimate=data.cost_estimate,
        cost_actual=data.cost_actual,
    )
    add_new(session, row)
    return row


async def get(
    session: AsyncSession,
    organization_id: uuid.UUID,
    request_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> MaintenanceRequest:
    return await get_owned(
        session, MaintenanceRequest, organization_id, request_id, for_update=for_update
    )


async def update(
    session: AsyncSession, row: MaintenanceRequest, data: MaintenancePatch
) -> MaintenanceRequest:
    if data.status is not UNSET:
        raise _invalid(
            "status", "cannot be set here; POST /maintenance-requests/{id}/transition {to}"
        )
    property_id = row.property_id if data.property_id is UNSET else data.property_id
    unit_id = row.unit_id if data.unit_id is UNSET else data.unit_id
    if (
        data.property_id is not UNSET
        and data.property_id != row.property_id
        and (data.unit_id is UNSET)
    ):
        unit_id = None  # the old unit belongs to the old property
    assignee_id = row.assignee_id if data.assignee_id is UNSET else data.assignee_id
    changed_assignee = assignee_id if assignee_id != row.assignee_id else None
    await _check_references(
        Reader.inside(session), row.organization_id, property_id, unit_id, changed_assignee
    )
    row.property_id = property_id
    row.unit_id = unit_id
    row.assignee_id = assignee_id
    if data.title is not UNSET:
        row.title = data.title.strip()
    if data.description is not UNSET:
        row.description = data.description
    if data.priority is not UNSET:
        row.priority = data.priority
    if data.cost_estimate is not UNSET:
        row.cost_estimate = data.cost_estimate
    if data.cost_actual is not UNSET:
        row.cost_actual = data.cost_actual
    await session.flush()
    return row


async def delete(session: AsyncSession, row: MaintenanceRequest) -> None:
    await session.delete(row)  # comments go with it (ON DELETE CASCADE)
    await session.flush()


async def transition(session: AsyncSession, row: MaintenanceRequest, to: str) -> MaintenanceRequest:
    allowed = TRANSITIONS.get(row.status, frozenset())
    if to not in allowed:
        choices = ", ".join(sorted(allowed)) or "none, it is final"
        raise InvalidTransitionError(
            f"The request is {row.status} and cannot move to {to} (allowed: {choices})"
        )
    row.status = to
    await session.flush()
    return row


async def list_requests(
    reader: Reader,
    organization_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    sort: str | None,
    search: str | None,
    status: str | None = None,
    priority: str | None = None,
    property_id: uuid.UUID | None = None,
    unit_id: uuid.UUID | None = None,
    assignee_id: uuid.UUID | None = None,
    resident_tenant_id: uuid.UUID | None = None,
) -> Page[MaintenanceRow]:
    return await LIST.page(
        reader,
        organization_id,
        limit=limit,
        cursor=cursor,
        sort=sort,
        search=search,
        status=status or None,
        priority=priority or None,
        property_id=property_id,
        unit_id=unit_id,
        assignee_id=assignee_id,
        resident_tenant_id=resident_tenant_id,
    )


class _CommentTarget(NamedTuple):
    """The request a comment is added to, as `COMMENT_TARGET` reads it."""

    id: uuid.UUID
    author_name: str | None  # the commenting user's, for the answer
    resident_sees: bool  # about a unit of the resident's leases


COMMENT_TARGET = select(
    MaintenanceRequest.id,
    select(User.name).where(User.id == bindparam("author_id")).scalar_subquery(),
    tenant_units(bindparam("tenant_id"))
    .where(Lease.unit_id == MaintenanceRequest.unit_id)
    .exists(),
).where(
    MaintenanceRequest.id == bindparam("request_id"),
    MaintenanceRequest.organization_id == bindparam("organization_id"),
)


async def add_comment(
    session: AsyncSession,
    reader: Reader,
    organization_id: uuid.UUID,
    request_id: uuid.UUID,
    author_id: uuid.UUID,
    data: CommentIn,
    *,
    resident_tenant_id: uuid.UUID | None = None,
) -> tuple[MaintenanceComment, str | None]:
    """A comment on the organization's request (a resident's: on one of their units), and
    its author's name. The request and the name are one read through `reader` (no lock: a
    request deleted meanwhile fails the comment's foreign key at the commit, a 409); the
    comment is added with `add_new`, written with the commit's statement."""
    params = {
        "organization_id": organization_id,
        "request_id": request_id,
        "author_id": author_id,
        "tenant_id": resident_tenant_id,
    }
    target = await reader.first(COMMENT_TARGET, params, _CommentTarget)
    if target is None or (resident_tenant_id is not None and not target.resident_sees):
        raise NotFoundError(f"No maintenancerequest with id {request_id}")
    comment = MaintenanceComment(
        organization_id=organization_id,
        request_id=target.id,
        author_id=author_id,
        author_tenant_id=resident_tenant_id,
        body=data.body,
    )
    add_new(session, comment)
    return comment, target.author_name


async def list_comments(
    reader: Reader,
    row: MaintenanceRequest,
    *,
    limit: int,
    cursor: str | None,
    sort: str | None,
) -> Page[CommentRow]:
    return await COMMENTS.page(
        reader, row.organization_id, limit=limit, cursor=cursor, sort=sort, request_id=row.id
    )


async def user_names(
    session: AsyncSession, user_ids: Sequence[uuid.UUID | None]
) -> dict[uuid.UUID, str]:
    """Display names of the given users, in one query."""
    ids = {u for u in user_ids if u is not None}
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.name).where(User.id.in_(ids)))
    return {row[0]: row[1] for row in rows}
