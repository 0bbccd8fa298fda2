"""The load-balancer layer of one app: state, metrics, dependency monitor, registry, limiter.

`Cluster` is built with the app (the middleware needs it at once) and
completed in the lifespan, once the Redis client and the engine exist.
Lifespan order: the app's own lifespan opens the pools first, this one
starts the heartbeat; at shutdown this one runs first: wait for in-flight
requests (bounded by SHUTDOWN_TIMEOUT), stop the heartbeat, deregister; then
the pools close.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar

from haven.cluster.deps import DependencyMonitor
from haven.cluster.gate_script import Gate
from haven.cluster.metrics import Metrics, instance_summary
from haven.cluster.registry import Registry, iso
from haven.cluster.state import InstanceState, ResourceSampler
from haven.config import Settings
from haven.store.ratelimit import RateLimiter

SESSION_COUNT_MAX_AGE = 5.0

log = structlog.get_logger("haven.cluster")


def advertised(settings: Settings) -> str:
    """The address other instances and operators can reach this one at."""
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        # Bound to every interface: name the machine instead of the wildcard.
        host = socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


class Cluster:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.instance = InstanceState(settings.instance_id, settings.version, advertised(settings))
        self.resources = ResourceSampler()
        self.metrics = Metrics(self.instance, self.resources, self._dependencies)
        self.monitor: DependencyMonitor | None = None
        self.registry: Registry | None = None
        self.limiter: RateLimiter | None = None
        self.gate: Gate | None = None
        self._app: Litestar | None = None
        self._sessions_counted_at = 0.0

    def _dependencies(self) -> dict[str, str]:
        return self.monitor.last if self.monitor is not None else {}

    # -- what the instance publishes -------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        summary = instance_summary(self.instance, self.resources, self.metrics.active_sessions)
        for name, section in self.metrics.sections.items():
            summary[name] = section()
        return summary

    def record(self) -> dict[str, Any]:
        instance = self.instance
        return {
            "instanceId": instance.instance_id,
            "address": instance.address,
            "version": instance.version,
            "state": instance.state,
            "startedAt": iso(instance.started_at),
            "inFlight": instance.in_flight,
            "requestsTotal": instance.requests_total,
            "metrics": self.summary(),
        }

    async def refresh_sessions(self, max_age: float = SESSION_COUNT_MAX_AGE) -> int:
        """The cluster-wide live session count, recounted at most every few seconds."""
        now = time.monotonic()
        if self._app is None or now - self._sessions_counted_at < max_age:
            return self.metrics.active_sessions
        self._sessions_counted_at = now
        try:
            self.metrics.active_sessions = await asyncio.wait_for(
                self._app.state.sessions.count(), timeout=1.0
            )
        except Exception as exc:  # Redis down: keep the last count
            log.debug("session_count_failed", error=repr(exc))
        return self.metrics.active_sessions

    # -- lifecycle -------------------------------------------------------------------------

    def begin_drain(self, reason: str) -> bool:
        first = self.instance.begin_drain()
        if first:
            log.info("draining", reason=reason, in_flight=self.instance.in_flight)
        return first

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncGenerator[None]:
        self._app = app
        self.monitor = DependencyMonitor(app.state.redis, app.state.engine)
        self.limiter = RateLimiter(app.state.redis, app.state.redis_keys, self.settings)
        self.gate = Gate(
            app.state.redis,
            app.state.redis_keys,
            self.limiter,
            self.settings.session_ttl,
            self.settings.session_max_age,
        )
        self.registry = Registry(
            app.state.redis, app.state.redis_keys, self.instance.instance_id, self.record
        )
        self.instance.on_change(self.registry.poke)
        self.instance.mark_ready()
        await self.registry.start()  # registered (if Redis is up) before the first request
        log.info("instance_ready", address=self.instance.address, version=self.instance.version)
        try:
            yield
        finally:
            self.instance.begin_drain()
            timeout = self.settings.shutdown_timeout_ms / 1000
            if not await self.instance.wait_idle(timeout):
                log.warning(
                    "shutdown_timeout", in_flight=self.instance.in_flight, timeout_s=timeout
                )
            self.instance.mark_stopped()
            with contextlib.suppress(Exception):
                await self.registry.stop()
            log.info("instance_stopped", requests_total=self.instance.requests_total)
