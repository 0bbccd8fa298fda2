"""API key records in Redis: what every instance checks a key against, in one round trip.

`<prefix>:apikey:<sha256(key)>` holds `{"id", "oid", "uid", "role", "exp"}` for a live key
(`uid` is its creator, `exp` 0 when it never expires), or "x" for a revoked, expired or
unknown one. The database is the source of truth, as for the authorization mirror
(haven.auth.authz): a miss reads the database and re-publishes; revoking drops the record
inside the revoking transaction (so the revocation commits only once Redis let go of the
live record) and writes "x" after the commit. A live record never overwrites "x", so a
reader that loaded the key just before the revocation cannot bring it back.

One EVALSHA per request counts the per-key rate limit, reads the record and the
creator's authorization mirror, and claims the once-a-minute `last_used_at` write.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis

from haven.store.client import Keys
from haven.store.ratelimit import RATE_STEP_LUA, Decision, Limit, decide

REVOKED = b"x"
RECORD_TTL = 300  # seconds; a record re-reads the database at least this often
USED_GRANULARITY = 60  # seconds; last_used_at is written at most once a minute per key

# KEYS[1..n]: rate counters; KEYS[n + 1]: the record; KEYS[n + 2]: the last-used claim.
# ARGV[1]: window ms; ARGV[1 + i]: limit of KEYS[i]; ARGV[n + 2]: authz key prefix;
# ARGV[n + 3]: last-used granularity (s).
# Denied: {0, i, count, pttl}. Allowed: {1, count1, pttl1, ..., record, authz, claimed}.
_CHECK = (
    "local n = #KEYS - 2\nlocal window = tonumber(ARGV[1])\n"
    + RATE_STEP_LUA
    + """
local record = redis.call('GET', KEYS[n + 1])
local authz = false
local claimed = 0
if record and record ~= 'x' then
  local ok, d = pcall(cjson.decode, record)
  if ok and type(d) == 'table' and type(d['uid']) == 'string' then
    authz = redis.call('GET', ARGV[n + 2] .. d['uid'] .. ':authz')
  end
  if redis.call('SET', KEYS[n + 2], '1', 'NX', 'EX', tonumber(ARGV[n + 3])) then
    claimed = 1
  end
end
out[#out + 1] = record
out[#out + 1] = authz
out[#out + 1] = claimed
return out
"""
)

# Publish a live record unless the key is already marked revoked.
_PUBLISH = """
if redis.call('GET', KEYS[1]) == 'x' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return 1
"""


class KeyRecord(msgspec.Struct, frozen=True):
    id: str
    oid: str
    uid: str
    role: str
    exp: float = 0.0  # epoch seconds; 0 = never


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(KeyRecord)


def parse(raw: bytes | None) -> KeyRecord | bytes | None:
    """A live record, REVOKED, or None when missing or unreadable."""
    if raw is None:
        return None
    if raw == REVOKED:
        return REVOKED
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError:
        return None


@dataclass(frozen=True, slots=True)
class Check:
    decision: Decision | None  # None when no limit applies (rate limiting off)
    record: bytes | None
    authz: bytes | None
    claimed: bool  # this request writes last_used_at


class ApiKeyStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.authz_prefix = keys.user_authz("").removesuffix(":authz")
        self._check = redis.register_script(_CHECK)
        self._publish = redis.register_script(_PUBLISH)

    async def check(self, digest: str, limits: list[Limit], window_ms: int) -> Check:
        """One round trip: count the limits, read the record and its creator's mirror."""
        keys = [self.keys.rate(limit.scope, limit.ident) for limit in limits]
        keys += [self.keys.api_key(digest), self.keys.api_key_used(digest)]
        args: list[str | int] = [window_ms, *(limit.limit for limit in limits)]
        args += [self.authz_prefix, USED_GRANULARITY]
        raw = await self._check(keys=keys, args=args)
        if int(raw[0]) == 0:
            return Check(decide(limits, [int(x) for x in raw]), None, None, False)
        counters = [int(x) for x in raw[: 1 + 2 * len(limits)]]
        record, authz, claimed = raw[1 + 2 * len(limits) :]
        decision = decide(limits, counters) if limits else None
        return Check(decision, record or None, authz or None, bool(int(claimed)))

    async def claim_use(self, digest: str) -> bool:
        """The last-used claim outside the one round trip (after a record miss)."""
        key = self.keys.api_key_used(digest)
        return bool(await self.redis.set(key, "1", nx=True, ex=USED_GRANULARITY))

    async def publish(self, digest: str, record: KeyRecord | None, ttl: int) -> None:
        """Mirror what the database says: a live record (unless revoked meanwhile) or "x"."""
        key = self.keys.api_key(digest)
        if record is None:
            await self.redis.set(key, REVOKED, ex=RECORD_TTL)
            return
        await self._publish(keys=[key], args=[_encoder.encode(record), max(1, ttl)])

    async def forget(self, digest: str) -> None:
        await self.redis.delete(self.keys.api_key(digest))
