"""Work-order rules: spawned from a maintenance request, assigned only to an insured vendor,
status through a small state machine (requested -> scheduled -> done -> invoiced, or cancelled).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import NamedTuple

from msgspec import UNSET, UnsetType
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.clock import today_in_zone
from haven.db.pagination import ListQuery, Page, sort_keys
from haven.db.query import get_owned
from haven.db.reader import Reader
from haven.errors import (
    ConflictError,
    FieldError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from haven.models import Bill, MaintenanceRequest, Organization, Vendor, WorkOrder
from haven.uow import add_new
from haven.vendors.service import check_insured
from haven.work_orders.schemas import WorkOrderIn, WorkOrderPatch, WorkOrderTransitionIn

# Every allowed status change; anything else is a 409 `invalid-transition`.
TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"scheduled", "cancelled"}),
    "scheduled": frozenset({"done", "cancelled"}),
    "done": frozenset({"invoiced"}),
    "invoiced": frozenset(),
    "cancelled": frozenset(),
}
# A vendor may be changed only before the work is done.
OPEN_STATUSES = frozenset({"requested", "scheduled"})
# A maintenance request in these statuses spawns no more work.
FINAL_REQUEST_STATUSES = frozenset({"closed", "cancelled"})


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(errors=[FieldError(field, message)])


async def assignable_vendor(
    session: AsyncSession, organization_id: uuid.UUID, vendor_id: uuid.UUID, today: date
) -> Vendor:
    """The vendor, if it belongs to the organization (else 422) and is insured today (else 409)."""
    vendor = (
        await session.execute(
            select(Vendor).where(Vendor.id == vendor_id, Vendor.organization_id == organization_id)
        )
    ).scalar_one_or_none()
    if vendor is None:
        raise _invalid("vendorId", "is not a vendor of your organization")
    check_insured(vendor, today)
    return vendor


def _check_schedule(start: datetime | None, end: datetime | None) -> None:
    if end is not None and start is None:
        raise _invalid("scheduledEnd", "needs a scheduledStart")
    if start is not None and end is not None and end < start:
        raise _invalid("scheduledEnd", "is before scheduledStart")


class _Spawn(NamedTuple):
    """What a new work order checks, as `SPAWN` reads it (None: no such request, vendor)."""

    timezone: str  # the organization's: its today for the vendor's insurance
    request_id: uuid.UUID | None
    request_status: str | None
    property_id: uuid.UUID | None
    unit_id: uuid.UUID | None
    vendor_id: uuid.UUID | None
    vendor_name: str | None
    insurance_expires_on: date | None


class _Insurance(NamedTuple):
    """A vendor as `check_insured` reads it."""

    name: str
    insurance_expires_on: date | None


# The organization, its request and (when one is named) its vendor: one row while the
# organization exists, a NULL id matching nothing.
SPAWN = (
    select(
        Organization.timezone,
        MaintenanceRequest.id,
        MaintenanceRequest.status,
        MaintenanceRequest.property_id,
        MaintenanceRequest.unit_id,
        Vendor.id,
        Vendor.name,
        Vendor.insurance_expires_on,
    )
    .select_from(Organization)
    .outerjoin(
        MaintenanceRequest,
        (MaintenanceRequest.id == bindparam("request_id"))
        & (MaintenanceRequest.organization_id == Organization.id),
    )
    .outerjoin(
        Vendor,
        (Vendor.id == bindparam("vendor_id")) & (Vendor.organization_id == Organization.id),
    )
    .where(Organization.id == bindparam("organization_id"))
)


async def create(
    session: AsyncSession,
    reader: Reader,
    organization_id: uuid.UUID,
    request_id: uuid.UUID,
    data: WorkOrderIn,
) -> WorkOrder:
    """A work order spawned from the organization's request (404 for another's), its vendor
    insured today where the organization is. The organization, the request and the vendor
    are one read through `reader` (no lock: a request or vendor deleted meanwhile fails the
    order's foreign key at the commit, a 409); the order is added with `add_new`, written
    with the commit's statement (haven.uow.recorder)."""
    params = {
        "organization_id": organization_id,
        "request_id": request_id,
        "vendor_id": data.vendor_id,
    }
    found = await reader.first(SPAWN, params, _Spawn)
    if found is None:
        raise NotFoundError("No such organization")
    today = today_in_zone(found.timezone)
    if found.request_id is None or found.property_id is None:
        raise NotFoundError(f"No maintenancerequest with id {request_id}")
    if found.request_status in FINAL_REQUEST_STATUSES:
        raise ConflictError(
            f"The maintenance request is {found.request_status}; it spawns no more work"
        )
    _check_schedule(data.scheduled_start, data.scheduled_end)
    if data.vendor_id is not None:
        if found.vendor_id is None or found.vendor_name is None:
            raise _invalid("vendorId", "is not a vendor of your organization")
        check_insured(_Insurance(found.vendor_name, found.insurance_expires_on), today)
    order = WorkOrder(
        organization_id=organization_id,
        request_id=found.request_id,
        property_id=found.property_id,
        unit_id=found.unit_id,
        vendor_id=data.vendor_id,
        title=data.title.strip(),
        description=data.description,
        status="requested",
        estimate=data.estimate,
        scheduled_start=data.scheduled_start,
        scheduled_end=data.scheduled_end,
    )
    add_new(session, order)
    return order


async def get(
    session: AsyncSession,
    organization_id: uuid.UUID,
    order_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> WorkOrder:
    return await get_owned(session, WorkOrder, organization_id, order_id, for_update=for_update)


async def update(
    session: AsyncSession, order: WorkOrder, data: WorkOrderPatch, today: date
) -> WorkOrder:
    if data.status is not UNSET:
        raise _invalid("status", "cannot be set here; POST /work-orders/{id}/transition {to}")
    vendor_id = order.vendor_id if isinstance(data.vendor_id, UnsetType) else data.vendor_id
    start = (
        order.scheduled_start
        if isinstance(data.scheduled_start, UnsetType)
        else data.scheduled_start
    )
    end = order.scheduled_end if isinstance(data.scheduled_end, UnsetType) else data.scheduled_end
    if data.scheduled_start is None and data.scheduled_end is UNSET:
        end = None  # clearing the start clears the end with it
    _check_schedule(start, end)
    if vendor_id != order.vendor_id:
        if order.status not in OPEN_STATUSES:
            raise ConflictError(f"The work order is {order.status}; its vendor cannot change")
        if vendor_id is None and order.status == "scheduled":
            raise ConflictError("A scheduled work order needs a vendor; cancel it instead")
        if vendor_id is not None:
            await assignable_vendor(session, order.organization_id, vendor_id, today)
    if order.status == "scheduled" and start is None:
        raise ConflictError("A scheduled work order needs a scheduledStart")
    order.vendor_id = vendor_id
    order.scheduled_start = start
    order.scheduled_end = end
    if data.title is not UNSET:
        order.title = data.title.strip()
    if data.description is not UNSET:
        order.description = data.description
    if data.estimate is not UNSET:
        order.estimate = data.estimate
    await session.flush()
    return order


async def has_live_bill(session: AsyncSession, order_id: uuid.UUID) -> bool:
    """Whether a bill that is not void names this work order."""
    found = await session.execute(
        select(Bill.id).where(Bill.work_order_id == order_id, Bill.status != "void").limit(1)
    )
    return found.first() is not None


async def transition(
    session: AsyncSession, order: WorkOrder, data: WorkOrderTransitionIn, today: date
) -> WorkOrder:
    to = data.to
    allowed = TRANSITIONS.get(order.status, frozenset())
    if to not in allowed:
        choices = ", ".join(sorted(allowed)) or "none, it is final"
        raise InvalidTransitionError(
            f"The work order is {order.status} and cannot move to {to} (allowed: {choices})"
        )
    given = [
        name
        for attr, name in (
            ("vendor_id", "vendorId"),
            ("scheduled_start", "scheduledStart"),
            ("scheduled_end", "scheduledEnd"),
        )
        if getattr(data, attr) is not UNSET
    ]
    if given and to != "scheduled":
        raise _invalid(given[0], "is accepted only when moving to scheduled")
    if to == "scheduled":
        vendor_id = order.vendor_id if isinstance(data.vendor_id, UnsetType) else data.vendor_id
        start = (
            order.scheduled_start
            if isinstance(data.scheduled_start, UnsetType)
            else data.scheduled_start
        )
        end = (
            order.scheduled_end if isinstance(data.scheduled_end, UnsetType) else data.scheduled_end
        )
        if vendor_id is None:
            raise ConflictError("Scheduling needs a vendor: send vendorId")
        if start is None:
            raise ConflictError("Scheduling needs a schedule: send scheduledStart")
        _check_schedule(start, end)
        await assignable_vendor(session, order.organization_id, vendor_id, today)
        order.vendor_id = vendor_id
        order.scheduled_start = start
        order.scheduled_end = end
    elif to == "done":
        order.completed_at = datetime.now(UTC)
    elif to == "invoiced" and not await has_live_bill(session, order.id):
        raise ConflictError("A work order is invoiced by a bill: record a bill that names it")
    order.status = to
    await session.flush()
    return order


class WorkOrderRow(NamedTuple):
    """A work order as its list shows it (a row of `work_orders`)."""

    id: uuid.UUID
    request_id: uuid.UUID
    property_id: uuid.UUID
    unit_id: uuid.UUID | None
    vendor_id: uuid.UUID | None
    title: str
    description: str | None
    status: str
    estimate: int | None
    scheduled_start: datetime | None
    scheduled_end: datetime | None
    completed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


LIST = ListQuery(
    WorkOrder,
    WorkOrderRow,
    sort_keys(
        {
            "createdAt": (WorkOrder.created_at, datetime),
            "updatedAt": (WorkOrder.updated_at, datetime),
            "title": (WorkOrder.title, str),
        }
    ),
    default_sort="-createdAt",
    search=(WorkOrder.title, WorkOrder.description),
    filters={
        "status": lambda value: WorkOrder.status == value,
        "vendor_id": lambda value: WorkOrder.vendor_id == value,
        "property_id": lambda value: WorkOrder.property_id == value,
        "request_id": lambda value: WorkOrder.request_id == value,
    },
)


async def list_work_orders(
    reader: Reader,
    organization_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    sort: str | None,
    search: str | None,
    status: str | None = None,
    vendor_id: uuid.UUID | None = None,
    property_id: uuid.UUID | None = None,
    request_id: uuid.UUID | None = None,
) -> Page[WorkOrderRow]:
    return await LIST.page(
        reader,
        organization_id,
        limit=limit,
        cursor=cursor,
        sort=sort,
        search=search,
        status=status or None,
        vendor_id=vendor_id,
        property_id=property_id,
        request_id=request_id,
    )
