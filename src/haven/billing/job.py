"""`haven jobs billing`: every organization's charges for a date, once per cluster."""

from __future__ import annotations

from datetime import UTC, date, datetime

from haven.billing import service
from haven.config import Settings
from haven.db.engine import WRITE_OPTION, create_engine, create_sessionmaker
from haven.store import locks, org_cache
from haven.store.client import Keys, create_redis

LOCK_TTL_MS = 60_000


class BillingBusyError(RuntimeError):
    """Another instance holds the cluster-wide billing lock."""


async def run_billing(settings: Settings, on: date | None, redis_url: str) -> service.BillingResult:
    on = on or datetime.now(UTC).date()
    engine = create_engine(settings.with_overrides(db_pool_min=1, db_pool_max=2))
    redis = create_redis(settings, redis_url)
    keys = Keys(settings.redis_key_prefix)
    try:
        async with locks.held(
            redis, keys.lock(f"billing:all:{on.isoformat()}"), LOCK_TTL_MS
        ) as token:
            if token is None:
                raise BillingBusyError("another billing run holds the lock; try again later")
            maker = create_sessionmaker(engine.execution_options(**{WRITE_OPTION: True}))
            async with maker() as session, session.begin():
                org_cache.track_changes(session)
                result = await service.run(session, None, on, dry_run=False)
                changed = {c.organization_id for c in result.charges if c.posted}
                changed |= org_cache.changed_organizations(session)
            await org_cache.bump(redis, keys, changed)
            return result
    finally:
        await redis.aclose()
        await engine.dispose()
