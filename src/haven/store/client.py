"""The one Redis client (connection pool) of a process, built in the app's lifespan."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from haven.config import SENTINEL_SCHEME, Settings, parse_sentinel_url

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


def _sentinel_client(settings: Settings, url: str) -> Redis:
    hosts, service = parse_sentinel_url(url)
    sentinel_options: dict[str, Any] = {
        "socket_connect_timeout": SENTINEL_TIMEOUT,
        "socket_timeout": SENTINEL_TIMEOUT,
    }
    if settings.redis_sentinel_password:
        sentinel_options["password"] = settings.redis_sentinel_password
    sentinel = Sentinel(hosts, sentinel_kwargs=sentinel_options)
    client: SentinelRedis = sentinel.master_for(
        service, redis_class=SentinelRedis, password=settings.redis_password, **_options()
    )
    client.sentinels = sentinel
    return client


class Keys:
    """Every Redis key Haven writes, under one prefix so deployments can share a server."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def session(self, sid: str) -> str:
        return f"{self.prefix}:session:{sid}"

    def user_sessions(self, user_id: str) -> str:
        return f"{self.prefix}:user-sessions:{user_id}"

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
