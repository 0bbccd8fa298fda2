"""Bodies of /tenants."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from msgspec import UNSET, Meta, UnsetType

from haven.schemas import Email, LongText, Phone, RequestBody, ResponseBody

PersonName = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")]


class TenantIn(RequestBody):
    first_name: PersonName
    last_name: PersonName
    email: Email | None = None
    phone: Phone | None = None
    notes: LongText | None = None


class TenantPatch(RequestBody):
    first_name: PersonName | UnsetType = UNSET
    last_name: PersonName | UnsetType = UNSET
    email: Email | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    notes: LongText | UnsetType | None = UNSET


class TenantOut(ResponseBody):
    id: uuid.UUID
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime
