"""Bodies of /billing/run."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

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
    # posted: by this run; would_post: a dry run would post it; already_posted: on the ledger.
    status: Literal["posted", "would_post", "already_posted"]
    entry_id: uuid.UUID | None  # the ledger entry, once posted
    entry_type: str  # charge, or credit for an adjustment that lowers what is owed
    posted: bool  # status == "posted" (kept for older clients)


class BillingRunOut(ResponseBody):
    date: date
    period: str
    dry_run: bool
    charges: list[PlannedChargeOut]
    posted: int
    already_posted: int
