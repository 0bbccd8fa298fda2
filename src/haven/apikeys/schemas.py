"""Bodies of /api-keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta

from haven.schemas import RequestBody, ResponseBody

RoleName = Literal["owner", "manager", "staff", "viewer"]
# At least one visible character; no control characters.
KeyName = Annotated[
    str, Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f]")
]
Instant = Annotated[datetime, Meta(tz=True)]


class ApiKeyIn(RequestBody):
    name: KeyName
    role: RoleName
    expires_at: Instant | None = None  # null or absent: valid until revoked


class ApiKeyOut(ResponseBody):
    id: uuid.UUID
    name: str
    role: str
    prefix: str  # the key's first characters, e.g. hvn_live_3kTq9ZbX (the rest is never shown)
    created_by: uuid.UUID
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None  # within a minute
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str  # the whole key: shown in this response only, never again
