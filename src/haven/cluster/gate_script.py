"""The gate script: rate-limit step, session touch and cache read in one EVALSHA.

Every authenticated request needs, from Redis: its rate-limit counters checked
and counted, its session read (revocation is immediate) with the TTL slid, and,
for a cached view, its organization's cache version and the cached bytes. The
organization follows from the session, so on a single Redis node one Lua
script does all of it: the edge (haven.cluster.gate.GateMiddleware) runs it
once and leaves a `Prefetch` (haven.store.gate) in the ASGI scope state; the `principal`
dependency and the cached routes read that instead of asking Redis again.

The script is composed from the fragments of the modules that own each format (so
none is written twice): the rate-limit step (haven.store.ratelimit.RATE_STEP_LUA), the
key names (haven.store.client.KEYS_LUA), the session read, max-age check and TTL slide
with the authorization mirror read (haven.auth.sessions.SESSION_TOUCH_LUA, which
SessionStore.lookup runs alone), the versioned cache read
(haven.store.org_cache.CACHED_READ_LUA). Semantics are those of the separate steps: a
request over a limit is refused before the session is touched (and not counted).

The version and cache keys are derived inside the script (not declared in KEYS), which a
single node or Valkey allows; Haven's client is a single-node client (redis.asyncio.Redis).
Supporting a clustered Redis needs hash-tagged keys or a second call (the principal and the
cache keep their own calls for when no prefetch is present).

It lives with the edge, in cluster/ (above auth/), because it is composed from the session
store's fragment, which sits in auth/.
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from haven.auth.sessions import SESSION_TOUCH_LUA
from haven.store import wire
from haven.store.client import KEYS_LUA, Keys
from haven.store.gate import EdgeClaim, Prefetch
from haven.store.idempotency import CLAIM_LUA, LOCK_TTL_MS, new_token
from haven.store.org_cache import CACHED_READ_LUA
from haven.store.ratelimit import RATE_STEP_LUA, Decision, Limit, RateLimiter, decide

# Composed from the fragments of the modules that own each format: the rate-limit step
# (haven.store.ratelimit), the key names (haven.store.client), the session read and TTL
# slide (haven.auth.sessions), the versioned cache read (haven.store.org_cache).
# KEYS[1..n]: rate counters; KEYS[n + 1]: the session.
# ARGV[1]: window ms; ARGV[1 + i]: limit of KEYS[i]; then session TTL, session max age, now,
# key prefix, cache name ('' for none), Idempotency-Key ('' for none), its path, marker token,
# marker TTL ms.
# Denied: {0, i, count, pttl}. Allowed: {1, count1, pttl1, ..., session, authz, version, cached,
# idem key, idem cached, idem claimed}.
GATE_LUA = "\n".join(
    (
        "local n = #KEYS - 1",
        "local window = tonumber(ARGV[1])",
        RATE_STEP_LUA,
        "local skey = KEYS[n + 1]",
        "local ttl = tonumber(ARGV[n + 2])",
        "local max_age = tonumber(ARGV[n + 3])",
        "local now = tonumber(ARGV[n + 4])",
        "local prefix = ARGV[n + 5]",
        "local name = ARGV[n + 6]",
        "local ikey = ARGV[n + 7]",
        "local ipath = ARGV[n + 8]",
        "local itoken = ARGV[n + 9]",
        "local ittl = ARGV[n + 10]",
        KEYS_LUA,
        SESSION_TOUCH_LUA,
        "local oid = decoded and type(decoded['oid']) == 'string' and decoded['oid'] or nil",
        CACHED_READ_LUA,
        CLAIM_LUA,
        "out[#out + 1] = session",
        "out[#out + 1] = authz",
        "out[#out + 1] = version",
        "out[#out + 1] = cached",
        "out[#out + 1] = idem_key",
        "out[#out + 1] = idem_cached",
        "out[#out + 1] = idem_claimed",
        "return out",
    )
)


class Gate:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        limiter: RateLimiter,
        session_ttl: int,
        session_max_age: int,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.limiter = limiter
        self.session_ttl = session_ttl
        self.session_max_age = session_max_age
        self._script = redis.register_script(GATE_LUA)
        self._session_prefix = keys.session("")

    async def run(
        self,
        limits: list[Limit],
        sid: str,
        via_cookie: bool,
        cache_name: str,
        idempotency: tuple[str, str] | None = None,
    ) -> tuple[Decision | None, Prefetch | None]:
        """One round trip. (decision, prefetch): decision None when `limits` is empty;
        prefetch None when a limit refused the request (the session was not touched).
        `idempotency` (key, path) of a keyed POST: the same trip claims the key
        (haven.store.idempotency.CLAIM_LUA), left in `prefetch.claim`."""
        rate = self.keys.rate
        n = len(limits)
        ikey, ipath = idempotency if idempotency is not None else ("", "")
        token = new_token() if idempotency is not None else ""
        args: list[Any] = [
            "EVALSHA",
            self._script.sha,
            n + 1,
            *[rate(limit.scope, limit.ident) for limit in limits],
            self._session_prefix + sid,
            self.limiter.window_ms,
            *[limit.limit for limit in limits],
            self.session_ttl,
            self.session_max_age,
            time.time(),
            self.keys.prefix,
            cache_name,
            ikey,
            ipath,
            token,
            LOCK_TTL_MS,
        ]
        try:
            raw = await wire.call(self.redis, wire.pack(args))
        except NoScriptError:  # a restarted or flushed server: load it, then run it
            raw = await self._script(keys=args[3 : 4 + n], args=args[4 + n :])
        if raw[0] == 0:
            return decide(limits, raw), None
        session, authz, version, cached, idem_key, idem_cached, idem_claimed = raw[1 + 2 * n :]
        claim = None
        if idem_key:
            claim = EdgeClaim(
                idem_key.decode() if isinstance(idem_key, bytes) else idem_key,
                idem_cached,
                token if idem_claimed else None,
            )
        prefetch = Prefetch(
            sid=sid,
            via_cookie=via_cookie,
            session=session,
            authz=authz,
            version=int(version) if version is not None else None,
            cache_name=cache_name,
            cached=cached,
            claim=claim,
        )
        return (decide(limits, raw) if n else None), prefetch
