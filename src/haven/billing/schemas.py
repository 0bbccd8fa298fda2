"""Bodies of /billing/run."""

from __future__ import annotations

import uuid
from datetime import date

from haven.schemas import RequestBody, ResponseBody


class BillingRunIn(RequestBody):
    date: date | None = None
    dry_run: bool = False


class PlannedChargeOut(ResponseBody):
    lease_id: uuid.UUID
    kind: str
    amount: int
    due_date: date
    description: str
    posted: bool


class BillingRunOut(ResponseBody):
    date: date
    period: str
    dry_run: bool
    charges: list[PlannedChargeOut]
    posted: int
    already_posted: int
