"""Bodies of /bills and their payments."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from haven.schemas import RequestBody, ResponseBody, ShortText

Status = Literal["open", "paid", "void"]
Method = Literal["check", "bank_transfer", "card", "cash", "other"]
# Money that must move something: a whole number of minor units, at least 1.
Amount = Annotated[int, Meta(ge=1, le=1_000_000_000_00)]
BillText = Annotated[str, Meta(max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")]


class BillIn(RequestBody):
    vendor_id: uuid.UUID
    property_id: uuid.UUID
    amount: Amount
    issued_on: date
    due_on: date
    work_order_id: uuid.UUID | None = None
    description: BillText | None = None
    reference: ShortText | None = None


class BillPatch(RequestBody):
    amount: Amount | UnsetType = UNSET
    issued_on: date | UnsetType = UNSET
    due_on: date | UnsetType = UNSET
    description: BillText | UnsetType | None = UNSET
    reference: ShortText | UnsetType | None = UNSET


class BillOut(ResponseBody):
    id: uuid.UUID
    vendor_id: uuid.UUID
    property_id: uuid.UUID
    work_order_id: uuid.UUID | None
    amount: int
    amount_paid: int
    # amount - amountPaid: what is still owed to the vendor (0 once paid, or void).
    balance: int
    issued_on: date
    due_on: date
    description: str | None
    reference: str | None
    status: str
    version: int
    created_at: datetime
    updated_at: datetime


class BillPaymentIn(RequestBody):
    amount: Amount
    # Defaults to today where the organization is; never in the future.
    paid_on: date | None = None
    method: Method | None = None
    reference: ShortText | None = None


class BillPaymentOut(ResponseBody):
    id: uuid.UUID
    bill_id: uuid.UUID
    property_id: uuid.UUID
    # Positive for a payment, negative for a reversal (which names the payment in `reverses`).
    amount: int
    paid_on: date
    method: str | None
    reference: str | None
    reverses: uuid.UUID | None
    created_by_id: uuid.UUID | None
    created_at: datetime


class BillPaymentResult(ResponseBody):
    """A new payment (or reversal), and the bill as it now stands."""

    payment: BillPaymentOut
    bill: BillOut
