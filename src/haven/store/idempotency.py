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

This module holds the Redis side (the cached copy, the in-flight marker) and the
rules; the unit of work (haven.uow.tx) claims the key when it opens a write,
checks and writes the database record in the request's transaction, and calls
`committed` and `release` after it, in that order, in one function.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from redis.asyncio import Redis

from haven.errors import (
    FieldError,
    IdempotencyInFlightError,
    IdempotencyKeyReusedError,
    ValidationError,
)
from haven.store import locks
from haven.store.gate import EdgeClaim

KEY_HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
API_PREFIX = "/api/v1/"
LOCK_TTL_MS = 3_000
# A request that meets another's in-flight marker waits up to this long for it to settle
# (the holder's answer, then replayed; or a stranded marker expiring, then claimed) before
# answering 409. A marker is stranded when the claim reached Redis but its caller never
# heard back (a network cut mid-call): nobody will release it, it expires by its TTL.
IN_FLIGHT_WAIT_MS = LOCK_TTL_MS + 500
IN_FLIGHT_POLL_S = 0.1
RETENTION = timedelta(hours=24)
KEPT_HEADERS = ("etag", "location", "cache-control")
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as a header value allows

log = structlog.get_logger("haven.idempotency")

# The claim as a Lua fragment, for the edge's gate script (haven.cluster.gate_script), which
# learns the organization and user from the session it read: the stored answer's copy, else
# the in-flight marker (SET NX PX), so a keyed POST's claim costs no round trip of its own.
# Expects `prefix`, `oid` (nil: none), `decoded` (the session record or nil), `ikey` (the
# key, '' for none), `ipath`, `itoken`, `ittl`; leaves `idem_key` (false: no claim),
# `idem_cached` (false: none) and `idem_claimed` (1 when the marker was taken).
# `cache_scope_of` spells the same name; tests/integration/perf checks both agree.
CLAIM_LUA = """
local idem_key = false
local idem_cached = false
local idem_claimed = false
if oid and ikey ~= '' and decoded and type(decoded['uid']) == 'string' then
  idem_key = prefix .. ':idem:' .. redis.sha1hex(
    oid .. '\\n' .. decoded['uid'] .. '\\nPOST\\n' .. ipath .. '\\n' .. ikey)
  idem_cached = redis.call('GET', idem_key)
  if not idem_cached then
    if redis.call('SET', idem_key .. ':inflight', itoken, 'NX', 'PX', ittl) then
      idem_claimed = 1
    end
  end
end
"""


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
    released: bool = False


def replay_response(stored: StoredResponse) -> Response[bytes]:
    headers = {**stored.headers, REPLAYED_HEADER: "true"}
    return Response(
        stored.body, status_code=stored.status, media_type=stored.media_type, headers=headers
    )


def replay_handler(_request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, IdempotentReplay)
    return replay_response(exc.stored)


def fingerprint_of(body: bytes) -> str:
    # The same JSON with keys in another order or other whitespace is the same request.
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def _raw_scope(organization_id: Any, user_id: Any, method: str, path: str, key: str) -> bytes:
    return "\n".join((str(organization_id), str(user_id), method, path, key)).encode()


def scope_of(organization_id: Any, user_id: Any, method: str, path: str, key: str) -> str:
    """The database record's `scope_hash` (SHA-256 of the scope)."""
    return hashlib.sha256(_raw_scope(organization_id, user_id, method, path, key)).hexdigest()


def cache_scope_of(organization_id: Any, user_id: Any, method: str, path: str, key: str) -> str:
    """The Redis copy's and marker's name part: SHA-1 of the same scope, which the edge's
    gate script computes itself from the session it read (`CLAIM_LUA`; Lua has no SHA-256)."""
    return hashlib.sha1(  # noqa: S324 - a key name, not a signature
        _raw_scope(organization_id, user_id, method, path, key)
    ).hexdigest()


def answer(stored: StoredResponse, fingerprint: str) -> IdempotentReplay:
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReusedError(
            "This Idempotency-Key was used with a different body; use a new key",
            errors=[FieldError("Idempotency-Key", "already used with a different body")],
        )
    return IdempotentReplay(stored)


def check_key(key: str) -> None:
    if not _KEY_PATTERN.match(key):
        raise ValidationError(
            errors=[FieldError("Idempotency-Key", "must be 1-255 visible ASCII characters")]
        )


