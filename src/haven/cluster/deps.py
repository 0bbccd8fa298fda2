"""Dependency checks (Redis, database) with short timeouts, cached for a moment.

Probes may arrive every second from several load balancers; they share one
check at a time, and a down dependency costs at most CHECK_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
CHECK_TIMEOUT = 1.0

log = structlog.get_logger("haven.cluster")


class DependencyMonitor:
    def __init__(self, redis: Redis, engine: AsyncEngine, timeout: float = CHECK_TIMEOUT) -> None:
        self.redis = redis
        self.engine = engine
        self.timeout = timeout
        self._result: dict[str, str] = {"redis": UNHEALTHY, "database": UNHEALTHY}
        self._checked_at = 0.0
        self._pending: asyncio.Task[dict[str, str]] | None = None

    @property
    def last(self) -> dict[str, str]:
        return dict(self._result)

    async def _redis(self) -> str:
        try:
            await asyncio.wait_for(self.redis.ping(), self.timeout)
        except Exception:  # any failure means "not usable right now"
            return UNHEALTHY
        return HEALTHY

    async def _database(self) -> str:
        async def probe() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(probe(), self.timeout)
        except Exception:  # any failure means "not usable right now"
            return UNHEALTHY
        return HEALTHY

    async def _run(self) -> dict[str, str]:
        redis, database = await asyncio.gather(self._redis(), self._database())
        result = {"redis": redis, "database": database}
        if result != self._result and self._checked_at > 0:
            level = log.warning if UNHEALTHY in result.values() else log.info
            level("dependencies_changed", **result)
        self._result = result
        self._checked_at = time.monotonic()
        return result

    async def check(self, max_age: float = 0.0) -> dict[str, str]:
        """Dependency states, re-checked when the last check is older than `max_age` seconds."""
        if max_age > 0 and time.monotonic() - self._checked_at <= max_age:
            return dict(self._result)
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(self._run())
        return dict(await asyncio.shield(self._pending))


def overall_status(dependencies: dict[str, Any], draining: bool) -> str:
    """healthy: everything up; degraded: one dependency down or draining; unhealthy: all down."""
    down = [name for name, state in dependencies.items() if state != HEALTHY]
    if down and len(down) == len(dependencies):
        return "unhealthy"
    if down or draining:
        return "degraded"
    return "healthy"
