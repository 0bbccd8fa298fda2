"""A real `haven serve` under a sign-in flood: bounded password-hashing memory, clean answers.

500 concurrent sign-ins, each with another email (so no per-email limit applies, as an
attacker rotating emails would do), rate limiting on. Every argon2 hash takes 64 MiB; the
instance runs at most HASH_SLOTS of them at once (one per CPU) and answers the rest 503
with Retry-After once they have waited QUEUE_DEADLINE. The instance's resident memory is
read from /proc during the burst (and its high-water mark, VmHWM, after it). Also here:
path spellings the test client cannot send (literal `/./`, `/../`, a double-encoded slash)
against the real server.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from haven.auth.passwords import HASH_SLOTS
from haven.store.embedded import EmbeddedValkey
from support_lb import Instance, instance_env, instances

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

BURST = 500
MIB = 1024 * 1024
HASH_MIB = 64  # argon2-cffi's default memory cost
# Per running hash: its 64 MiB plus the thread and allocator overhead, rounded up.
PER_SLOT_MIB = 70
# Everything else 500 open connections and requests in flight may hold (buffers, tasks).
MARGIN_MIB = 150


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


@pytest.fixture
def env(database: Any, valkey: EmbeddedValkey) -> dict[str, str]:
    return instance_env(
        HAVEN_ENV="test",
        REDIS_URL=valkey.url,
        REDIS_KEY_PREFIX=f"hash-{secrets.token_hex(4)}",
        DATABASE_URL=database.url,
        SECRET_KEY=secrets.token_urlsafe(48),
        LOG_FORMAT="json",
        RATE_LIMIT_ENABLED="true",
        RATE_LIMIT_GLOBAL="1000000",
        RATE_LIMIT_AUTH="100000",  # per IP+email: high; the per-email limit stays at 50/hour
        DB_POOL_MIN="1",
        DB_POOL_MAX="20",  # more sign-ins hold a connection than hashing slots exist
    )


async def _flood(url: str) -> list[httpx.Response | BaseException]:
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def one(i: int) -> httpx.Response:
            body = {"email": f"flood-{i}-{secrets.token_hex(3)}@example.com", "password": "guess 1"}
            return await client.post("/api/v1/auth/login", json=body)

        return await asyncio.gather(*(one(i) for i in range(BURST)), return_exceptions=True)


def test_a_flood_of_sign_ins_keeps_hashing_memory_bounded(
    env: dict[str, str], tmp_path: Path
) -> None:
    with instances(env, tmp_path, "hash-1") as (instance,):
        # Warm up (first hash, thread pool, connections), then take the baseline.
        for i in range(3):
            body = {"email": f"warm-{i}@example.com", "password": "guess 1"}
            assert (
                httpx.post(instance.url + "/api/v1/auth/login", json=body, timeout=30).status_code
                == 401
            )
        baseline = rss_kib(instance.pid)
        hwm_before = rss_kib(instance.pid, "VmHWM")
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            deadline = time.monotonic() + 200
            while not done.is_set() and time.monotonic() < deadline:
                peak = max(peak, rss_kib(instance.pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            answers = asyncio.run(_flood(instance.url))
        finally:
            done.set()
            sampler.join(5)
        hwm = rss_kib(instance.pid, "VmHWM")
        errors = [a for a in answers if isinstance(a, BaseException)]
        assert not errors, f"{len(errors)} requests failed to connect or read: {errors[:3]!r}"
        responses = [a for a in answers if isinstance(a, httpx.Response)]
        statuses: dict[int, int] = {}
        for response in responses:
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code in (401, 429, 503), (response.status_code, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            if response.status_code in (429, 503):
                assert int(response.headers["retry-after"]) >= 1
        assert statuses.get(401, 0) >= HASH_SLOTS  # hashes did run
        bound_mib = baseline / 1024 + (HASH_SLOTS + 1) * PER_SLOT_MIB + MARGIN_MIB
        measured = max(peak, hwm) / 1024
        summary = (
            f"slots={HASH_SLOTS} baseline={baseline // 1024}MiB sampled-peak={peak // 1024}MiB "
            f"VmHWM={hwm // 1024}MiB (before {hwm_before // 1024}MiB) bound={bound_mib:.0f}MiB "
            f"statuses={dict(sorted(statuses.items()))}"
        )
        print(summary)  # the measurement, recorded in docs/troubleshooting.md
        assert measured <= bound_mib, summary
        # Far below what unbounded hashing would take for this burst.
        assert bound_mib < BURST * HASH_MIB / 10
        # The instance is still there and answers.
        assert instance.get("/health").status_code == 200


def _raw_post(instance: Instance, target: str, body: bytes) -> int:
    """POST `target` byte for byte (no client normalises it); the status code."""
    request = (
        f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", instance.port), timeout=30) as sock:
        sock.sendall(request)
        reply = b""
        for _ in range(1000):  # bounded: each recv waits at most the socket's 30 s
            chunk = sock.recv(4096)
            reply += chunk
            if not chunk or b"\r\n" in reply:
                break
    return int(reply.split(b" ", 2)[1])


def test_the_real_server_sees_every_spelling_of_login_as_one_bucket(
    env: dict[str, str], tmp_path: Path
) -> None:
    spellings = [
        "/api/v1/auth/./login",
        "/api/v1/x/../auth/login",
        "/api/v1/auth//login",
        "//api/v1/auth/login",
        "/api/v1/auth/login/",
        "/api/v1/auth%2Flogin",
        "/api/v1/auth/%2e%2e/auth/login",
        "/api/v1/load-balancer/../auth/login",
    ]
    env = {**env, "RATE_LIMIT_AUTH": str(len(spellings))}
    body = b'{"email": "spelling@example.com", "password": "guess 1"}'
    with instances(env, tmp_path, "spell-1") as (instance,):
        assert [_raw_post(instance, s, body) for s in spellings] == [401] * len(spellings)
        assert _raw_post(instance, "/api/v1/auth/login", body) == 429
        for spelling in spellings:
            assert _raw_post(instance, spelling, body) == 429, spelling
        # Not another route, not a way around: not found.
        assert _raw_post(instance, "/api/v1/auth/login%252F", body) == 404
        assert _raw_post(instance, "/API/v1/auth/login", body) == 404
