"""The hot path's single round trip: rate-limit step, session touch and cache read in one EVALSHA.

Every authenticated request needs, from Redis: its rate-limit counters checked
and counted, its session read (revocation is immediate) with the TTL slid, and,
for a cached view, its organization's cache version and the cached bytes. The
organization follows from the session, so on a single Redis node one Lua
script does all of it: the edge middleware (haven.cluster.ratelimit) runs it
once and leaves a `Prefetch` in the ASGI scope state; the `principal`
dependency and the cached routes read that instead of asking Redis again.

Semantics are those of the separate steps it replaces: a request over a limit
is refused before the session is touched (and not counted); the session read
refuses a session past its absolute lifetime and slides its TTL (never beyond
it) exactly like SessionStore.get, and reads the user's authorization mirror
(haven.auth.authz) beside it; the version is read before the cached value, as
org_cache.cached does. The version and cache keys are derived
inside the script (not declared in KEYS), which a single node or Valkey allows;
Haven's client is a single-node client (redis.asyncio.Redis). Supporting a
clustered Redis needs hash-tagged keys or a second call (the principal and the
cache keep their own calls for when no prefetch is present).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from haven.store.client import Keys
from haven.store.ratelimit import RATE_STEP_LUA, Decision, Limit, RateLimiter, decide

SCOPE_KEY = "haven_prefetch"

# Read a session, refuse it past its absolute lifetime, slide its TTL (never beyond that
# lifetime) and read its user's authorization mirror. Expects `skey`, `ttl`, `max_age`, `now`
# and `authz_prefix` in scope; leaves `session` (false when gone), `decoded` and `authz`.
SESSION_TOUCH_LUA = """
local session = redis.call('GET', skey)
local decoded = nil
local authz = false
if session then
  local ok, d = pcall(cjson.decode, session)
  if ok and type(d) == 'table' then decoded = d end
  local created = decoded and tonumber(decoded['created'])
  if created then
    local left = math.floor(created + max_age - now)
    if left <= 0 then
      redis.call('DEL', skey)
      session = false
      decoded = nil
    elseif left < ttl then
      ttl = left
    end
  end
  if session then
    redis.call('EXPIRE', skey, ttl)
    if decoded and type(decoded['uid']) == 'string' then
      authz = redis.call('GET', authz_prefix .. decoded['uid'] .. ':authz')
    end
  end
end
"""

# KEYS[1..n]: rate counters; KEYS[n + 1]: the session.
# ARGV[1]: window ms; ARGV[1 + i]: limit of KEYS[i]; then session TTL, org-version key
# prefix, cache key prefix, cache name ('' for none), session max age, now, authz prefix.
# Denied: {0, i, count, pttl}. Allowed: {1, count1, pttl1, ..., session, version, cached, authz}.
_GATE = (
    "local n = #KEYS - 1\nlocal window = tonumber(ARGV[1])\n"
    + RATE_STEP_LUA
    + """
local skey = KEYS[n + 1]
local ttl = tonumber(ARGV[n + 2])
local max_age = tonumber(ARGV[n + 6])
local now = tonumber(ARGV[n + 7])
local authz_prefix = ARGV[n + 8]
"""
    + SESSION_TOUCH_LUA
    + """
local version = false
local cached = false
if decoded and type(decoded['oid']) == 'string' then
  local oid = decoded['oid']
  version = redis.call('GET', ARGV[n + 3] .. oid) or '0'
  local name = ARGV[n + 5]
  if name ~= '' then
    cached = redis.call('GET', ARGV[n + 4] .. oid .. ':' .. name .. ':' .. version)
  end
end
out[#out + 1] = session
out[#out + 1] = version
out[#out + 1] = cached
out[#out + 1] = authz
return out
"""
)

# Routes whose cached bytes the gate fetches: path -> the cache name of now.
_CACHED_ROUTES: dict[str, Callable[[], str]] = {}


def cached_route(path: str, name: Callable[[], str]) -> None:
    """Let the gate prefetch `path`'s cached view (GET only), named by `name()` per request."""
    _CACHED_ROUTES[path] = name
    _CACHED_ROUTES[path.rstrip("/") + "/"] = name


def cache_name_for(method: str, path: str) -> str:
    if method != "GET":
        return ""
    name = _CACHED_ROUTES.get(path)
    return name() if name is not None else ""


@dataclass(slots=True)
class Prefetch:
    """What the gate read for this request; `session` None means revoked or expired.

    `authz` is the user's authorization mirror (haven.auth.authz), None when missing."""

    sid: str
    via_cookie: bool
    session: bytes | None
    authz: bytes | None
    version: int | None  # the organization's cache version (None: session unreadable)
    cache_name: str
    cached: bytes | None


def prefetch_of(scope: Any) -> Prefetch | None:
    state = scope.get("state") if isinstance(scope, dict) else None
    if not state:
        return None
    value = state.get(SCOPE_KEY)
    return value if isinstance(value, Prefetch) else None


class Gate:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        limiter: RateLimiter,
        session_ttl: int,
        session_max_age: int,
    ) -> None:
        self.keys = keys
        self.limiter = limiter
        self.session_ttl = session_ttl
        self.session_max_age = session_max_age
        self.authz_prefix = keys.user_authz("").removesuffix(":authz")
        self.version_prefix = keys.org_version("")
        self.cache_prefix = f"{keys.prefix}:cache:"
        self._gate = redis.register_script(_GATE)

    async def run(
        self, limits: list[Limit], sid: str, via_cookie: bool, cache_name: str
    ) -> tuple[Decision | None, Prefetch | None]:
        """One round trip. (decision, prefetch): decision None when `limits` is empty;
        prefetch None when a limit refused the request (the session was not touched)."""
        keys = [self.keys.rate(limit.scope, limit.ident) for limit in limits]
        keys.append(self.keys.session(sid))
        args: list[Any] = [self.limiter.window_ms, *(limit.limit for limit in limits)]
        args += [self.session_ttl, self.version_prefix, self.cache_prefix, cache_name]
        args += [self.session_max_age, time.time(), self.authz_prefix]
        raw = await self._gate(keys=keys, args=args)
        if int(raw[0]) == 0:
            return decide(limits, [int(x) for x in raw]), None
        counters = [int(x) for x in raw[: 1 + 2 * len(limits)]]
        session, version, cached, authz = raw[1 + 2 * len(limits) :]
        decision = decide(limits, counters) if limits else None
        prefetch = Prefetch(
            sid=sid,
            via_cookie=via_cookie,
            session=session,
            authz=authz,
            version=int(version) if version is not None else None,
            cache_name=cache_name,
            cached=cached,
        )
        return decision, prefetch
