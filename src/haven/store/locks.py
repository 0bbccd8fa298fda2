"""A Redis lock for work that must run once per cluster: SET NX PX plus token-checked release.

Only the holder's token can release or extend a lock, so a holder that
overran its TTL cannot free a lock another instance has taken since.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


def new_token() -> str:
    return secrets.token_hex(16)


async def acquire(redis: Redis, key: str, ttl_ms: int) -> str | None:
    """The lock's token if this caller got it, else None."""
    token = new_token()
    return token if await redis.set(key, token, nx=True, px=ttl_ms) else None


async def release(redis: Redis, key: str, token: str) -> bool:
    return bool(await redis.eval(_RELEASE, 1, key, token))


def queue_release(pipe: Any, key: str, token: str) -> None:
    """`release`, queued on a pipeline (its reply is that of `release`)."""
    pipe.eval(_RELEASE, 1, key, token)


async def extend(redis: Redis, key: str, token: str, ttl_ms: int) -> bool:
    return bool(await redis.eval(_EXTEND, 1, key, token, ttl_ms))


async def _keep_alive(redis: Redis, key: str, token: str, ttl_ms: int) -> None:
    interval = max(ttl_ms / 3000, 0.05)
    while True:
        await asyncio.sleep(interval)
        with contextlib.suppress(Exception):  # a missed refresh only shortens the lock
            if not await extend(redis, key, token, ttl_ms):
                return


def keep_alive(redis: Redis, key: str, token: str, ttl_ms: int) -> asyncio.Task[None]:
    """Refresh the lock every third of its TTL while the holder works; cancel when done."""
    return asyncio.get_running_loop().create_task(_keep_alive(redis, key, token, ttl_ms))


async def acquire_waiting(redis: Redis, key: str, ttl_ms: int, wait: float) -> str | None:
    """The lock's token, trying for up to `wait` seconds; None if it stayed taken."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    token = await acquire(redis, key, ttl_ms)
    while token is None and loop.time() < deadline:
        await asyncio.sleep(0.05)
        token = await acquire(redis, key, ttl_ms)
    return token


async def let_go(redis: Redis, key: str, token: str, refresher: asyncio.Task[None]) -> None:
    """Stop refreshing and release; a release that fails leaves the lock to its TTL."""
    refresher.cancel()
    with contextlib.suppress(Exception):
        await release(redis, key, token)


@contextlib.asynccontextmanager
async def held(
    redis: Redis, key: str, ttl_ms: int, *, wait: float = 0.0
) -> AsyncIterator[str | None]:
    """Hold the lock for the block (token), or yield None if it stayed taken for `wait` seconds."""
    token = await acquire_waiting(redis, key, ttl_ms, wait)
    if token is None:
        yield None
        return
    refresher = keep_alive(redis, key, token, ttl_ms)
    try:
        yield token
    finally:
        await let_go(redis, key, token, refresher)
