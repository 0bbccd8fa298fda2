"""Bodies of /reports."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import msgspec

from haven.ledger.schemas import AgingOut
from haven.schemas import ResponseBody


class RentRollRow(ResponseBody):
    property_id: uuid.UUID
    property_name: str
    unit_id: uuid.UUID
    unit_label: str
    unit_status: str
    market_rent: int
    lease_id: uuid.UUID | None
    tenants: str
    rent: int
    deposit: int
    start_date: date | None
    end_date: date | None
    balance: int


class RentRollTotals(ResponseBody):
    units: int
    occupied_units: int
    market_rent: int
    rent: int
    balance: int


class RentRollOut(ResponseBody):
    currency: str
    generated_at: datetime
    items: list[RentRollRow]
    totals: RentRollTotals


class AgingRow(ResponseBody):
    lease_id: uuid.UUID
    status: str
    property_name: str
    unit_label: str
    tenants: str
    balance: int
    aging: AgingOut


class AgingTotals(ResponseBody):
    leases: int
    balance: int
    aging: AgingOut


class AgingReportOut(ResponseBody):
    currency: str
    as_of: date
    generated_at: datetime
    items: list[AgingRow]
    totals: AgingTotals


class TradeAmount(ResponseBody):
    trade: str
    amount: int


class PropertyPl(ResponseBody):
    property_id: uuid.UUID
    property_name: str
    # Tenant payments received in the period, net of payment reversals (cash basis).
    income: int
    # Bill payments made in the period, net of their reversals.
    expenses: int
    expenses_by_trade: list[TradeAmount]
    net: int


class PropertyPlTotals(ResponseBody):
    income: int
    expenses: int
    expenses_by_trade: list[TradeAmount]
    net: int


class PropertyPlOut(ResponseBody):
    currency: str
    start: date = msgspec.field(name="from")
    end: date = msgspec.field(name="to")
    basis: str
    generated_at: datetime
    items: list[PropertyPl]
    totals: PropertyPlTotals
