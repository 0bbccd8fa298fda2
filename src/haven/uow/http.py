"""How a request gets its unit of work: the `db` dependency and the write boundary.

A safe request (GET, HEAD, OPTIONS) gets a read-only session on the read engine,
rolled back at the end. A write gets the session of a `RequestTx` (haven.uow.tx)
opened for the request's principal; the route's services only flush.

The write boundary is the middleware of the /api/v1 router. It holds the answer
back until the unit of work has finished with it: once the handler and its error
handling produced the response, `RequestTx.finish` commits it (storing it as the
Idempotency-Key answer) or rolls it back, and only then does a byte leave, so a
client never sees 201 for a write that did not commit. A commit that fails
(a concurrent change, 409) is answered by the app's error handler instead.

When the commit raises `Stale` (a service read without a lock, and what it read changed
before the commit: nothing was written), the boundary runs the request once more, the
Idempotency-Key's claim kept for it; that run sees `uow.is_rerun` and locks what it reads.

The dependency hands the open `RequestTx` to the boundary in the request's scope
under `TX_KEY`, and a second run its claim under `CLAIM_KEY`; nothing else is passed
that way.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from litestar import Request
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.principal import Principal
from haven.errors import ConflictError
from haven.services import Services, services_of
from haven.store import idempotency
from haven.store.gate import prefetch_of
from haven.store.idempotency import API_PREFIX, KEPT_HEADERS, KEY_HEADER, release_marker
from haven.uow.actor import ANONYMOUS, Actor
from haven.uow.tail import Stale
from haven.uow.tx import Answer, IdempotencyRequest, RequestTx

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TX_KEY = "haven_request_tx"
CLAIM_KEY = "haven_request_claim"  # set for a second run: the key's claim (None: no key)
# A write's runs: a second when the first one's commit found `Stale` what it read without a
# lock (nothing written); the second locks what it reads (haven.uow `is_rerun`).
RUNS = 2


def actor_of(principal: Principal) -> Actor:
    """The audit actor (and Idempotency-Key owner) of an authenticated request."""
    if principal.api_key_id is not None:
        return Actor.api_key(principal.api_key_id, principal.organization_id, principal.user_id)
    return Actor.user(principal.user_id, principal.organization_id)


async def _open_write(
    request: Request[Any, Any, Any], services: Services, actor: Actor
) -> RequestTx:
    key = request.headers.get(KEY_HEADER)
    idempotent = None
    if key is not None and request.method == "POST" and request.url.path.startswith(API_PREFIX):
        idempotent = IdempotencyRequest(key, request.method, request.url.path, await request.body())
    prefetch = prefetch_of(request.scope)
    state = request.scope.setdefault("state", {})
    tx = await RequestTx.open(
        services.sessionmaker(bind=services.write_engine),
        services.redis,
        services.redis_keys,
        actor,
        instance_id=services.settings.instance_id,
        request_id=request.scope.get("state", {}).get("request_id"),
        idempotent=idempotent,
        edge=prefetch.take_claim() if prefetch is not None else None,
        rerun=CLAIM_KEY in state,
        claimed=state.pop(CLAIM_KEY, None),
    )
    state[TX_KEY] = tx
    return tx


async def provide_db(
    request: Request[Any, Any, Any], services: Services, principal: Principal
) -> AsyncGenerator[AsyncSession]:
    """The request's session: read-only for safe methods, a unit of work otherwise.

    The dependency yields the session itself, never through a nested generator: Litestar
    throws a failed handler's error into this generator, so the rollback below runs at once
    (a nested generator would be left suspended and closed later by the garbage collector,
    in a task racing the write boundary's rollback: IllegalStateChangeError, logged as
    "Task exception was never retrieved", on every refused write)."""
    if request.method in SAFE_METHODS:
        async with services.sessionmaker(bind=services.read_engine) as session:
            try:
                yield session
            finally:
                await session.rollback()
        return
    tx = await _open_write(request, services, actor_of(principal))
    try:
        yield tx.session
    except BaseException:
        await tx.close()  # the handler failed: roll back now; its error answer passes through
        raise


async def provide_anonymous_db(
    request: Request[Any, Any, Any], services: Services
) -> AsyncGenerator[AsyncSession]:
    """The unit of work of a write nobody is signed in for (sign-up, sign-in)."""
    tx = await _open_write(request, services, ANONYMOUS)
    try:
        yield tx.session
    except BaseException:
        await tx.close()  # the handler failed: roll back now; its error answer passes through
        raise


def _answer(held: list[Message]) -> Answer:
    status, headers, body = 500, {}, bytearray()
    for message in held:
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1")
                for k, v in message.get("headers", [])
            }
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")
    media_type = headers.get("content-type", "application/json")
    kept = {k: v for k, v in headers.items() if k in KEPT_HEADERS}
    return Answer(status, media_type, kept, bytes(body))


async def _release_unused_claim(scope: Scope) -> None:
    """A key the edge claimed for a request that never opened a unit of work (refused by its
    principal, its CSRF check or its validation): let go of the marker now."""
    prefetch = prefetch_of(scope)
    edge = prefetch.take_claim() if prefetch is not None else None
    if edge is not None and edge.token is not None:
        await release_marker(services_of(scope["app"]).redis, edge.cache_key, edge.token)


def write_boundary(app: ASGIApp) -> ASGIApp:
    """Middleware: finish a write's unit of work before its answer is sent."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in SAFE_METHODS:
            await app(scope, receive, send)
            return
        try:
            for run in range(1, RUNS + 1):
                held = await _run(app, scope, receive, last=run == RUNS)
                if held is not None:
                    break
        finally:
            claim = scope.get("state", {}).pop(CLAIM_KEY, None)
            if claim is not None:  # handed over to a run that opened no unit of work
                await idempotency.release(services_of(scope["app"]).redis, claim)
        for message in held or ():
            await send(message)

    return middleware


async def _run(app: ASGIApp, scope: Scope, receive: Receive, *, last: bool) -> list[Message] | None:
    """One run of a write: the answer to send, or None when its commit found `Stale` what
    it read without a lock (nothing written; the key's claim handed over to the next run).
    The last run answers that as a 409."""
    held: list[Message] = []

    async def hold(message: Message) -> None:
        held.append(message)

    state = scope.setdefault("state", {})
    try:
        try:
            await app(scope, receive, hold)
            tx: RequestTx | None = state.get(TX_KEY)
            if tx is not None:
                await tx.finish(_answer(held))
        except Stale:
            if last:
                raise ConflictError(
                    "This conflicts with changes made at the same moment; retry"
                ) from None
            tx = state.get(TX_KEY)
            if tx is not None:
                state[CLAIM_KEY] = tx.hand_over()
            ScopeState.from_scope(scope).response_started = False  # nothing held has left
            return None
        finally:
            tx = state.pop(TX_KEY, None)
            if tx is not None:
                await tx.close()
            await _release_unused_claim(scope)
    except BaseException:
        # Nothing held has left, whatever Litestar's inner error layer noted when the
        # handler's answer reached `hold`: clear that note so the app's error handler
        # answers the failed commit (409, or 503 for a lost database connection) instead
        # of giving up with a 500 "after the response started".
        ScopeState.from_scope(scope).response_started = False
        raise
    return held
