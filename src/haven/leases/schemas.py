"""Bodies of /leases."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from haven.schemas import Money, RequestBody, ResponseBody

LeaseStatus = Literal["draft", "active", "ended", "terminated"]
LateFeeKind = Literal["flat", "percent"]
DueDay = Annotated[int, Meta(ge=1, le=28)]
GraceDays = Annotated[int, Meta(ge=0, le=60)]
MAX_TENANTS = 10  # on one lease
TenantIds = Annotated[list[uuid.UUID], Meta(min_length=1, max_length=MAX_TENANTS)]
RecurringKind = Literal["parking", "pet", "utility", "storage", "other"]
PositiveMoney = Annotated[int, Meta(ge=1, le=1_000_000_000_00)]
Label = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


class LateFee(RequestBody):
    """`flat`: an amount in minor units; `percent`: basis points of the rent (500 = 5 %)."""

    kind: LateFeeKind
    amount: Money


class Escalation(RequestBody):
    """The rent rises by `percentBasisPoints` (300 = 3 %) every `everyMonths` from the start."""

    percent_basis_points: Annotated[int, Meta(ge=1, le=10_000)]
    every_months: Annotated[int, Meta(ge=1, le=120)] = 12


class LeaseIn(RequestBody):
    unit_id: uuid.UUID
    tenant_ids: TenantIds
    start_date: date
    rent: Money
    end_date: date | None = None
    deposit: Money = 0
    due_day: DueDay = 1
    grace_days: GraceDays = 0
    late_fee: LateFee | None = None
    charge_deposit: bool = False
    escalation: Escalation | None = None


class LeasePatch(RequestBody):
    """Drafts can change everything; an active lease its end date, grace days and late fee."""

    tenant_ids: TenantIds | UnsetType = UNSET
    start_date: date | UnsetType = UNSET
    end_date: date | UnsetType | None = UNSET
    rent: Money | UnsetType = UNSET
    deposit: Money | UnsetType = UNSET
    due_day: DueDay | UnsetType = UNSET
    grace_days: GraceDays | UnsetType = UNSET
    late_fee: LateFee | UnsetType | None = UNSET
    charge_deposit: bool | UnsetType = UNSET
    escalation: Escalation | UnsetType | None = UNSET


class TerminateIn(RequestBody):
    date: date


class RentChangeIn(RequestBody):
    effective_date: date
    rent: Money


class RentChangeOut(ResponseBody):
    id: uuid.UUID
    lease_id: uuid.UUID
    effective_date: date
    rent: int
    source: str  # manual, or escalation (generated from the lease's escalation)
    created_at: datetime


class RecurringChargeIn(RequestBody):
    kind: RecurringKind
    amount: PositiveMoney
    start_date: date
    end_date: date | None = None
    description: Label | None = None


class RecurringChargePatch(RequestBody):
    """Stop (or resume) a recurring charge: its last day, within the lease; null = open."""

    end_date: date | None


class RecurringChargeOut(ResponseBody):
    id: uuid.UUID
    lease_id: uuid.UUID
    kind: str
    description: str
    amount: int
    start_date: date
    end_date: date | None
    version: int
    created_at: datetime


class RenewIn(RequestBody):
    """The successor lease: it starts the day after this one ends (the default start)."""

    rent: Money
    start_date: date | None = None
    end_date: date | None = None


class EscalationOut(ResponseBody):
    percent_basis_points: int
    every_months: int


class LateFeeOut(ResponseBody):
    kind: str
    amount: int


class LeaseOut(ResponseBody):
    id: uuid.UUID
    unit_id: uuid.UUID
    property_id: uuid.UUID
    tenant_ids: list[uuid.UUID]
    start_date: date
    end_date: date | None
    rent: int
    deposit: int
    due_day: int
    grace_days: int
    late_fee: LateFeeOut | None
    status: str
    activated_at: datetime | None
    terminated_on: date | None
    charge_deposit: bool
    escalation: EscalationOut | None
    renews: uuid.UUID | None  # the lease this one renews
    version: int
    created_at: datetime
    updated_at: datetime
