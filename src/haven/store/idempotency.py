"""Idempotency-Key for every POST under /api/v1 (the IETF idempotency-key draft's semantics).

A key is scoped to the caller's organization and user, the method and the path.

* The response of a successful POST is stored in an `idempotency_records` row
  written in the SAME database transaction as the POST's own write, so a crash
  between commit and anything after it cannot lose it or let a retry redo the
  write. Redis holds a copy (24 h) as a cache.
* While a request runs, a Redis marker (SET NX PX 3 s, refreshed every second)
  says "in flight": the same key again gets 409 `idempotency-in-flight` with
  Retry-After. If the instance dies the marker expires within seconds; the
  retry then finds the committed record (replay) or nothing (the write never
  committed, so it runs once now).
* Same key + same body within 24 h -> the stored response with
  `Idempotent-Replayed: true`; same key + another body -> 422.
* Failed requests (4xx/5xx) store nothing: the key can be retried.

Wiring: `prepare` runs as a before-request hook (it opens the per-request
holder), `provide_db` calls `begin` and `finish`, and the `capture` after-request
hook adds the record to the request's session just before the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import msgspec
import structlog
from litestar import Request, Response
from litestar.serialization import get_serializer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.errors import (
    FieldError,
    IdempotencyInFlightError,
    IdempotencyKeyReusedError,
    ValidationError,
)
from haven.services import Services
from haven.store import locks

KEY_HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
API_PREFIX = "/api/v1/"
LOCK_TTL_MS = 3_000
RETENTION = timedelta(hours=24)
KEPT_HEADERS = ("etag", "location", "cache-control")
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as a header value allows

log = structlog.get_logger("haven.idempotency")


class StoredResponse(msgspec.Struct, frozen=True):
    fingerprint: str
    status: int
    media_type: str
    headers: dict[str, str]
    body: bytes


class IdempotentReplay(Exception):  # noqa: N818 - not an error: it carries the stored answer
    """Raised by `begin` to answer with a stored response instead of running the handler."""

    def __init__(self, stored: StoredResponse) -> None:
        super().__init__("idempotent replay")
        self.stored = stored


@dataclass
class Claim:
    """This request holds the in-flight marker of its key."""

    scope: str
    fingerprint: str
    organization_id: Any
    cache_key: str
    lock_key: str
    token: str
    refresher: asyncio.Task[None] | None = None
    stored: StoredResponse | None = None


@dataclass
class Holder:
    """Per-request state the hooks and the db dependency share (they may run in other tasks)."""

    request: Request[Any, Any, Any] | None = None
    session: AsyncSession | None = None
    claim: Claim | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_holder: ContextVar[Holder | None] = ContextVar("haven_idempotency", default=None)


def current() -> Holder | None:
    return _holder.get()


async def prepare(request: Request[Any, Any, Any]) -> None:
    """Before-request hook: open the holder for a POST (no-op otherwise)."""
    _holder.set(Holder(request=request) if request.method == "POST" else None)


def replay_response(stored: StoredResponse) -> Response[bytes]:
    headers = {**stored.headers, REPLAYED_HEADER: "true"}
    return Response(
        stored.body, status_code=stored.status, media_type=stored.media_type, headers=headers
    )


def replay_handler(_request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, IdempotentReplay)
    return replay_response(exc.stored)


def _fingerprint(body: bytes) -> str:
    # The same JSON with keys in another order or other whitespace is the same request.
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def _scope(organization_id: Any, user_id: Any, method: str, path: str, key: str) -> str:
    raw = "\n".join((str(organization_id), str(user_id), method, path, key))
    return hashlib.sha256(raw.encode()).hexdigest()


def _answer(stored: StoredResponse, fingerprint: str) -> IdempotentReplay:
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReusedError(
            "This Idempotency-Key was used with a different body; use a new key",
            errors=[FieldError("Idempotency-Key", "already used with a different body")],
        )
    return IdempotentReplay(stored)


async def begin(
    request: Request[Any, Any, Any], services: Services, session: AsyncSession
) -> Claim | None:
    """Claim the request's key, or raise: replay, 422 (other body) or 409 (in flight)."""
    if request.method != "POST" or not request.url.path.startswith(API_PREFIX):
        return None
    key = request.headers.get(KEY_HEADER)
    if key is None:
        return None
    if not _KEY_PATTERN.match(key):
        raise ValidationError(
            errors=[FieldError("Idempotency-Key", "must be 1-255 visible ASCII characters")]
        )
    from haven.auth.principal import has_credentials, provide_principal

    if not has_credentials(request, services):
        return None  # sign-in endpoints: nothing to scope the key to
    principal = await provide_principal(request, services)
    fingerprint = _fingerprint(await request.body())
    scope = _scope(
        principal.organization_id, principal.actor, request.method, request.url.path, key
    )
    redis, keys = services.redis, services.redis_keys
    cache_key = keys.idempotency(scope)
    cached = await redis.get(cache_key)
    if cached is not None:
        raise _answer(msgspec.msgpack.decode(cast(bytes, cached), type=StoredResponse), fingerprint)
    lock_key = f"{cache_key}:inflight"
    token = await locks.acquire(redis, lock_key, LOCK_TTL_MS)
    if token is None:
        raise IdempotencyInFlightError(
            "A request with this Idempotency-Key is still being processed; retry shortly"
        )
    claim = Claim(scope, fingerprint, principal.organization_id, cache_key, lock_key, token)
    try:
        await _check_database(session, claim, redis)
    except BaseException:
        await release(services, claim)
        raise
    claim.refresher = locks.keep_alive(redis, lock_key, token, LOCK_TTL_MS)
    return claim


