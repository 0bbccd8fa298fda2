"""Server-side sessions in Redis: shared by every instance, revoked everywhere at once.

A session is a JSON record under `<prefix>:session:<sid>` with a sliding TTL that never
runs past its absolute lifetime (`created` + SESSION_MAX_AGE). The sid is the secret in
the cookie (and in the JWT's `sid` claim); the public id (`pid`) is what the sessions list
shows and DELETE takes, so listing sessions never leaks a usable credential. A per-user
hash maps pid -> sid for listing and for deleting a user's sessions; it lives as long as
the newest session can, and nothing relies on it for security: who may do what comes from
the database, mirrored per user in `<prefix>:user:<uid>:authz` (haven.auth.authz), and a
session carries only the credential epoch it was created under, never a role.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from redis.asyncio import Redis

from haven.auth import tokens
from haven.config import Settings
from haven.store.client import KEYS_LUA, Keys

# The session read every request makes, as a Lua fragment (this module owns the record's
# format): GET the session, refuse it past its absolute lifetime (`created` + max age, in
# the JSON this module writes), slide its TTL (never beyond that lifetime) and read its
# user's authorization mirror (haven.auth.authz). Expects `skey`, `ttl`, `max_age`, `now`
# and KEYS_LUA's functions in scope; leaves `session` (false when gone), `decoded` (the
# record as a table, nil when gone or unreadable) and `authz` (false when missing).
# SessionStore.lookup runs it alone; the edge gate (haven.store.gate) runs it between the
# rate-limit step and the cached-view read, in one round trip. It also rewrites the
# record's lastSeen when it is over LAST_SEEN_GRANULARITY old (`session` is then the new
# record), so no request needs a second round trip for it.
LAST_SEEN_GRANULARITY = 60  # seconds; lastSeenAt is rewritten at most once a minute
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
    -- lastSeen, at most once a minute, in the same call (accept() then finds it fresh)
    local seen = decoded and tonumber(decoded['seen'])
    if seen and now - seen > LAST_SEEN_GRANULARITY then
      decoded['seen'] = now
      session = cjson.encode(decoded)
      redis.call('SET', skey, session, 'KEEPTTL')
    end
    if decoded and type(decoded['uid']) == 'string' then
      authz = redis.call('GET', user_authz_key(decoded['uid']))
    end
  end
end
""".replace("LAST_SEEN_GRANULARITY", str(LAST_SEEN_GRANULARITY))

# KEYS[1]: the session. ARGV: TTL, max age, now, key prefix. Returns {session, authz}.
_TOUCH = "\n".join(
    (
        "local prefix = ARGV[4]",
        KEYS_LUA,
        "local skey = KEYS[1]",
        "local ttl = tonumber(ARGV[1])",
        "local max_age = tonumber(ARGV[2])",
        "local now = tonumber(ARGV[3])",
        SESSION_TOUCH_LUA,
        "return {session, authz}",
    )
)

# Set numeric fields of a live session record in place (keeping its TTL): a request that
# read the record earlier can never write an older copy of it back.
_STAMP = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, d = pcall(cjson.decode, v)
if not ok or type(d) ~= 'table' then return 0 end
for i = 1, #ARGV, 2 do d[ARGV[i]] = tonumber(ARGV[i + 1]) end
redis.call('SET', KEYS[1], cjson.encode(d), 'KEEPTTL')
return 1
"""

# Store a user's authorization mirror unless a newer one (higher epoch, then higher
# membership version) is there: a reader that loaded an older state from the database
# cannot overwrite what a committed change published. 'x' (removed) always wins.
# KEYS[1]: the mirror; ARGV[1]: 'epoch:version:role' or 'x'; ARGV[2]: TTL seconds.
_PUBLISH = """
local new = ARGV[1]
local cur = redis.call('GET', KEYS[1])
if cur and new ~= 'x' then
  if cur == 'x' then return 0 end
  local ce, cv = string.match(cur, '^(%d+):(%d+):')
  local ne, nv = string.match(new, '^(%d+):(%d+):')
  if ce and ne then
    ce, cv, ne, nv = tonumber(ce), tonumber(cv), tonumber(ne), tonumber(nv)
    if ne < ce or (ne == ce and nv < cv) then return 0 end
  end
