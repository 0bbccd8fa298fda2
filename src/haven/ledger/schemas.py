"""Bodies of the ledger endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from msgspec import Meta

from haven.schemas import RequestBody, ResponseBody

ChargeKind = Literal["rent", "deposit", "late_fee", "utility", "other"]
PaymentMethod = Literal["cash", "check", "bank_transfer", "card", "other"]
# A posted amount is positive; its sign on the ledger follows from the entry type.
PositiveMoney = Annotated[int, Meta(ge=1, le=1_000_000_000_00)]
Description = Annotated[str, Meta(max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")]
Reference = Annotated[str, Meta(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


class ChargeIn(RequestBody):
    kind: ChargeKind
    amount: PositiveMoney
    due_date: date
    description: Description | None = None


class CreditIn(RequestBody):
    amount: PositiveMoney
    description: Description | None = None
    date: date | None = None


class PaymentIn(RequestBody):
    amount: PositiveMoney
    received_on: date
    method: PaymentMethod
    reference: Reference | None = None


class ReverseIn(RequestBody):
    description: Description | None = None


class DeductionIn(RequestBody):
    reason: Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
    amount: PositiveMoney


class DispositionIn(RequestBody):
    """Deductions applied from the deposit to what is owed; the rest is refunded."""

    refund_method: PaymentMethod
    deductions: Annotated[list[DeductionIn], Meta(max_length=50)] = []
    # Default: everything held less the deductions. Less keeps the rest held.
    refund_amount: Annotated[int, Meta(ge=0, le=1_000_000_000_00)] | None = None
    date: date | None = None


class StatementLineOut(ResponseBody):
    date: date
    item: str  # deposit_charged, deposit_paid, deduction, refund
    description: str
    amount: int
    entry_id: uuid.UUID | None


class DepositStatementOut(ResponseBody):
    lease_id: uuid.UUID
    currency: str
    deposit_charged: int
    deposit_paid: int
    deductions: int
    refunded: int
    deposit_held: int
    balance: int  # what the tenants still owe after the deductions (negative: in credit)
    lines: list[StatementLineOut]


class AgingOut(ResponseBody):
    current: int
    days1to30: int
    days31to60: int
    days61to90: int
    over90: int


class EntryOut(ResponseBody):
    id: uuid.UUID
    type: str
    kind: str | None
    amount: int
    date: date
    description: str | None
    reference: str | None  # a payment's reference (check number, bank transfer id)
    reverses: uuid.UUID | None
    balance_after: int
    created_at: datetime


class LedgerOut(ResponseBody):
    lease_id: uuid.UUID
    currency: str
    balance: int
    # Deposit paid and held for the tenants: a liability, not part of `balance`.
    deposit_held: int
    aging: AgingOut
    entries: list[EntryOut]
