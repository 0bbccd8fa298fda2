"""Per-organization cache versions: every committed write bumps its organization's version.

Cached views (the dashboard) live under keys that include the version, so a
write on any instance makes the next read on every instance miss the old
entry and compute fresh data. Old entries simply expire. Which organizations a
write changed is the unit of work's to know (haven.uow.recorder); it calls `bump`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from haven.store.client import Keys

# `cached` below as a Lua fragment, for a script that learns the organization from a record it
# read (the edge gate, haven.store.gate): the version is read before the value, a missing
# version is 0. Expects `oid` (nil: none), `name` ('' for no cached view) and
# haven.store.client.KEYS_LUA's functions; leaves `version` (false without `oid`) and `cached`.
CACHED_READ_LUA = """
local version = false
local cached = false
if oid then
  version = redis.call('GET', org_version_key(oid)) or '0'
  if name ~= '' then
    cached = redis.call('GET', cache_key(oid, name, version))
  end
end
"""

log = structlog.get_logger("haven.cache")


async def bump(redis: Redis, keys: Keys, organization_ids: Iterable[uuid.UUID]) -> None:
    ids = list(organization_ids)
    if not ids:
        return
    async with redis.pipeline(transaction=False) as pipe:
        queue_bump(pipe, keys, ids)
        await pipe.execute()


def queue_bump(pipe: Any, keys: Keys, organization_ids: Iterable[uuid.UUID]) -> None:
    """`bump`, queued on a pipeline the caller sends (the unit of work's after-commit trip)."""
    for org in organization_ids:
        pipe.incr(keys.org_version(str(org)))


async def version(redis: Redis, keys: Keys, organization_id: uuid.UUID) -> int:
    raw = await redis.get(keys.org_version(str(organization_id)))
    return int(raw) if raw is not None else 0


async def cached(
    redis: Redis,
    keys: Keys,
    organization_id: uuid.UUID,
    name: str,
    ttl: int,
    compute: Callable[[], Awaitable[bytes]],
    prefetched: tuple[int, bytes | None] | None = None,
) -> bytes:
    """The cached bytes for (organization, name, current version), computing them on a miss.

    The version is read before computing, so a write that lands meanwhile bumps
    past the stored entry. If Redis is down the value is computed from the database.
    `prefetched` is (version, cached bytes or None) as the request's gate already
    read them (haven.store.gate), sparing both reads.
    """
    hit: bytes | str | None
    if prefetched is not None:
        current, hit = prefetched
        if hit is not None:
            return hit
        key = keys.cache(str(organization_id), name, current)
    else:
        try:
            current = await version(redis, keys, organization_id)
            key = keys.cache(str(organization_id), name, current)
            hit = await redis.get(key)
        except RedisError as exc:
            log.warning("cache_unavailable", error=repr(exc))
            return await compute()
    if hit is not None:
        return hit if isinstance(hit, bytes) else hit.encode()
    value = await compute()
    try:
        await redis.set(key, value, ex=ttl)
    except RedisError as exc:
        log.warning("cache_store_failed", error=repr(exc))
    return value
