"""Redis high availability through Sentinel (REDIS_SENTINELS / REDIS_SENTINEL_MASTER).

A real Valkey primary and replica and three real sentinels on loopback. After a
failover the app follows the new primary by itself: the session, the Idempotency-Key
record and the rate-limit gate keep working, and a script missing on the new primary
(NOSCRIPT) is loaded again inside the same request.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from haven.store.embedded import free_port
from support import register
from support_cluster import Spawned, spawn
from support_lb import poll
from support_sentinel import (
    SERVICE,
    primary_of,
    replica_caught_up,
    sentinel_args,
    server_args,
    wait_settled,
)

OPERATOR_TOKEN = secrets.token_urlsafe(24)
PASSWORD = "sentinel-secret-for-tests"


@dataclass
class ValkeySet:
    primary: str
    replica: str
    sentinels: list[str]
    tmp: Path
    stack: contextlib.ExitStack
    nodes: dict[str, Spawned]

    @property
    def url(self) -> str:
        return f"redis+sentinel://{','.join(self.sentinels)}/{SERVICE}"

    def start_node(self, address: str, replica_of: str | None) -> None:
        port = int(address.rpartition(":")[2])
        args = server_args("127.0.0.1", port, self.tmp / f"node-{port}", replica_of=replica_of)
        self.nodes[address] = self.stack.enter_context(
            spawn(args, {}, self.tmp / f"node-{port}.log")
        )


@pytest.fixture(scope="module")
def valkey_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeySet]:
    tmp = tmp_path_factory.mktemp("sentinel")
    primary, replica = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    sentinels = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    with contextlib.ExitStack() as stack:
        valkeys = ValkeySet(primary, replica, sentinels, tmp, stack, {})
        valkeys.start_node(primary, None)
        valkeys.start_node(replica, primary)
        for i, address in enumerate(sentinels):
            port = int(address.rpartition(":")[2])
            args = sentinel_args(tmp / f"s{i}", "127.0.0.1", port, primary, password=PASSWORD)
            stack.enter_context(spawn(args, {}, tmp / f"s{i}.log"))
        wait_settled(sentinels, replicas=1, timeout=30, password=PASSWORD)
        yield valkeys


def _kill_primary_and_wait_for_promotion(valkeys: ValkeySet) -> tuple[str, str]:
    """SIGKILL the primary (no goodbye), wait until the sentinels promote the replica."""
    before = primary_of(valkeys.sentinels, PASSWORD)
    assert before is not None
    replica_caught_up(before, timeout=5)
    valkeys.nodes[before].kill_tree()
    after: str = poll(
        lambda: p if (p := primary_of(valkeys.sentinels, PASSWORD)) != before else None,
        30,
        "the sentinels to promote the replica",
    )
    host, _, port = after.rpartition(":")
    with redis.Redis(host=host, port=int(port)) as node:
        poll(lambda: node.info("replication")["role"] == "master", 10, "the promotion")
    # Every sentinel has the new configuration (they spread it every 2 s).
    poll(
        lambda: all(primary_of([s], PASSWORD) == after for s in valkeys.sentinels),
        15,
        "every sentinel to name the new primary",
    )
    return before, after


@pytest.fixture
def sentinel_app(
    app_factory: Callable[..., TestClient[Any]], valkey_set: ValkeySet
) -> TestClient[Any]:
    return app_factory(
        instance_id="sentinel-1",
        redis_url=valkey_set.url,
        redis_sentinel_password=PASSWORD,
        rate_limit_enabled=True,
        rate_limit_per_user=100_000,
        rate_limit_global=100_000,
        operator_token=OPERATOR_TOKEN,
    )


def test_the_app_follows_a_failover_with_no_failed_request(
    sentinel_app: TestClient[Any], valkey_set: ValkeySet
) -> None:
    client = sentinel_app
    owner = register(client)
    key = {"Idempotency-Key": "sentinel-failover-tenant-1"}
    created = client.post(
        "/api/v1/tenants",
        json={"firstName": "Before", "lastName": "Failover"},
        headers={**owner.headers, **key},
    )
    assert created.status_code == 201, created.text

    old_primary, new_primary = _kill_primary_and_wait_for_promotion(valkey_set)
    try:
        # Every request after the promotion succeeds at the first attempt: pooled
        # connections to the dead primary fail and are re-resolved through the sentinels.
        for _ in range(20):
            me = client.get("/api/v1/auth/me", headers=owner.headers)
            assert me.status_code == 200, me.text  # the session was replicated
            assert me.headers["ratelimit-remaining"]  # the gate script ran on the new primary
    finally:
        # The old primary returns empty (no persistence here) as the new primary's replica.
        valkey_set.start_node(old_primary, new_primary)
    replay = client.post(
        "/api/v1/tenants",
        json={"firstName": "Before", "lastName": "Failover"},
        headers={**owner.headers, **key},
    )
    assert replay.status_code == 201
    assert replay.json()["id"] == created.json()["id"]  # the same write, not a second one
    # Writes land on the new primary: a fresh sign-in creates a session there.
    host, _, port = new_primary.rpartition(":")
    with redis.Redis(host=host, port=int(port)) as node:

        def sessions() -> int:
            return len(list(node.scan_iter(match="haven:session:*", count=1000)))

        before = sessions()
        login = client.post(
            "/api/v1/auth/login", json={"email": owner.email, "password": owner.password}
        )
        assert login.status_code == 200, login.text
        assert sessions() == before + 1
    fresh = {"Authorization": f"Bearer {login.json()['accessToken']}"}
    assert client.get("/api/v1/auth/me", headers=fresh).status_code == 200


def test_scripts_missing_on_the_primary_are_reloaded_within_the_request(
    sentinel_app: TestClient[Any], valkey_set: ValkeySet
) -> None:
    client = sentinel_app
    owner = register(client)
    assert client.get("/api/v1/auth/me", headers=owner.headers).status_code == 200
    primary = primary_of(valkey_set.sentinels, PASSWORD)
    assert primary is not None
    host, _, port = primary.rpartition(":")
    with redis.Redis(host=host, port=int(port)) as node:
        node.script_flush()  # what a freshly promoted replica or a restarted primary has
        assert node.info("memory")["number_of_cached_scripts"] == 0
        for _ in range(3):
            me = client.get("/api/v1/auth/me", headers=owner.headers)
            assert me.status_code == 200, me.text
            assert me.headers["ratelimit-remaining"]
        assert node.info("memory")["number_of_cached_scripts"] >= 1  # loaded again


def test_script_call_reloads_on_noscript_for_asyncio() -> None:
    """redis-py's asyncio Script.__call__ answers NoScriptError with SCRIPT LOAD + EVALSHA."""
    import asyncio

    from redis.asyncio import Redis

    from haven.store.embedded import EmbeddedValkey

    server = EmbeddedValkey().start()

    async def run() -> list[Any]:
        client = Redis.from_url(server.url)
        try:
            script = client.register_script("return ARGV[1]")
            first = await script(args=["a"])
            await client.script_flush()
            second = await script(args=["b"])  # NOSCRIPT inside, no error outside
            return [first, second]
        finally:
            await client.aclose()

    try:
        assert asyncio.run(run()) == [b"a", b"b"]
    finally:
        server.cleanup()


