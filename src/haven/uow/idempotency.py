"""The database side of Idempotency-Key: the record written in the write's own transaction.

The rules and the Redis side are haven.store.idempotency's; this module reads and
writes `idempotency_records` rows for the unit of work (haven.uow.tx).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from redis.asyncio import Redis
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.db.base import utcnow
from haven.models import IdempotencyRecord
from haven.store.idempotency import RETENTION, Claim, StoredResponse, answer, remember
from haven.uow.recorder import buffer_of


async def replay_recorded(session: AsyncSession, claim: Claim, redis: Redis) -> None:
    """After a keyed write did not commit: if a record holds its key (another request with
    the key committed first, or its instance died before Redis got the answer's copy),
    raise that answer's replay (422 for another body), copying it to Redis on the way.

    Looked up only then, never before the handler: the record's INSERT in the commit finds
    a taken key by itself (haven.uow.tail `record_insert`), so a write that commits
    costs no lookup."""
    record = (
        await session.execute(
            select(IdempotencyRecord).where(IdempotencyRecord.scope_hash == claim.scope)
        )
    ).scalar_one_or_none()
    if record is None or record.created_at < datetime.now(UTC) - RETENTION:
        return  # a record past its 24 h answers nothing (the purge job deletes it)
    stored = StoredResponse(
        fingerprint=record.fingerprint,
        status=record.status_code,
        media_type=record.media_type,
        headers=json.loads(record.headers),
        body=record.body,
    )
    left = record.created_at + RETENTION - datetime.now(UTC)
    await remember(redis, claim, stored, max(int(left.total_seconds() * 1000), 1000))
    raise answer(stored, claim.fingerprint)


def record(session: AsyncSession, claim: Claim, stored: StoredResponse) -> None:
    """Add the successful answer to the request's transaction, so it commits with the write
    (in the transaction's last statement, with the audit rows and events: haven.uow.tail)."""
    claim.stored = stored
    buffer_of(session).record = {
        "id": uuid.uuid4(),
        "scope_hash": claim.scope,
        "organization_id": claim.organization_id,
        "fingerprint": stored.fingerprint,
        "status_code": stored.status,
        "media_type": stored.media_type,
        "headers": json.dumps(stored.headers),
        "body": stored.body,
        "created_at": utcnow(),
    }


async def purge_expired(session: AsyncSession, now: datetime | None = None) -> int:
    """Delete records past the 24 h window (their Redis copies expire by themselves)."""
    result = await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.created_at < (now or datetime.now(UTC)) - RETENTION
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
