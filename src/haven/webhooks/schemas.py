"""Bodies of /webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from msgspec import Meta

from haven.schemas import RequestBody, ResponseBody, ShortText

Url = Annotated[str, Meta(min_length=1, max_length=2048)]
EventType = Annotated[str, Meta(min_length=3, max_length=64, pattern=r"^[a-z_]+\.[a-z_]+$")]
Types = Annotated[list[EventType], Meta(max_length=64)]
Overlap = Annotated[int, Meta(ge=0, le=30 * 86400)]


class WebhookIn(RequestBody):
    url: Url
    types: Types = []
    description: ShortText | None = None


class WebhookPatch(RequestBody):
    url: Url | None = None
    types: Types | None = None
    description: ShortText | None = None
    paused: bool | None = None


class RotateIn(RequestBody):
    """How long the previous secret keeps signing too (default WEBHOOK_ROTATION_OVERLAP)."""

    overlap_seconds: Overlap | None = None


class RedeliverIn(RequestBody):
    event_id: uuid.UUID


class WebhookOut(ResponseBody):
    id: uuid.UUID
    url: str
    types: list[str]
    description: str | None
    status: str
    delivered_position: int
    attempts: int
    next_attempt_at: datetime | None
    failing_since: datetime | None
    last_error: str | None
    previous_secret_expires_at: datetime | None
    rotated_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    """Returned once, at creation: `secret` is never shown again (rotate to get a new one)."""

    secret: str


class RotatedSecret(ResponseBody):
    secret: str
    previous_secret_expires_at: datetime | None


class DeliveryOut(ResponseBody):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    event_position: int
    status: str
    attempt: int
    redelivery: bool
    response_status: int | None
    error: str | None
    duration_ms: int | None
    instance_id: str | None
    at: datetime
