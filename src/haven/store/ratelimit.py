"""Rate limits shared by every instance: fixed windows in Redis, checked and counted atomically.

One EVALSHA checks every limit a request falls under (client IP, session,
IP+email on login/register, email alone on login, IP on register, failed
operator tokens), each in its own window, and, only when all allow it, counts the request
against each (INCR, and PEXPIRE when the window starts). Because the check
and the count happen inside one script, two instances can never both take
the last slot: the sum of allowed requests across the cluster stays within
each limit. A denied request is not counted, so hammering does not extend
the penalty beyond the window.

On a clustered Redis the keys of one request may live in different slots;
there, run one script per key (not needed for a single node or Valkey).
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from redis.asyncio import Redis

from haven.config import Settings
from haven.store.client import Keys

# The rate-limit step, shared with haven.store.gate's one-round-trip script. It needs
# `n` (KEYS[1..n] are the counters) in scope and, in the text below, WINDOW stands for the
# window (ms) of KEYS[i]; ARGV[1 + i] is the limit of KEYS[i]. It returns {0, i, count, pttl}
# naming the exhausted limit that frees up last (so Retry-After is when the request can
# pass), or counts every key and leaves `out` = {1, count1, pttl1, count2, pttl2, ...}.
_RATE_STEP = """
local denied = nil
local counts = n > 0 and redis.call('MGET', unpack(KEYS, 1, n)) or {}
for i = 1, n do
  local count = tonumber(counts[i] or '0')
  if count >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      redis.call('PEXPIRE', KEYS[i], WINDOW)
      ttl = WINDOW
    end
    if denied == nil or ttl > denied[4] then
      denied = {0, i, count, ttl}
    end
  end
end
if denied ~= nil then
  return denied
end
local out = {1}
for i = 1, n do
  local count = redis.call('INCR', KEYS[i])
  local ttl = WINDOW
  if count == 1 then
    redis.call('PEXPIRE', KEYS[i], WINDOW)
  else
    ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      redis.call('PEXPIRE', KEYS[i], WINDOW)
      ttl = WINDOW
    end
  end
  out[#out + 1] = count
  out[#out + 1] = ttl
end
"""
# The gate's form: one window for every key, in the local `window`.
RATE_STEP_LUA = _RATE_STEP.replace("WINDOW", "window")

# KEYS: counters. ARGV[1]: unused (the gate's layout); ARGV[1 + i]: limit of KEYS[i];
# ARGV[1 + n + i]: window (ms) of KEYS[i]. Returns {1, count1, pttl1, count2, pttl2, ...}
# when allowed (counted), or {0, i, count, pttl} naming the exhausted limit that frees up last.
_HIT = (
    "local n = #KEYS\n" + _RATE_STEP.replace("WINDOW", "tonumber(ARGV[n + 1 + i])") + "return out\n"
)


class Limit(NamedTuple):
    """One limit a request falls under: `scope` (ip, user, auth...), who, and how many per window.

    `window` is in seconds; 0 means RATE_LIMIT_WINDOW. Only the plain limiter honours another
    window (the gate counts in RATE_LIMIT_WINDOW), so a request under such a limit is counted
    by `RateLimiter.hit`.
    """

    scope: str
    ident: str
    limit: int
    window: int = 0


class Decision(NamedTuple):
    allowed: bool
    limit: int  # of the binding limit (the one with the fewest requests left)
    remaining: int
    reset_ms: int
    scope: str
    window: int = 0  # of the binding limit, seconds (0: RATE_LIMIT_WINDOW)

    @property
    def reset_seconds(self) -> int:
        return max(1, -(-self.reset_ms // 1000))

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(max(self.remaining, 0)).encode()),
            (b"ratelimit-reset", str(self.reset_seconds).encode()),
        ]


def hashed(value: str) -> str:
    """Identifiers (session ids, emails) go into key names hashed, never in clear."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class RateLimiter:
    def __init__(self, redis: Redis, keys: Keys, settings: Settings) -> None:
        self.keys = keys
        self.window_ms = settings.rate_limit_window * 1000
        self._hit = redis.register_script(_HIT)

    async def hit(self, limits: list[Limit]) -> Decision:
        """Check and count one request against every limit, atomically (raises on Redis errors)."""
        keys = [self.keys.rate(limit.scope, limit.ident) for limit in limits]
        windows = [limit.window * 1000 or self.window_ms for limit in limits]
        args = [self.window_ms, *(limit.limit for limit in limits), *windows]
        return decide(limits, [int(x) for x in await self._hit(keys=keys, args=args)])


def decide(limits: list[Limit], raw: list[int]) -> Decision:
    """The Decision from the script's reply (shared with haven.store.gate)."""
    if raw[0] == 0:
        _, index, _count, ttl = raw[:4]
        binding = limits[index - 1]
        return Decision(False, binding.limit, 0, ttl, binding.scope, binding.window)
    assert limits
    best, least = 0, limits[0].limit - raw[1]
    for i in range(1, len(limits)):
        remaining = limits[i].limit - raw[1 + 2 * i]
        if remaining < least:
            best, least = i, remaining
    binding = limits[best]
    return Decision(True, binding.limit, least, raw[2 + 2 * best], binding.scope, binding.window)
