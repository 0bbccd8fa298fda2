"""/api/v1/billing/run."""

from __future__ import annotations

from litestar import Controller, Response, post
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import MANAGERS, Principal, roles
from haven.billing import service
from haven.billing.schemas import BillingRunIn, BillingRunOut, PlannedChargeOut
from haven.errors import BillingInProgressError
from haven.organizations.service import get_organization
from haven.services import Services
from haven.store import locks
from haven.uow import at_end
from haven.web import NO_STORE

LOCK_TTL_MS = 30_000
LOCK_WAIT_S = 20.0


def result_out(result: service.BillingResult) -> BillingRunOut:
    return BillingRunOut(
        date=result.on,
        period=result.period,
        dry_run=result.dry_run,
        charges=[
            PlannedChargeOut(
                lease_id=c.lease_id,
                kind=c.kind,
                amount=c.amount,
                due_date=c.due_date,
                description=c.description,
                status=c.status,  # type: ignore[arg-type]
                entry_id=c.entry_id,
                entry_type=c.entry_type,
                posted=c.posted,
            )
            for c in result.charges
        ],
        posted=result.posted,
        already_posted=result.already_posted,
    )


class BillingController(Controller):
    path = "/billing"
    tags = ["billing"]

    @post("/run", status_code=HTTP_200_OK, opt=roles(*MANAGERS))
    async def run(
        self, db: AsyncSession, principal: Principal, services: Services, data: BillingRunIn
    ) -> Response[BillingRunOut]:
        """Post rent, recurring charges and late fees due on `date` (default today), or preview.

        Runs once per cluster at a time (Redis lock) and each charge is posted at most once
        per lease and period (a unique billing key), however often or wherever it runs.
        Each charge's `status` is `posted` (by this run), `would_post` (dry run) or
        `already_posted` (with the existing entry's `entryId`). Proration, due dates and
        adjustments follow docs/billing.md.
        """
        org = await get_organization(db, principal.organization_id)
        on = service.run_date(org, data.date)
        key = services.redis_keys.lock(f"billing:{principal.organization_id}:{on.isoformat()}")
        token = await locks.acquire_waiting(services.redis, key, LOCK_TTL_MS, LOCK_WAIT_S)
        if token is None:
            raise BillingInProgressError("Another billing run is in progress; retry shortly")
        refresher = locks.keep_alive(services.redis, key, token, LOCK_TTL_MS)
        # Held until the run's transaction has committed or rolled back, so the next run
        # (on any instance) sees every charge this one posted.
        at_end(db, lambda: locks.let_go(services.redis, key, token, refresher))
        result = await service.run_for(db, org, on, dry_run=data.dry_run)
        return Response(result_out(result), headers=NO_STORE)
