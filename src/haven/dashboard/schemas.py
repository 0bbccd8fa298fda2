"""Body of /dashboard."""

from __future__ import annotations

from datetime import datetime

from haven.schemas import ResponseBody


class ExpiringOut(ResponseBody):
    in30: int
    in60: int
    in90: int


class MaintenanceOut(ResponseBody):
    low: int
    normal: int
    high: int
    emergency: int


class DashboardOut(ResponseBody):
    properties: int
    units: int
    occupied_units: int
    occupancy_rate: float
    monthly_rent_roll: int
    collected_this_month: int
    outstanding_balance: int
    deposits_held: int  # deposits paid and held for tenants: a liability, not income
    overdue_leases: int
    leases_expiring: ExpiringOut
    open_maintenance: MaintenanceOut
    currency: str
    generated_at: datetime
