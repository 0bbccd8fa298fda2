"""RequestTx: one write request's unit of work, from BEGIN to the last thing after COMMIT.

`RequestTx.open` starts it (claiming the Idempotency-Key, if one was sent);
the route's services write through `tx.session` and only flush; `finish`
then does, in this order and nowhere else:

1. an error answer (4xx/5xx) rolls back; a successful one (2xx) adds its
   Idempotency-Key record to the transaction;
2. COMMIT: the write buffer (haven.uow.recorder) writes the audit rows, the
   outbox events and the record as its last statements;
3. one Redis round trip (a pipeline): the answer is copied to Redis (a cache
   of the record), the cache version of every organization the write changed
   is bumped, and the key's in-flight marker is released;
4. the after-commit callbacks run (e.g. publishing a role change).

A commit whose guarded change (haven.uow.tail `guarded`) found what its service read
without a lock changed raises `Stale` after the rollback: nothing was written, and the
write boundary runs the request once more (`rerun`), the key's claim handed over.

`close` always runs last: it rolls back whatever did not commit, ends the
session, lets go of the Idempotency-Key's in-flight marker (if the commit's
pipeline did not) and runs the `at_end` callbacks (e.g. releasing the billing
run's lock only once its charges have committed).

The key's claim costs no round trip of its own when the edge's gate script took
it (haven.store.gate.EdgeClaim, passed as `edge`): a keyed POST is then the
gate's trip and the commit's pipeline, two Redis round trips in all.

The key's database record is not looked up before the handler: a write that commits
needs no lookup. Only a keyed write that does not commit looks it up (`_replay_recorded`),
and answers with the record's replay if one holds the key: its record's INSERT found the
key taken (`KeyTaken`: another request with it committed first, or committed and its
instance died before Redis got the answer's copy), or it answered 4xx (a retry whose
handler now refuses what its first run did, e.g. activating a lease activated by then).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from haven.errors import (
    HavenError,
    IdempotencyInFlightError,
    IdempotencyKeyReusedError,
    VersionMismatchError,
)
from haven.store import idempotency, org_cache
from haven.store.client import Keys
from haven.store.gate import EdgeClaim
from haven.store.idempotency import Claim, IdempotentReplay, StoredResponse
from haven.uow import idempotency as records
from haven.uow.actor import Actor
from haven.uow.recorder import WriteBuffer, as_actor, buffer_of, take_changed
from haven.uow.tail import KeyTaken, Stale

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
        edge: EdgeClaim | None = None,
        rerun: bool = False,
        claimed: Claim | None = None,
    ) -> RequestTx:
        """`rerun`: the request's second run (haven.uow.http), holding the key's claim its
        first run held (`claimed`, from `hand_over`)."""
        as_actor(session, actor, instance_id, request_id)
        buffer_of(session).rerun = rerun
        if rerun:  # the key (if any) is held for it already
            return cls(session, redis, keys, claimed)
        tx = cls(session, redis, keys, None)
        if idempotent is None:
            if edge is not None and edge.token is not None:
                await idempotency.release_marker(redis, edge.cache_key, edge.token)
            return tx
        try:
            idempotency.check_key(idempotent.key)  # 422 for a malformed key, even signed out
            if actor.organization_id is None:
                return tx  # sign-up, sign-in: nothing to scope the key to
            parts = (
                actor.organization_id,
                actor.scope_id,
                idempotent.method,
                idempotent.path,
                idempotent.key,
            )
            scope = idempotency.scope_of(*parts)
            cache_key = keys.idempotency(idempotency.cache_scope_of(*parts))
            fingerprint = idempotency.fingerprint_of(idempotent.body)
            if edge is not None and edge.cache_key == cache_key:
                tx.claim = idempotency.from_edge(edge, scope, fingerprint, actor.organization_id)
            elif edge is not None and edge.token is not None:  # not this request's scope
                await idempotency.release_marker(redis, edge.cache_key, edge.token)
            if tx.claim is None:  # no gate claim, or another request holds the key: wait
                tx.claim = await idempotency.claim(
                    redis, scope, fingerprint, actor.organization_id, cache_key
                )
        except BaseException:
            await tx.close()
            raise
        idempotency.hold(redis, tx.claim)
        return tx

    async def finish(self, answer: Answer) -> None:
        """Commit a successful answer (with its Idempotency-Key record), roll back any other;
        a keyed write that did not commit answers with its key's record, if one holds it."""
        if self.done:
            return
        self.done = True
        if answer.status >= 400:  # an error answer (a handler that raised: rolled back already)
            await self.session.rollback()
            if answer.status < 500:  # not when the database (or its pool) is what failed
                await self._replay_recorded()
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
        except Stale:
            # What a service read without a lock changed before the commit, which wrote
            # nothing: the request runs again, with this key's claim (haven.uow.http).
            await self.session.rollback()
            raise
        except KeyTaken:
            await self.session.rollback()
            await self._replay_recorded()
            # The record that held the key is gone by now (its organization was deleted).
            raise IdempotencyInFlightError(
                "A request with this Idempotency-Key completed meanwhile; retry it"
            ) from None
        except (IntegrityError, HavenError):
            # A unique key taken or a referenced row deleted since the handler's check (a
            # HavenError: the refusal its new row named for a taken key, haven.uow `add_new`).
            await self.session.rollback()
            await self._replay_recorded()
            raise
        await self._settle()
        for callback in self.buffer.after_commit:
            try:
                await callback()
            except Exception as exc:  # a cache bump failing must not undo a committed write
                log.warning("after_commit_failed", error=repr(exc))

    async def _replay_recorded(self) -> None:
        """Raise the replay of the record holding this write's key, if one does (the write
        did not commit). A lookup that fails leaves the write's own answer standing."""
        if self.claim is None:
            return
        try:
            await records.replay_recorded(self.session, self.claim, self.redis)
        except (IdempotentReplay, IdempotencyKeyReusedError):
            raise
        except Exception as exc:  # the database is away: the write's own error answers
            log.warning("idempotency_lookup_failed", error=repr(exc))
        finally:
            if self.closed:  # the handler raised: `close` ended the session before this
                await self.session.close()

    async def _settle(self) -> None:
        """The commit's one Redis round trip: the answer's copy, the changed organizations'
        cache versions and the marker's release, pipelined (each may fail alone: the record
        still answers a retry, cached views expire by their TTL, the marker by its own)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            if self.claim is not None:
                idempotency.queue_settled(pipe, self.claim)
            org_cache.queue_bump(pipe, self.keys, take_changed(self.session))
            if not len(pipe):
                return
            try:
                results = await pipe.execute(raise_on_error=False)
            except Exception as exc:
                log.warning("after_commit_redis_failed", error=repr(exc))
                return
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            log.warning("after_commit_redis_failed", error=repr(failed[0]))

    def hand_over(self) -> Claim | None:
        """The key's claim, kept held for the request's next run: `close` lets go of the
        rest but not of it."""
        claim, self.claim = self.claim, None
        return claim

    async def close(self) -> None:
        """Roll back what did not commit, end the session, let go of the key."""
        if self.closed:
            return
        self.closed = True
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