def edge_key(scope: Any) -> tuple[str, str] | None:
    """(key, path) of a POST the edge's gate may claim the Idempotency-Key of; None for
    anything else (a malformed key is left to the unit of work, which answers 422)."""
    path = scope.get("path", "")
    if scope.get("method") != "POST" or not path.startswith(API_PREFIX):
        return None
    for name, value in scope.get("headers", ()):
        if name.lower() == b"idempotency-key":
            key = value.decode("latin-1")
            return (key, path) if _KEY_PATTERN.match(key) else None
    return None


def new_token() -> str:
    return locks.new_token()


def from_edge(edge: EdgeClaim, scope: str, fingerprint: str, organization_id: Any) -> Claim | None:
    """The gate's claim as this request's: replay, 422 (other body) or held; None when
    another request holds the key (the caller then waits for it: `claim`)."""
    if edge.cached is not None:
        raise answer(msgspec.msgpack.decode(edge.cached, type=StoredResponse), fingerprint)
    if edge.token is None:
        return None
    lock_key = f"{edge.cache_key}:inflight"
    return Claim(scope, fingerprint, organization_id, edge.cache_key, lock_key, edge.token)


async def claim(
    redis: Redis, scope: str, fingerprint: str, organization_id: Any, cache_key: str
) -> Claim:
    """Take the key's in-flight marker, or raise: replay, 422 (other body) or 409 (still in
    flight after waiting up to IN_FLIGHT_WAIT_MS for it to settle). `cache_key` is the
    key's Redis name (`Keys.idempotency(cache_scope_of(...))`), the one the gate claims."""
    lock_key = f"{cache_key}:inflight"
    deadline = asyncio.get_running_loop().time() + IN_FLIGHT_WAIT_MS / 1000
    while True:
        cached: Any = await redis.get(cache_key)
        if cached is not None:
            raise answer(msgspec.msgpack.decode(cached, type=StoredResponse), fingerprint)
        token = await locks.acquire(redis, lock_key, LOCK_TTL_MS)
        if token is not None:
            return Claim(scope, fingerprint, organization_id, cache_key, lock_key, token)
        if asyncio.get_running_loop().time() >= deadline:
            raise IdempotencyInFlightError(
                "A request with this Idempotency-Key is still being processed; retry shortly"
            )
        await asyncio.sleep(IN_FLIGHT_POLL_S)


def hold(redis: Redis, claim: Claim) -> None:
    """Keep the marker alive while the request runs."""
    claim.refresher = locks.keep_alive(redis, claim.lock_key, claim.token, LOCK_TTL_MS)


async def remember(redis: Redis, claim: Claim, stored: StoredResponse, ttl_ms: int) -> None:
    """Copy a committed answer the database had (its instance died before caching it)."""
    with contextlib.suppress(Exception):
        await redis.set(claim.cache_key, msgspec.msgpack.encode(stored), px=ttl_ms)


async def committed(redis: Redis, claim: Claim) -> None:
    """After the commit: copy the stored response to Redis (a cache; the row is the truth)."""
    if claim.stored is None:
        return
    try:
        await redis.set(
            claim.cache_key,
            msgspec.msgpack.encode(claim.stored),
            px=int(RETENTION.total_seconds() * 1000),
        )
    except Exception as exc:  # the database row still answers the retry
        log.warning("idempotency_cache_failed", error=repr(exc))


def queue_settled(pipe: Any, claim: Claim) -> None:
    """After the commit, queued on the unit of work's one pipeline: `committed`, then the
    marker's release (in that order: a retry finds the copy or, without it, the record)."""
    if claim.refresher is not None:
        claim.refresher.cancel()
    claim.released = True
    if claim.stored is not None:
        pipe.set(
            claim.cache_key,
            msgspec.msgpack.encode(claim.stored),
            px=int(RETENTION.total_seconds() * 1000),
        )
    locks.queue_release(pipe, claim.lock_key, claim.token)


async def release_marker(redis: Redis, cache_key: str, token: str) -> None:
    """Let go of a marker the gate took for a request that never used it."""
    try:
        await locks.release(redis, f"{cache_key}:inflight", token)
    except Exception as exc:  # the marker expires by itself
        log.warning("idempotency_release_failed", error=repr(exc))


async def release(redis: Redis, claim: Claim) -> None:
    if claim.refresher is not None:
        claim.refresher.cancel()
    if claim.released:
        return
    claim.released = True
    try:
        await locks.release(redis, claim.lock_key, claim.token)
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
