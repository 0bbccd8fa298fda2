"""Bodies of /vendors."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from msgspec import UNSET, UnsetType

from haven.schemas import Email, LongText, Name, Phone, RequestBody, ResponseBody, ShortText

Trade = Literal[
    "general",
    "plumbing",
    "electrical",
    "hvac",
    "appliance",
    "roofing",
    "landscaping",
    "cleaning",
    "pest_control",
    "painting",
    "locksmith",
    "other",
]


class VendorIn(RequestBody):
    name: Name
    trade: Trade
    contact_name: ShortText | None = None
    email: Email | None = None
    phone: Phone | None = None
    insurance_expires_on: date | None = None
    payout_reference: ShortText | None = None
    notes: LongText | None = None


class VendorPatch(RequestBody):
    name: Name | UnsetType = UNSET
    trade: Trade | UnsetType = UNSET
    contact_name: ShortText | UnsetType | None = UNSET
    email: Email | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    insurance_expires_on: date | UnsetType | None = UNSET
    payout_reference: ShortText | UnsetType | None = UNSET
    notes: LongText | UnsetType | None = UNSET


class VendorOut(ResponseBody):
    id: uuid.UUID
    name: str
    trade: str
    contact_name: str | None
    email: str | None
    phone: str | None
    insurance_expires_on: date | None
    # True when insurance is recorded and has not expired today (the organization's date).
    insured: bool
    payout_reference: str | None
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime
