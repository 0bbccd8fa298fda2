"""Who an API key speaks for, checked on every request that presents one.

A Bearer value that starts with `hvn_` is an API key: the edge's session fast path
(haven.store.gate) does not recognise it as a session, so it reaches the `principal`
dependency, which calls `resolve` here. One EVALSHA (haven.auth.apikeys.store) counts the
per-key limit (RATE_LIMIT_PER_KEY) and reads the key's record and its creator's
authorization mirror; a miss reads the database once and re-publishes.

A key acts with the lower of its own role and its creator's current role: demoting the
creator caps every key they made, and removing the creator from the organization ends
them (401), on every instance within the mirror's propagation (haven.auth.authz).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy import select, update

from haven.auth import authz
from haven.auth.apikeys import keys
from haven.auth.apikeys.store import RECORD_TTL, REVOKED, KeyRecord, parse
from haven.db.base import utcnow
from haven.errors import NotSignedInError, RateLimitedError
from haven.models import ApiKey
from haven.models.organization import ROLES
from haven.services import Services
from haven.store.ratelimit import Limit

log = structlog.get_logger("haven.apikeys")

# last_used_at writes in flight (kept referenced until they finish).
_PENDING: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    api_key_id: uuid.UUID
    creator_id: uuid.UUID
    organization_id: uuid.UUID
    role: str


def lower_role(a: str, b: str) -> str:
    """The less powerful of two roles (ROLES runs from most to least)."""
    return a if ROLES.index(a) >= ROLES.index(b) else b


def record_of(row: ApiKey, now: float) -> KeyRecord | None:
    """The live record for a database row, None when revoked or expired."""
    if row.revoked_at is not None:
        return None
    exp = row.expires_at.timestamp() if row.expires_at is not None else 0.0
    if exp and exp <= now:
        return None
    return KeyRecord(
        id=str(row.id),
        oid=str(row.organization_id),
        uid=str(row.created_by),
        role=row.role,
        exp=exp,
    )


async def _load(services: Services, digest: str, now: float) -> KeyRecord | None:
    async with services.sessionmaker(bind=services.read_engine) as db:
        row = (await db.execute(select(ApiKey).where(ApiKey.key_hash == digest))).scalar()
    record = record_of(row, now) if row is not None else None
    ttl = RECORD_TTL
    if record is not None and record.exp:
        ttl = min(ttl, int(record.exp - now) + 1)
    await services.api_keys.publish(digest, record, ttl)
    return record


async def _touch(services: Services, key_id: uuid.UUID) -> None:
    try:
        async with services.sessionmaker(bind=services.write_engine) as db:
            await db.execute(
                update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow())
            )
            await db.commit()
    except Exception as exc:  # a missed last-used stamp must never fail a request
        log.warning("api_key_last_used_failed", api_key_id=str(key_id), error=repr(exc))


DRAIN_SECONDS = 5.0


async def drain() -> None:
    """Let the last_used_at writes in flight finish (the app's shutdown, before the engine
    closes), for at most DRAIN_SECONDS."""
    if _PENDING:
        await asyncio.wait(set(_PENDING), timeout=DRAIN_SECONDS)


def _refused(detail: str) -> NotSignedInError:
    return NotSignedInError(detail)


async def resolve(services: Services, key: str) -> KeyIdentity:
    """The identity behind `key`, or 401 (unknown, malformed, revoked, expired, creator
    gone) / 429 (over RATE_LIMIT_PER_KEY). Never logs the key."""
    if not keys.well_formed(key):
        raise _refused("This API key is not valid")
    digest = keys.digest(key)
    settings = services.settings
    limits: list[Limit] = []
    if settings.rate_limit_enabled:
        limits.append(Limit("apikey", digest[:32], settings.rate_limit_per_key))
    check = await services.api_keys.check(digest, limits, settings.rate_limit_window * 1000)
    decision = check.decision
    if decision is not None and not decision.allowed:
        headers = {k.decode(): v.decode() for k, v in decision.headers()}
        headers["Retry-After"] = str(decision.reset_seconds)
        raise RateLimitedError(
            f"Too many requests with this API key; retry in {decision.reset_seconds} s "
            f"(limit {decision.limit} per {settings.rate_limit_window} s)",
            headers=headers,
        )
    now = time.time()
    found = parse(check.record)
    claimed = check.claimed
    mirror = check.authz
    if found is None:
        found = await _load(services, digest, now)
        if found is not None:
            claimed = await services.api_keys.claim_use(digest)
            mirror = None  # read below from the database (and re-published)
    if found is None or found == REVOKED or not isinstance(found, KeyRecord):
        raise _refused("This API key has been revoked, has expired, or does not exist")
    if found.exp and found.exp <= now:
        raise _refused("This API key has expired")
    try:
        key_id, creator_id, org_id = uuid.UUID(found.id), uuid.UUID(found.uid), uuid.UUID(found.oid)
    except ValueError:
        raise _refused("This API key is not valid") from None
    creator = authz.parse(mirror)
    if creator is None:
        creator = await authz.load(services, creator_id, org_id)
    if not isinstance(creator, authz.Authz):
        raise _refused("The member who created this API key has left the organization")
    if found.role not in ROLES or creator.role not in ROLES:  # never a resident's
        raise _refused("This API key is not valid")
    if claimed:
        task = asyncio.get_running_loop().create_task(_touch(services, key_id))
        _PENDING.add(task)
        task.add_done_callback(_PENDING.discard)
    return KeyIdentity(key_id, creator_id, org_id, lower_role(found.role, creator.role))
