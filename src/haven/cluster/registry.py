"""The instance registry in Redis: every instance publishes itself with a heartbeat TTL.

Each instance writes `<prefix>:instance:<id>` (a JSON record, PX = TTL) and
adds its id to the `<prefix>:instances` sorted set (score = last heartbeat).
A killed instance stops refreshing its key, which expires by itself; readers
skip ids whose key is gone and prune them from the set. Registry failures
(Redis down) are logged once per outage and never stop the instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis

from haven.store.client import Keys

HEARTBEAT_INTERVAL = 1.0
HEARTBEAT_TTL = 5.0

log = structlog.get_logger("haven.cluster")

_encoder = msgspec.json.Encoder()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Registry:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        instance_id: str,
        record: Callable[[], dict[str, Any]],
        *,
        interval: float = HEARTBEAT_INTERVAL,
        ttl: float = HEARTBEAT_TTL,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.instance_id = instance_id
        self.record = record
        self.interval = interval
        self.ttl = ttl
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._stopped = False

    async def publish(self) -> None:
        now = time.time()
        body = {**self.record(), "lastHeartbeat": iso(now)}
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(
                self.keys.instance(self.instance_id), _encoder.encode(body), px=int(self.ttl * 1000)
            )
            pipe.zadd(self.keys.instances(), {self.instance_id: now})
            # Ids that have not beaten for a long time: their key expired long ago.
            pipe.zremrangebyscore(self.keys.instances(), "-inf", now - 10 * self.ttl)
            await pipe.execute()

    async def deregister(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.instance(self.instance_id))
            pipe.zrem(self.keys.instances(), self.instance_id)
            await pipe.execute()

    async def instances(self) -> list[dict[str, Any]]:
        """Every live instance's record (key not expired), sorted by id."""
        raw_ids: list[Any] = await self.redis.zrange(self.keys.instances(), 0, -1)
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in raw_ids]
        if not ids:
            return []
        values = await self.redis.mget([self.keys.instance(i) for i in ids])
        out: list[dict[str, Any]] = []
        gone: list[str] = []
        for instance_id, raw in zip(ids, values, strict=True):
            if raw is None:
                gone.append(instance_id)
                continue
            with contextlib.suppress(msgspec.DecodeError):
                out.append(msgspec.json.decode(raw))
        if gone:
            await self.redis.zrem(self.keys.instances(), *gone)
        out.sort(key=lambda r: str(r.get("instanceId", "")))
        return out

    def poke(self) -> None:
        """Publish now (a state change should not wait for the next beat)."""
        self._wake.set()

    async def _beat(self) -> None:
        try:
            await asyncio.wait_for(self.publish(), timeout=max(self.interval, 1.0))
        except Exception as exc:  # Redis down: keep serving, say so once
            if not self._failing:
                log.warning("registry_unavailable", error=repr(exc))
            self._failing = True
            return
        if self._failing:
            log.info("registry_recovered")
        self._failing = False

    async def run(self) -> None:
        while not self._stopped:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            await self._beat()

    async def start(self) -> None:
        await self._beat()
        self._task = asyncio.create_task(self.run(), name=f"haven-registry-{self.instance_id}")

    async def stop(self) -> None:
        """Stop the heartbeat and remove this instance from the registry (best effort)."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        try:
            await asyncio.wait_for(self.deregister(), timeout=2.0)
        except Exception as exc:  # the key expires by itself within the TTL
            log.warning("deregister_failed", error=repr(exc))
