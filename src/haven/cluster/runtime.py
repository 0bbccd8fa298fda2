"""The load-balancer layer of one app: state, metrics, dependency monitor, registry, limiter.

Two parts, by when they can exist. `Cluster` is built with the app (the middleware and
the metrics need it at once): settings, lifecycle state, resources, metrics. `Links`
is what needs the Redis client and the engine: the dependency monitor, the registry,
the rate limiter, the gate and the session store; `Cluster.running` builds it, complete,
once the app's lifespan has opened the pools, and `Cluster.links` is its one accessor
(no request arrives before the lifespan has started).
Order: the app's lifespan opens the pools first, then `running` starts the heartbeat;
at shutdown `running` ends first: wait for in-flight requests (bounded by
SHUTDOWN_TIMEOUT), stop the heartbeat, deregister; then the pools close.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from haven.auth.sessions import SessionStore
from haven.cluster.deps import DependencyMonitor
from haven.cluster.gate_script import Gate
from haven.cluster.metrics import Metrics, instance_summary
from haven.cluster.registry import Registry, iso
from haven.cluster.state import InstanceState, ResourceSampler
from haven.config import Settings
from haven.store.client import Keys
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


@dataclass(frozen=True, slots=True)
class Links:
    """The parts of the cluster layer that talk to Redis and the database."""

    monitor: DependencyMonitor
    registry: Registry
    limiter: RateLimiter
    gate: Gate
    sessions: SessionStore


class NotStartedError(RuntimeError):
    """The cluster's links were asked for before the app's lifespan started them."""


class Cluster:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.instance = InstanceState(settings.instance_id, settings.version, advertised(settings))
        self.resources = ResourceSampler()
        self.metrics = Metrics(self.instance, self.resources, self._dependencies)
        self._links: Links | None = None
        self._sessions_counted_at = 0.0

    @property
    def links(self) -> Links:
        """Monitor, registry, limiter, gate and sessions (once `running` has started)."""
        if self._links is None:
            raise NotStartedError("the cluster layer is used before the app's lifespan started")
        return self._links

    # The edge middleware's accessors (haven.cluster.ratelimit).
    @property
    def limiter(self) -> RateLimiter:
        return self.links.limiter

    @property
    def gate(self) -> Gate:
        return self.links.gate

    def _dependencies(self) -> dict[str, str]:
        # Metrics can be collected before start (an empty dependency section then).
        return self._links.monitor.last if self._links is not None else {}

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
        if now - self._sessions_counted_at < max_age:
            return self.metrics.active_sessions
        self._sessions_counted_at = now
        try:
            self.metrics.active_sessions = await asyncio.wait_for(
                self.links.sessions.count(), timeout=1.0
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
    async def running(
        self, redis: Redis, keys: Keys, engine: AsyncEngine, sessions: SessionStore
    ) -> AsyncGenerator[Links]:
        """Build the links, register and turn ready; at exit drain, deregister, stop."""
        limiter = RateLimiter(redis, keys, self.settings)
        registry = Registry(redis, keys, self.instance.instance_id, self.record)
        links = self._links = Links(
            monitor=DependencyMonitor(redis, engine),
            registry=registry,
            limiter=limiter,
            gate=Gate(
                redis, keys, limiter, self.settings.session_ttl, self.settings.session_max_age
            ),
            sessions=sessions,
        )
        self.instance.on_change(registry.poke)
        self.instance.mark_ready()
        await registry.start()  # registered (if Redis is up) before the first request
        log.info("instance_ready", address=self.instance.address, version=self.instance.version)
        try:
            yield links
        finally:
            self.instance.begin_drain()
            timeout = self.settings.shutdown_timeout_ms / 1000
            if not await self.instance.wait_idle(timeout):
                log.warning(
                    "shutdown_timeout", in_flight=self.instance.in_flight, timeout_s=timeout
                )
            self.instance.mark_stopped()
            with contextlib.suppress(Exception):
                await registry.stop()
            log.info("instance_stopped", requests_total=self.instance.requests_total)
