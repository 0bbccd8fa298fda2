"""RequestTx: one write request's unit of work, from BEGIN to the last thing after COMMIT.

`RequestTx.open` starts it (claiming the Idempotency-Key, if one was sent);
the route's services write through `tx.session` and only flush; `finish`
then does, in this order and nowhere else:

1. an error answer (4xx/5xx) rolls back; a successful one (2xx) adds its
   Idempotency-Key record to the transaction;
2. COMMIT: the write buffer (haven.uow.recorder) writes the audit rows and the
   outbox events as its last statements;
3. the answer is copied to Redis (a cache of the record);
4. the cache version of every organization the write changed is bumped;
5. the after-commit callbacks run (e.g. publishing a role change).

`close` always runs last: it rolls back whatever did not commit, ends the
session, lets go of the Idempotency-Key's in-flight marker and runs the
`at_end` callbacks (e.g. releasing the billing run's lock only once its
charges have committed).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from haven.errors import IdempotencyInFlightError, VersionMismatchError
from haven.store import idempotency, org_cache
from haven.store.client import Keys
from haven.store.idempotency import Claim, StoredResponse
from haven.uow import idempotency as records
from haven.uow.actor import Actor
from haven.uow.recorder import WriteBuffer, as_actor, buffer_of, take_changed

log = structlog.get_logger("haven.uow")


@dataclass(frozen=True, slots=True)
class IdempotencyRequest:
    """What an Idempotency-Key is scoped to: sent key, method, path and body."""

    key: str
    method: str
    path: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    """The response a write produced, as it will be sent."""

    status: int
    media_type: str
    headers: dict[str, str]  # the ones a replay repeats (idempotency.KEPT_HEADERS)
    body: bytes


class RequestTx:
    def __init__(
        self, session: AsyncSession, redis: Redis, keys: Keys, claim: Claim | None
    ) -> None:
        self.session = session
        self.redis = redis
        self.keys = keys
        self.claim = claim
        self.done = False
        self.closed = False

    @property
    def buffer(self) -> WriteBuffer:
        """The actor, changed organizations and after-commit callbacks of this write."""
        return buffer_of(self.session)

    @classmethod
    async def open(
        cls,
        session: AsyncSession,
        redis: Redis,
        keys: Keys,
        actor: Actor,
        *,
        instance_id: str | None,
        request_id: str | None,
        idempotent: IdempotencyRequest | None,
    ) -> RequestTx:
        as_actor(session, actor, instance_id, request_id)
        tx = cls(session, redis, keys, None)
        if idempotent is None:
            return tx
        try:
            idempotency.check_key(idempotent.key)  # 422 for a malformed key, even signed out
            if actor.organization_id is None:
                return tx  # sign-up, sign-in: nothing to scope the key to
            scope = idempotency.scope_of(
                actor.organization_id,
                actor.scope_id,
                idempotent.method,
                idempotent.path,
                idempotent.key,
            )
            fingerprint = idempotency.fingerprint_of(idempotent.body)
            tx.claim = await idempotency.claim(
                redis, keys, scope, fingerprint, actor.organization_id
            )
            await records.check_database(session, tx.claim, redis)
        except BaseException:
            await tx.close()
            raise
        idempotency.hold(redis, tx.claim)
        return tx

    async def finish(self, answer: Answer) -> None:
        """Commit a successful answer (with its Idempotency-Key record), roll back any other."""
        if self.done:
            return
        self.done = True
        if answer.status >= 400:  # an error answer a handler returned instead of raising
            await self.session.rollback()
            return
        if self.claim is not None and 200 <= answer.status < 300:
            records.record(
                self.session,
                self.claim,
                StoredResponse(
                    self.claim.fingerprint,
                    answer.status,
                    answer.media_type,
                    answer.headers,
                    answer.body,
                ),
            )
        try:
            await self.session.commit()
        except StaleDataError:
            await self.session.rollback()
            raise VersionMismatchError(
                "Another request changed this resource at the same moment; read it and retry"
            ) from None
        except IntegrityError:
            await self.session.rollback()
            if self.claim is None:
                raise
            # Another request with this key committed first (its marker had expired).
            raise IdempotencyInFlightError(
                "A request with this Idempotency-Key completed meanwhile; retry to replay it"
            ) from None
        if self.claim is not None:
            await idempotency.committed(self.redis, self.claim)
        try:  # cached views then expire by their TTL
            await org_cache.bump(self.redis, self.keys, take_changed(self.session))
        except Exception as exc:
            log.warning("cache_version_bump_failed", error=repr(exc))
        for callback in self.buffer.after_commit:
            try:
                await callback()
            except Exception as exc:  # a cache bump failing must not undo a committed write
                log.warning("after_commit_failed", error=repr(exc))

    async def close(self) -> None:
        """Roll back what did not commit, end the session, let go of the key."""
        if self.closed:
            return
        self.done = self.closed = True
        try:
            await self.session.close()
        finally:
            if self.claim is not None:
                await idempotency.release(self.redis, self.claim)
            for callback in self.buffer.at_end:
                try:
                    await callback()
                except Exception as exc:  # e.g. a lock release: its TTL frees it anyway
                    log.warning("at_end_failed", error=repr(exc))
