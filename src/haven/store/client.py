"""The one Redis client (connection pool) of a process, built in the app's lifespan."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from haven.config import Settings


def create_redis(settings: Settings, url: str) -> Redis:
    """A pooled asyncio client with short timeouts, so an outage answers fast instead of hanging."""
    return Redis.from_url(
        url,
        password=settings.redis_password,
        decode_responses=False,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        max_connections=256,
    )


class Keys:
    """Every Redis key Haven writes, under one prefix so deployments can share a server."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def session(self, sid: str) -> str:
        return f"{self.prefix}:session:{sid}"

    def user_sessions(self, user_id: str) -> str:
        return f"{self.prefix}:user-sessions:{user_id}"

    def user_authz(self, user_id: str) -> str:
        return f"{self.prefix}:user:{user_id}:authz"

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
