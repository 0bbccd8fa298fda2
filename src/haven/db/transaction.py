"""One database transaction per request, committed once at the boundary.

The dependency opens the transaction, hands the session to the route, and
commits after the handler returned its response but before a byte is sent,
so a client never sees 201 for a write that did not commit. Services flush,
never commit. Work that must follow a successful commit (bumping a cache
version, storing an idempotent response) is queued with `after_commit`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import structlog
from litestar import Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from haven.errors import IdempotencyInFlightError, VersionMismatchError
from haven.services import Services

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_AFTER_COMMIT = "haven_after_commit"

log = structlog.get_logger("haven.db")

AfterCommit = Callable[[], Awaitable[Any]]


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once the request's transaction has committed."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


async def run_after_commit(session: AsyncSession) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, []):
        try:
            await callback()
        except Exception as exc:  # a cache bump failing must not undo a committed write
            log.warning("after_commit_failed", error=repr(exc))


async def provide_db(
    request: Request[Any, Any, Any], services: Services
) -> AsyncGenerator[AsyncSession]:
    """The request's transaction: read-only for safe methods, committed at the end otherwise.

    A write also honours Idempotency-Key (haven.store.idempotency) and, once it has
    committed, bumps the cache version of every organization it changed, so the next
    cached read on any instance is fresh.
    """
    from haven.store import idempotency, org_cache

    write = request.method not in SAFE_METHODS
    bind = services.write_engine if write else services.read_engine
    async with services.sessionmaker(bind=bind) as session:
        claim = None
        if write:
            # Read by haven.audit.listener at flush time; the principal dependency (resolved
            # alongside this one) stores itself in the request state it points to.
            session.info["audit"] = {
                "instance_id": services.settings.instance_id,
                "request_id": request.scope.get("state", {}).get("request_id"),
                "request_state": request.scope.get("state"),
            }
            org_cache.track_changes(session)
            holder = idempotency.current()
            if holder is not None:
                holder.session = session
            claim = await idempotency.begin(request, services, session)
            if holder is not None:
                holder.claim = claim
        try:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            if write:
                try:
                    await session.commit()
                except StaleDataError:
                    await session.rollback()
                    raise VersionMismatchError(
                        "Another request changed this resource at the same moment; "
                        "read it and retry"
                    ) from None
                except IntegrityError:
                    await session.rollback()
                    if claim is None:
                        raise
                    # Another request with this key committed first (its marker had expired).
                    raise IdempotencyInFlightError(
                        "A request with this Idempotency-Key completed meanwhile; "
                        "retry to replay it"
                    ) from None
                if claim is not None:
                    await idempotency.committed(services, claim)
                await _bump_versions(services, session)
                await run_after_commit(session)
            else:
                await session.rollback()
        finally:
            if claim is not None:
                await idempotency.release(services, claim)


async def _bump_versions(services: Services, session: AsyncSession) -> None:
    from haven.store import org_cache

    try:
        await org_cache.bump(
            services.redis, services.redis_keys, org_cache.changed_organizations(session)
        )
    except Exception as exc:  # cached views then expire by their TTL
        log.warning("cache_version_bump_failed", error=repr(exc))
