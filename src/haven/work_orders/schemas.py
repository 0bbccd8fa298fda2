"""Bodies of /work-orders and POST /maintenance-requests/{id}/work-orders."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from haven.schemas import Money, Name, RequestBody, ResponseBody

Status = Literal["requested", "scheduled", "done", "invoiced", "cancelled"]
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Description = Annotated[str, Meta(max_length=5_000, pattern=_TEXT)]
# A moment with its UTC offset (a time without one would mean nothing across time zones).
Moment = Annotated[datetime, Meta(tz=True)]


class WorkOrderIn(RequestBody):
    title: Name
    description: Description | None = None
    estimate: Money | None = None
    vendor_id: uuid.UUID | None = None
    scheduled_start: Moment | None = None
    scheduled_end: Moment | None = None


class WorkOrderPatch(RequestBody):
    title: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    estimate: Money | UnsetType | None = UNSET
    vendor_id: uuid.UUID | UnsetType | None = UNSET
    scheduled_start: Moment | UnsetType | None = UNSET
    scheduled_end: Moment | UnsetType | None = UNSET
    # Accepted only to explain that status moves through /transition (a 422 that says so).
    status: Status | UnsetType = UNSET


class WorkOrderTransitionIn(RequestBody):
    to: Status
    # Optional when scheduling: set (or replace) the vendor and the schedule in the same step.
    vendor_id: uuid.UUID | UnsetType = UNSET
    scheduled_start: Moment | UnsetType = UNSET
    scheduled_end: Moment | UnsetType | None = UNSET


class WorkOrderOut(ResponseBody):
    id: uuid.UUID
    request_id: uuid.UUID
    property_id: uuid.UUID
    unit_id: uuid.UUID | None
    vendor_id: uuid.UUID | None
    title: str
    description: str | None
    status: str
    estimate: int | None
    scheduled_start: Moment | None
    scheduled_end: Moment | None
    completed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
