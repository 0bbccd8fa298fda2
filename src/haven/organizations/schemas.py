"""Bodies of /organization and /members."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from haven.schemas import Currency, Email, Name, Password, RequestBody, ResponseBody

RoleName = Literal["owner", "manager", "staff", "viewer"]
Timezone = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$")]


class OrganizationPatch(RequestBody):
    name: Name | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    timezone: Timezone | UnsetType = UNSET


class MemberIn(RequestBody):
    email: Email
    name: Name
    role: RoleName
    password: Password


class MemberPatch(RequestBody):
    name: Name | UnsetType = UNSET
    role: RoleName | UnsetType = UNSET
    password: Password | UnsetType = UNSET


class PasswordResetIn(RequestBody):
    new_password: Password


class MemberOut(ResponseBody):
    id: uuid.UUID
    email: str
    name: str
    role: str
    version: int
    created_at: datetime
