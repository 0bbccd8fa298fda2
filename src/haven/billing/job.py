"""Billing outside a request: every organization's charges for its own local date, once.

`haven jobs billing` and the scheduler (haven.jobs.scheduler) both come here. The
writes go through the ORM, so the audit listener records each entry, with the system
actor `system:billing`; `haven jobs billing` commits a batch of leases at a time
(`service.run_batched`), so its memory stays flat for any portfolio.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from haven.billing import service
from haven.clock import local_date
from haven.config import Settings
from haven.db.engine import WRITE_OPTION, create_engine
from haven.models import Organization
from haven.store import locks, org_cache
from haven.store.client import Keys, create_redis
from haven.uow import Actor, as_actor, create_sessionmaker, take_changed

LOCK_TTL_MS = 60_000


class BillingBusyError(RuntimeError):
    """Another instance holds the cluster-wide billing lock."""


def as_system(session: AsyncSession, instance_id: str | None) -> None:
    """Audit what this session writes as the billing job, not as a user."""
    as_actor(session, Actor.system(service.SYSTEM_ACTOR), instance_id)


async def organizations(maker: async_sessionmaker[AsyncSession]) -> list[tuple[uuid.UUID, str]]:
    async with maker() as session:
        rows = await session.execute(
            select(Organization.id, Organization.timezone).order_by(Organization.id)
        )
        return [(row.id, row.timezone) for row in rows]


async def run_billing(
    settings: Settings,
    on: date | None,
    redis_url: str,
    now: datetime | None = None,
    batch_size: int | None = None,
) -> list[service.BatchedRun]:
    """Bill every organization for `on`, or for its own local date at `now` (default: now)."""
    now = now or datetime.now(UTC)
    engine = create_engine(settings.with_overrides(db_pool_min=1, db_pool_max=2))
    redis = create_redis(settings, redis_url)
    keys = Keys(settings.redis_key_prefix)
    label = on.isoformat() if on else now.date().isoformat()
    try:
        async with locks.held(redis, keys.lock(f"billing:all:{label}"), LOCK_TTL_MS) as token:
            if token is None:
                raise BillingBusyError("another billing run holds the lock; try again later")
            maker = create_sessionmaker(engine.execution_options(**{WRITE_OPTION: True}))
            results = []

            async def committed(session: AsyncSession) -> None:
                await org_cache.bump(redis, keys, take_changed(session))

            for org_id, timezone in await organizations(maker):
                today = local_date(now, timezone)
                result = await service.run_batched(
                    maker,
                    org_id,
                    on or today,
                    today=today,
                    prepare=lambda session: as_system(session, settings.instance_id),
                    committed=committed,
                    batch_size=batch_size,
                )
                results.append(result)
            return results
    finally:
        await redis.aclose()
        await engine.dispose()
