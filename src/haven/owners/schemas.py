"""Bodies of /owners, /properties/{id}/ownership and owner statements."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from haven.properties.schemas import ManagementFeeOut
from haven.schemas import Email, LongText, Name, Phone, RequestBody, ResponseBody, ShortText

OwnerKind = Literal["person", "company"]
# An opaque reference to the payee in the payment provider (never an account number).
PayoutReference = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
BasisPoints = Annotated[int, Meta(ge=1, le=10_000)]
PositiveMoney = Annotated[int, Meta(ge=1, le=1_000_000_000_00)]
Address = Annotated[str, Meta(max_length=500, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]


class OwnerIn(RequestBody):
    kind: OwnerKind
    name: Name
    email: Email | None = None
    phone: Phone | None = None
    address: Address | None = None
    payout_reference: PayoutReference | None = None
    notes: LongText | None = None


class OwnerPatch(RequestBody):
    kind: OwnerKind | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    email: Email | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    address: Address | UnsetType | None = UNSET
    payout_reference: PayoutReference | UnsetType | None = UNSET
    notes: LongText | UnsetType | None = UNSET


class OwnerOut(ResponseBody):
    id: uuid.UUID
    kind: str
    name: str
    email: str | None
    phone: str | None
    address: str | None
    payout_reference: str | None
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class ShareIn(RequestBody):
    owner_id: uuid.UUID
    basis_points: BasisPoints


class OwnershipIn(RequestBody):
    effective_from: date
    shares: Annotated[list[ShareIn], Meta(min_length=1, max_length=100)]


class ShareOut(ResponseBody):
    owner_id: uuid.UUID
    owner_name: str
    basis_points: int


class OwnershipSetOut(ResponseBody):
    effective_from: date
    shares: list[ShareOut]


class OwnershipOut(ResponseBody):
    property_id: uuid.UUID
    on: date
    current: OwnershipSetOut | None
    history: list[OwnershipSetOut]


class OwnedPropertyOut(ResponseBody):
    property_id: uuid.UUID
    property_name: str
    basis_points: int
    effective_from: date


class OwnedPropertiesOut(ResponseBody):
    owner_id: uuid.UUID
    on: date
    items: list[OwnedPropertyOut]


class PayoutIn(RequestBody):
    amount: PositiveMoney
    paid_on: date
    reference: ShortText | None = None


class PayoutOut(ResponseBody):
    id: uuid.UUID
    owner_id: uuid.UUID
    amount: int
    paid_on: date
    reference: str | None
    reverses_id: uuid.UUID | None
    created_at: datetime


class PayoutReverseIn(RequestBody):
    paid_on: date | None = None
    reference: ShortText | None = None


class UnitRentOut(ResponseBody):
    unit_id: uuid.UUID
    unit_label: str
    rent_collected: int


class StatementPropertyOut(ResponseBody):
    property_id: uuid.UUID
    property_name: str
    basis_points: int
    management_fee: ManagementFeeOut | None
    rent_collected: int
    units: list[UnitRentOut]
    expenses: int
    fee: int
    net: int


class StatementOut(ResponseBody):
    owner_id: uuid.UUID
    owner_name: str
    month: str
    period_start: date
    period_end: date
    currency: str
    opening_balance: int
    rent_collected: int
    expenses: int
    management_fee: int
    net: int
    payouts: int
    closing_balance: int
    properties: list[StatementPropertyOut]
    generated_at: datetime