async def _check_database(session: AsyncSession, claim: Claim, redis: Any) -> None:
    """A committed record whose Redis copy was never written (its instance died): replay it."""
    from haven.models import IdempotencyRecord

    record = (
        await session.execute(
            select(IdempotencyRecord).where(IdempotencyRecord.scope_hash == claim.scope)
        )
    ).scalar_one_or_none()
    if record is None:
        return
    if record.created_at < datetime.now(UTC) - RETENTION:
        await session.delete(record)
        await session.flush()
        return
    stored = StoredResponse(
        fingerprint=record.fingerprint,
        status=record.status_code,
        media_type=record.media_type,
        headers=json.loads(record.headers),
        body=record.body,
    )
    with contextlib.suppress(Exception):
        await redis.set(claim.cache_key, msgspec.msgpack.encode(stored), px=_ttl_ms(record))
    raise _answer(stored, claim.fingerprint)


def _ttl_ms(record: Any) -> int:
    left = record.created_at + RETENTION - datetime.now(UTC)
    return max(int(left.total_seconds() * 1000), 1000)


async def capture(response: Response[Any]) -> Response[Any]:
    """After-request hook: add the successful response's record to the request's transaction."""
    holder = _holder.get()
    if holder is None or holder.claim is None or holder.session is None:
        return response
    # A Response may leave status and media type to the handler's decorator.
    handler = holder.request.route_handler if holder.request is not None else None
    status = response.status_code or (handler.status_code if handler else None) or 200
    if not 200 <= status < 300:
        return response
    from haven.models import IdempotencyRecord

    raw_media = (
        response.media_type or (handler.media_type if handler else None) or "application/json"
    )
    media_type = str(getattr(raw_media, "value", raw_media))
    content = response.content
    body = b"" if content is None else response.render(content, media_type, get_serializer())
    headers = {k: v for k, v in response.headers.items() if k.lower() in KEPT_HEADERS}
    claim = holder.claim
    claim.stored = StoredResponse(claim.fingerprint, status, media_type, headers, body)
    holder.session.add(
        IdempotencyRecord(
            scope_hash=claim.scope,
            organization_id=claim.organization_id,
            fingerprint=claim.fingerprint,
            status_code=status,
            media_type=media_type,
            headers=json.dumps(headers),
            body=body,
        )
    )
    return response


async def committed(services: Services, claim: Claim) -> None:
    """After the commit: copy the stored response to Redis (a cache; the row is the truth)."""
    if claim.stored is None:
        return
    try:
        await services.redis.set(
            claim.cache_key,
            msgspec.msgpack.encode(claim.stored),
            px=int(RETENTION.total_seconds() * 1000),
        )
    except Exception as exc:  # the database row still answers the retry
        log.warning("idempotency_cache_failed", error=repr(exc))


async def release(services: Services, claim: Claim) -> None:
    if claim.refresher is not None:
        claim.refresher.cancel()
    try:
        await locks.release(services.redis, claim.lock_key, claim.token)
    except Exception as exc:  # the marker expires by itself
        log.warning("idempotency_release_failed", error=repr(exc))


def document(openapi: Any) -> None:
    """Declare the optional Idempotency-Key header on every API POST in the OpenAPI document."""
    from litestar.openapi.spec import OpenAPIType, Parameter, Schema

    header = Parameter(
        name="Idempotency-Key",
        param_in="header",
        required=False,
        description=(
            "Optional. A retry with the same key and body within 24 h gets the stored response "
            "(`Idempotent-Replayed: true`) on any instance; another body -> 422; still in "
            "flight -> 409 `idempotency-in-flight` with Retry-After."
        ),
        schema=Schema(
            type=OpenAPIType.STRING, min_length=1, max_length=255, pattern=_KEY_PATTERN.pattern
        ),
    )
    for path, item in (openapi.paths or {}).items():
        operation = getattr(item, "post", None)
        if operation is None or not path.startswith(API_PREFIX) or path.startswith("/api/v1/auth/"):
            continue
        params = list(operation.parameters or [])
        if not any(getattr(p, "name", None) == header.name for p in params):
            operation.parameters = [*params, header]


async def purge_expired(session: AsyncSession, now: datetime | None = None) -> int:
    """Delete records past the 24 h window (their Redis copies expire by themselves)."""
    from sqlalchemy import delete

    from haven.models import IdempotencyRecord

    result = await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.created_at < (now or datetime.now(UTC)) - RETENTION
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
