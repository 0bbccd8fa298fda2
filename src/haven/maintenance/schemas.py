"""Bodies of /maintenance-requests."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from haven.schemas import Money, Name, RequestBody, ResponseBody

Priority = Literal["low", "normal", "high", "emergency"]
Status = Literal["open", "in_progress", "on_hold", "resolved", "closed", "cancelled"]
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # tabs and newlines allowed
Description = Annotated[str, Meta(max_length=5_000, pattern=_TEXT)]
CommentText = Annotated[str, Meta(min_length=1, max_length=5_000, pattern=_TEXT)]


class MaintenanceIn(RequestBody):
    property_id: uuid.UUID
    title: Name
    unit_id: uuid.UUID | None = None
    description: Description | None = None
    priority: Priority = "normal"
    assignee_id: uuid.UUID | None = None
    cost_estimate: Money | None = None
    cost_actual: Money | None = None


class MaintenancePatch(RequestBody):
    property_id: uuid.UUID | UnsetType = UNSET
    unit_id: uuid.UUID | UnsetType | None = UNSET
    title: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    priority: Priority | UnsetType = UNSET
    assignee_id: uuid.UUID | UnsetType | None = UNSET
    cost_estimate: Money | UnsetType | None = UNSET
    cost_actual: Money | UnsetType | None = UNSET
    # Accepted only to explain that status moves through /transition (a 422 that says so).
    status: Status | UnsetType = UNSET


class TransitionIn(RequestBody):
    to: Status


class MaintenanceOut(ResponseBody):
    id: uuid.UUID
    property_id: uuid.UUID
    unit_id: uuid.UUID | None
    title: str
    description: str | None
    priority: str
    status: str
    assignee_id: uuid.UUID | None
    created_by_id: uuid.UUID | None
    # Set when a resident opened it: the tenant they sign in for.
    created_by_tenant_id: uuid.UUID | None
    created_by_resident: bool
    cost_estimate: int | None
    cost_actual: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class CommentIn(RequestBody):
    body: CommentText


class CommentOut(ResponseBody):
    id: uuid.UUID
    request_id: uuid.UUID
    author_id: uuid.UUID | None
    author_name: str | None
    # Set when a resident wrote it: the tenant they sign in for.
    author_tenant_id: uuid.UUID | None
    by_resident: bool
    body: str
    created_at: datetime