end
redis.call('SET', KEYS[1], new, 'EX', ARGV[2])
return 1
"""

AUTHZ_TTL = 300  # seconds; the mirror re-reads the database at least this often


class SessionData(msgspec.Struct, kw_only=True):
    uid: str
    oid: str
    csrf: str
    pid: str
    created: float
    seen: float
    epoch: int = 0  # the user's credential epoch when the session was created
    agent: str = ""
    ip: str = ""


class SessionInfo(msgspec.Struct, rename="camel"):
    id: str
    created_at: datetime
    last_seen_at: datetime
    user_agent: str
    ip: str
    current: bool


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(SessionData)


def session_id_from_scope(scope: Any, settings: Settings) -> tuple[str | None, bool]:
    """(sid, via_cookie) of a request, from its raw ASGI headers: the one reading of it
    (the edge gate and the `principal` dependency both use this).

    A Bearer token wins over the cookie when both are sent; a forged, expired or
    malformed token names no session (and the cookie is then not consulted).
    """
    authorization = cookie = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            if authorization is None:
                authorization = value
        elif name == b"cookie":
            cookie = value if cookie is None else cookie + b"; " + value
    if authorization:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and (token := token.strip()):
            return tokens.session_id(settings.secret_key, token), False
    if cookie:
        wanted = settings.session_cookie_name
        for part in cookie.decode("latin-1").split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == wanted:
                sid = value.strip().strip('"')
                return (sid if 0 < len(sid) <= 128 else None), True
    return None, True


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class SessionStore:
    def __init__(self, redis: Redis, keys: Keys, ttl: int, max_age: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = ttl
        self.max_age = max_age
        self._touch = redis.register_script(_TOUCH)
        self._stamp = redis.register_script(_STAMP)
        self._publish = redis.register_script(_PUBLISH)

    def expires_at(self, data: SessionData) -> float:
        """When the session ends at the latest, however much it is used."""
        return data.created + self.max_age

    async def create(
        self, *, user_id: str, organization_id: str, epoch: int, agent: str, ip: str
    ) -> tuple[str, SessionData]:
        sid = secrets.token_urlsafe(32)
        now = time.time()
        data = SessionData(
            uid=user_id,
            oid=organization_id,
            csrf=secrets.token_urlsafe(24),
            pid=secrets.token_hex(8),
            created=now,
            seen=now,
            epoch=epoch,
            agent=agent[:300],
            ip=ip[:64],
        )
        index = self.keys.user_sessions(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.session(sid), _encoder.encode(data), ex=min(self.ttl, self.max_age))
            pipe.hset(index, data.pid, sid)
            # No session of this user can outlive the newest one's max age.
            pipe.expire(index, self.max_age)
            await pipe.execute()
        return sid, data

    async def lookup(self, sid: str) -> tuple[bytes | None, bytes | None]:
        """(session record, authorization mirror) for `sid`, sliding the session's TTL."""
        raw = await self._touch(
            keys=[self.keys.session(sid)],
            args=[self.ttl, self.max_age, time.time(), self.keys.prefix],
        )
        session, authz = raw
        return session, authz

    async def get(self, sid: str) -> SessionData | None:
        """The live session for `sid`, sliding its TTL; None when revoked or expired."""
        session, _authz = await self.lookup(sid)
        return await self.accept(sid, session)

    async def accept(self, sid: str, raw: bytes | None) -> SessionData | None:
        """The session from a record already read (and its TTL slid), e.g. by the gate."""
        if raw is None:
            return None
        try:
            data = _decoder.decode(raw)
        except msgspec.DecodeError:
            return None
        now = time.time()
        if now >= self.expires_at(data):
            await self.revoke(sid, data)
            return None
        if now - data.seen > LAST_SEEN_GRANULARITY:
            data.seen = now
            await self._stamp(keys=[self.keys.session(sid)], args=["seen", now])
        return data

    async def stamp_epoch(self, sid: str, epoch: int) -> None:
        """Keep this session valid across its user's credential change."""
        await self._stamp(keys=[self.keys.session(sid)], args=["epoch", epoch])

    async def forget_authz(self, user_id: str) -> None:
        """Drop the user's authorization mirror: the next request reads the database."""
        await self.redis.delete(self.keys.user_authz(user_id))

    async def publish_authz(self, user_id: str, value: str) -> None:
        """Mirror the user's committed authorization state ('epoch:version:role' or 'x')."""
        ttl = max(self.max_age, AUTHZ_TTL) if value == "x" else AUTHZ_TTL
        await self._publish(keys=[self.keys.user_authz(user_id)], args=[value, ttl])

    async def revoke(self, sid: str, data: SessionData | None = None) -> None:
        if data is None:
            raw = await self.redis.get(self.keys.session(sid))
            try:
                data = _decoder.decode(raw) if raw else None
            except msgspec.DecodeError:
                data = None
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.session(sid))
            if data is not None:
                pipe.hdel(self.keys.user_sessions(data.uid), data.pid)
            await pipe.execute()

    async def _sids(self, user_id: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.keys.user_sessions(user_id))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def list_for_user(self, user_id: str, current_pid: str | None) -> list[SessionInfo]:
        sids = await self._sids(user_id)
        if not sids:
            return []
        pids = list(sids)
        values = await self.redis.mget([self.keys.session(sids[p]) for p in pids])
        out: list[SessionInfo] = []
        stale: list[str] = []
        for pid, raw in zip(pids, values, strict=True):
            if raw is None:
                stale.append(pid)
                continue
            data = _decoder.decode(raw)
            out.append(
                SessionInfo(
                    id=pid,
                    created_at=_ts(data.created),
                    last_seen_at=_ts(data.seen),
                    user_agent=data.agent,
                    ip=data.ip,
                    current=pid == current_pid,
                )
            )
        if stale:
            await self.redis.hdel(self.keys.user_sessions(user_id), *stale)
        out.sort(key=lambda s: s.created_at, reverse=True)
        return out

    async def revoke_public(self, user_id: str, pid: str) -> bool:
        sid = (await self._sids(user_id)).get(pid)
        if sid is None:
            return False
        await self.revoke(sid)
        return True

    async def revoke_all(self, user_id: str, keep_sid: str | None = None) -> None:
        """Delete the user's sessions (but `keep_sid`). Housekeeping: the credential epoch,
        not this, is what refuses a session the index no longer names."""
        sids = await self._sids(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            for pid, sid in sids.items():
                if sid == keep_sid:
                    continue
                pipe.delete(self.keys.session(sid))
                pipe.hdel(self.keys.user_sessions(user_id), pid)
            await pipe.execute()

    async def count(self) -> int:
        """Active sessions across the cluster (SCAN; for metrics, not the hot path)."""
        total = 0
        async for _ in self.redis.scan_iter(match=self.keys.session("*"), count=1000):
            total += 1
        return total