def test_sentinel_settings_are_shown_without_the_password(
    sentinel_app: TestClient[Any], valkey_set: ValkeySet
) -> None:
    view = sentinel_app.get(
        "/api/v1/load-balancer/config", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    )
    assert view.status_code == 200
    assert view.json()["REDIS_SENTINEL_PASSWORD"] == "(set)"
    body = view.text
    assert PASSWORD not in body
    assert valkey_set.sentinels[0] in body


def test_no_master_known_is_503_with_retry_after(
    app_factory: Callable[..., TestClient[Any]], valkey_set: ValkeySet
) -> None:
    """Sentinels that know no such service: a 503 problem with Retry-After, never a 500."""
    client = app_factory(
        instance_id="sentinel-bad",
        redis_url=f"redis+sentinel://{','.join(valkey_set.sentinels)}/no-such-service",
        redis_sentinel_password=PASSWORD,
        rate_limit_enabled=True,
    )
    response = client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "whatever 123"}
    )
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1


def test_locks_work_through_the_sentinel_client(valkey_set: ValkeySet) -> None:
    """SET NX PX and the token-checked release script, on whatever the sentinels call primary."""
    import asyncio

    from haven.config import load_settings
    from haven.store import locks
    from haven.store.client import create_redis

    settings = load_settings(
        {
            "REDIS_SENTINELS": ",".join(valkey_set.sentinels),
            "REDIS_SENTINEL_MASTER": SERVICE,
            "REDIS_SENTINEL_PASSWORD": PASSWORD,
        }
    )
    url = settings.redis_url
    assert url is not None

    async def run() -> list[Any]:
        redis = create_redis(settings, url)
        try:
            first = await locks.acquire(redis, "haven:lock:sentinel-test", 5000)
            second = await locks.acquire(redis, "haven:lock:sentinel-test", 5000)
            released = await locks.release(redis, "haven:lock:sentinel-test", first or "")
            again = await locks.acquire(redis, "haven:lock:sentinel-test", 5000)
            return [first, second, released, again]
        finally:
            await redis.aclose()

    first, second, released, again = asyncio.run(run())
    assert first is not None
    assert second is None  # held
    assert released is True
    assert again is not None
