"""Server-side sessions in Redis: shared by every instance, revoked everywhere at once.

A session is a JSON record under `<prefix>:session:<sid>` with a sliding TTL.
The sid is the secret in the cookie (and in the JWT's `sid` claim); the
public id (`pid`) is what the sessions list shows and DELETE takes, so
listing sessions never leaks a usable credential. A per-user hash maps
pid -> sid for listing and for revoking a member's sessions.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

import msgspec
from redis.asyncio import Redis

from haven.store.client import Keys

# GET the session and slide its TTL in one round trip.
_TOUCH = """
local v = redis.call('GET', KEYS[1])
if v then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return v
"""

LAST_SEEN_GRANULARITY = 60  # seconds; lastSeenAt is rewritten at most once a minute


class SessionData(msgspec.Struct, kw_only=True):
    uid: str
    oid: str
    role: str
    csrf: str
    pid: str
    created: float
    seen: float
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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class SessionStore:
    def __init__(self, redis: Redis, keys: Keys, ttl: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = ttl
        self._touch = redis.register_script(_TOUCH)

    async def create(
        self, *, user_id: str, organization_id: str, role: str, agent: str, ip: str
    ) -> tuple[str, SessionData]:
        sid = secrets.token_urlsafe(32)
        now = time.time()
        data = SessionData(
            uid=user_id,
            oid=organization_id,
            role=role,
            csrf=secrets.token_urlsafe(24),
            pid=secrets.token_hex(8),
            created=now,
            seen=now,
            agent=agent[:300],
            ip=ip[:64],
        )
        index = self.keys.user_sessions(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.session(sid), _encoder.encode(data), ex=self.ttl)
            pipe.hset(index, data.pid, sid)
            pipe.expire(index, self.ttl)
            await pipe.execute()
        return sid, data

    async def get(self, sid: str) -> SessionData | None:
        """The live session for `sid`, sliding its TTL; None when revoked or expired."""
        raw = await self._touch(keys=[self.keys.session(sid)], args=[self.ttl])
        return await self.accept(sid, raw)

    async def accept(self, sid: str, raw: bytes | None) -> SessionData | None:
        """The session from a record already read (and its TTL slid), e.g. by the gate."""
        if raw is None:
            return None
        try:
            data = _decoder.decode(raw)
        except msgspec.DecodeError:
            return None
        now = time.time()
        if now - data.seen > LAST_SEEN_GRANULARITY:
            data.seen = now
            await self.redis.set(
                self.keys.session(sid), _encoder.encode(data), xx=True, keepttl=True
            )
        return data

    async def revoke(self, sid: str, data: SessionData | None = None) -> None:
        if data is None:
            raw = await self.redis.get(self.keys.session(sid))
            data = _decoder.decode(raw) if raw else None
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

    async def revoke_all(self, user_id: str) -> None:
        sids = await self._sids(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            for sid in sids.values():
                pipe.delete(self.keys.session(sid))
            pipe.delete(self.keys.user_sessions(user_id))
            await pipe.execute()

    async def set_role(self, user_id: str, role: str) -> None:
        """A member's new role applies to their live sessions at once."""
        for sid in (await self._sids(user_id)).values():
            raw = await self.redis.get(self.keys.session(sid))
            if raw is None:
                continue
            data = _decoder.decode(raw)
            data.role = role
            await self.redis.set(
                self.keys.session(sid), _encoder.encode(data), xx=True, keepttl=True
            )

    async def count(self) -> int:
        """Active sessions across the cluster (SCAN; for metrics, not the hot path)."""
        total = 0
        async for _ in self.redis.scan_iter(match=self.keys.session("*"), count=1000):
            total += 1
        return total
