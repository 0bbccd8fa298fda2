"""The one Redis client (connection pool) of a process, built in the app's lifespan."""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from haven.config import SENTINEL_SCHEME, Settings, parse_sentinel_url

# How often the pool asks the sentinels who the primary is (besides on every new connection),
# so pooled connections to a primary that was replaced are dropped within this time.
FOLLOW_EVERY = 1.0
# After a connection to the primary could not be made, new connections to that same address
# fail at once for this long (the sentinels are still asked): during an outage a request
# answers 503 quickly instead of waiting out another connect timeout, and a promotion is
# followed at once.
FAIL_FAST = 1.0
# How long one sentinel may take to answer "who is the primary?" before the next is asked:
# a sentinel whose host stopped answering must not hold every reconnect for seconds.
SENTINEL_TIMEOUT = 0.5


def _options() -> dict[str, Any]:
    return {
        "decode_responses": False,
        "socket_connect_timeout": 1.0,
        "socket_timeout": 2.0,
        "health_check_interval": 15,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "max_connections": 256,
    }


def create_redis(settings: Settings, url: str) -> Redis:
    """A pooled asyncio client with short timeouts, so an outage answers fast instead of hanging.

    A `redis+sentinel://` URL (REDIS_SENTINELS + REDIS_SENTINEL_MASTER) gives redis-py's
    Sentinel-managed client: every new connection asks the sentinels for the current
    primary, idle connections to a former primary are dropped when the answer changes,
    and a READONLY reply from a demoted primary closes that connection.
    """
    if url.startswith(SENTINEL_SCHEME):
        return _sentinel_client(settings, url)
    return Redis.from_url(url, password=settings.redis_password, **_options())


class SentinelRedis(Redis):
    """The primary's client; closing it also closes the connections to the sentinels."""

    sentinels: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinels is not None:
            await self.sentinels.aclose()


class FollowingConnection(SentinelManagedConnection):
    """A connection to whatever the sentinels call the primary, failing fast in an outage."""

    async def _connect_retry(self) -> Any:
        if self._reader is not None:
            return None
        pool: Any = self.connection_pool
        # In the window, ask the sentinels (cheap) but do not wait on the address that failed.
        if (
            time.monotonic() < pool.fail_fast_until
            and await pool.get_master_address() == pool.failed_address
        ):
            raise RedisConnectionError("The Redis primary could not be reached just now")
        try:
            return await super()._connect_retry()
        except (RedisConnectionError, RedisTimeoutError, OSError):
            pool.failed_address = pool.master_address
            pool.fail_fast_until = time.monotonic() + FAIL_FAST
            raise


class FollowingPool(SentinelConnectionPool):
    """redis-py's Sentinel pool, checking the primary's address once a second.

    redis-py asks the sentinels only when it opens a connection; pooled connections to
    a primary that was cut off would each wait out a socket timeout before reconnecting.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("connection_class", FollowingConnection)
        super().__init__(*args, **kwargs)
        self._checked = 0.0
        self._checking = False
        self.fail_fast_until = 0.0
        self.failed_address: tuple[str, int] | None = None

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        if now - self._checked >= FOLLOW_EVERY and not self._checking:
            await self._follow(now)
        return await super().get_connection(*args, **kwargs)

    async def _follow(self, now: float) -> None:
        self._checked, self._checking = now, True
        try:
            before = self.master_address
            address = await self.get_master_address()  # drops idle connections on a change
            if before is not None and address != before:
                # Connections busy on the former primary would wait out their timeout.
                await self.disconnect(inuse_connections=True)
                self.fail_fast_until = 0.0
        except (RedisConnectionError, RedisTimeoutError, OSError):
            pass  # no sentinel answered: opening a connection reports it
        finally:
            self._checking = False


def _sentinel_client(settings: Settings, url: str) -> Redis:
    hosts, service = parse_sentinel_url(url)
    sentinel_options: dict[str, Any] = {
        "socket_connect_timeout": SENTINEL_TIMEOUT,
        "socket_timeout": SENTINEL_TIMEOUT,
        # redis-py's default retries a silent sentinel three times with backoff (seconds);
        # the next sentinel in the list is the retry.
        "retry": Retry(NoBackoff(), 0),
    }
    if settings.redis_sentinel_password:
        sentinel_options["password"] = settings.redis_sentinel_password
    sentinel = Sentinel(hosts, sentinel_kwargs=sentinel_options)
    client: SentinelRedis = sentinel.master_for(
        service,
        redis_class=SentinelRedis,
        connection_pool_class=FollowingPool,
        password=settings.redis_password,
        **_options(),
    )
    client.sentinels = sentinel
    return client


class Keys:
    """Every Redis key Haven writes, under one prefix so deployments can share a server.

    KEYS_LUA spells the keys a script derives from what it read (not declared in KEYS).
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def session(self, sid: str) -> str:
        return f"{self.prefix}:session:{sid}"

    def user_sessions(self, user_id: str) -> str:
        return f"{self.prefix}:user-sessions:{user_id}"

    def user_authz(self, user_id: str) -> str:
        return f"{self.prefix}:user:{user_id}:authz"

    def api_key(self, digest: str) -> str:
        return f"{self.prefix}:apikey:{digest}"

    def api_key_used(self, digest: str) -> str:
        return f"{self.prefix}:apikey:{digest}:used"

    def org_version(self, organization_id: str) -> str:
        return f"{self.prefix}:org-version:{organization_id}"

    def cache(self, organization_id: str, name: str, version: int | str) -> str:
        return f"{self.prefix}:cache:{organization_id}:{name}:{version}"

    def rate(self, scope: str, ident: str) -> str:
        return f"{self.prefix}:rate:{scope}:{ident}"

    def idempotency(self, scope: str) -> str:
        return f"{self.prefix}:idem:{scope}"

    def instance(self, instance_id: str) -> str:
        return f"{self.prefix}:instance:{instance_id}"

    def instances(self) -> str:
        return f"{self.prefix}:instances"

    def lock(self, name: str) -> str:
        return f"{self.prefix}:lock:{name}"


# Keys.user_authz, Keys.org_version and Keys.cache as Lua functions, for scripts that derive
# keys from a record they read (haven.store.gate); expects `prefix` (Keys.prefix) in scope.
# tests/integration/store/test_gate_script.py checks both spellings name the same keys.
KEYS_LUA = """
local function user_authz_key(uid) return prefix .. ':user:' .. uid .. ':authz' end
local function org_version_key(oid) return prefix .. ':org-version:' .. oid end
local function cache_key(oid, name, version)
  return prefix .. ':cache:' .. oid .. ':' .. name .. ':' .. version
end
"""
