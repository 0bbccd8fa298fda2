"""The rate-limit script on a real Valkey: when several limits are exhausted at once,
Retry-After is when the request can pass, not when the first of them frees up."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from redis.asyncio import Redis

from haven.cluster.gate_script import Gate
from haven.config import Settings
from haven.store.client import Keys
from haven.store.embedded import EmbeddedValkey
from haven.store.ratelimit import Decision, Limit, RateLimiter


async def _twice(url: str, through_gate: bool) -> tuple[Decision, Decision, int]:
    redis = Redis.from_url(url)
    try:
        keys = Keys(f"t{secrets.token_hex(4)}")
        limiter = RateLimiter(redis, keys, Settings(instance_id="unit", rate_limit_window=60))
        gate = Gate(redis, keys, limiter, session_ttl=600, session_max_age=3600)
        limits = [Limit("ip", "203.0.113.7", 1), Limit("user", "abc", 1)]

        async def hit() -> Decision:
            if not through_gate:
                return await limiter.hit(limits)
            decision, _ = await gate.run(limits, "sid", False, "")
            assert decision is not None
            return decision

        first = await hit()
        # The IP's window started earlier and ends in 20 s; the session's runs a minute.
        await redis.pexpire(keys.rate("ip", "203.0.113.7"), 20_000)
        second = await hit()
        ip_count = int(await redis.get(keys.rate("ip", "203.0.113.7")) or 0)
        return first, second, ip_count
    finally:
        await redis.aclose()


@pytest.mark.parametrize("through_gate", [False, True], ids=["limiter", "gate"])
def test_retry_after_waits_for_the_last_exhausted_limit(
    valkey: EmbeddedValkey, through_gate: bool
) -> None:
    first, second, ip_count = asyncio.run(_twice(valkey.url, through_gate))
    assert first.allowed
    assert not second.allowed
    assert (second.scope, second.limit, second.remaining) == ("user", 1, 0)
    assert second.reset_seconds > 20  # after the IP's 20 s the session is still limited
    assert ip_count == 1  # a refused request is not counted
