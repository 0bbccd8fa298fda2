"""A shared dependency going down degrades requests to 503 problem+json, never pulls /ready,
and everything recovers by itself when the dependency returns."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from haven.store.embedded import EmbeddedValkey, free_port
from support import assert_problem, create_property, register
from support_lb import poll

PG_ENV = "HAVEN_TEST_DATABASE_URL"


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[EmbeddedValkey]:
    """A Valkey this test may stop and restart on the same port (AOF keeps sessions)."""
    port = free_port()
    data = tmp_path / "valkey"
    servers = [EmbeddedValkey(port, appendonly=True, data_dir=data).start()]
    try:
        yield servers[0]
    finally:
        for server in servers:
            server.stop()


def restart(valkey: EmbeddedValkey) -> EmbeddedValkey:
    return EmbeddedValkey(valkey.port, appendonly=True, data_dir=valkey.data_dir).start()


def dependency(client: TestClient[Any], name: str, path: str = "/ready") -> str:
    return str(client.get(path).json()["dependencies"][name])


def test_redis_down_keeps_ready_answers_503_and_recovers_without_restart(
    app_factory: Callable[..., TestClient[Any]], own_valkey: EmbeddedValkey
) -> None:
    client = app_factory(
        instance_id="deg-redis",
        redis_url=own_valkey.url,
        rate_limit_enabled=True,
        operator_token="operator-token-for-tests-0123456789",
    )
    owner = register(client)
    assert client.get("/api/v1/auth/me", headers=owner.headers).status_code == 200

    own_valkey.stop()
    back: EmbeddedValkey | None = None
    try:
        assert client.get("/alive").status_code == 200
        poll(lambda: dependency(client, "redis") == "unhealthy", 10, "/ready to see Redis down")
        ready = client.get("/ready")
        assert ready.status_code == 200  # a shared outage never pulls the instance
        assert ready.json()["ready"] is True
        assert ready.json()["dependencies"]["database"] == "healthy"
        health = client.get("/api/v1/load-balancer/health").json()
        assert health["status"] == "degraded"
        assert health["dependencies"] == {"redis": "unhealthy", "database": "healthy"}

        me = client.get("/api/v1/auth/me", headers=owner.headers)
        body = assert_problem(me, 503, "dependency-unavailable")
        assert int(me.headers["retry-after"]) >= 1
        assert body["instance"] == "/api/v1/auth/me"
        assert me.headers["x-instance-id"] == "deg-redis"
        assert_problem(
            client.get("/api/v1/properties", headers=owner.cookie_headers),
            503,
            "dependency-unavailable",
        )
        # The general rate limit fails open: what needs no Redis still works.
        assert client.get("/openapi.json").status_code == 200
        assert_problem(client.get("/api/v1/auth/me"), 401, "not-signed-in")
        # The sign-in limit fails closed.
        login = client.post(
            "/api/v1/auth/login", json={"email": owner.email, "password": owner.password}
        )
        assert_problem(login, 503, "dependency-unavailable")
        assert "retry-after" in login.headers
        # So do the sign-up limit and the limit on wrong operator tokens; the right token
        # is never counted, so it still reaches the endpoint.
        sign_up = client.post(
            "/api/v1/auth/register",
            json={"organizationName": "X", "name": "X", "email": "x@example.com", "password": "x"},
        )
        assert_problem(sign_up, 503, "dependency-unavailable")
        # ...and the limit on password changes: no guess at the current one goes uncounted.
        change = client.post(
            "/api/v1/auth/password",
            headers=owner.headers,
            json={"currentPassword": "a guess", "newPassword": "a much better passphrase"},
        )
        assert "rate limiter" in assert_problem(change, 503, "dependency-unavailable")["detail"]
        wrong = client.post(
            "/api/v1/load-balancer/health-check", headers={"Authorization": "Bearer wrong"}
        )
        assert "rate limiter" in assert_problem(wrong, 503, "dependency-unavailable")["detail"]
        assert "retry-after" in wrong.headers
        right = client.post(
            "/api/v1/load-balancer/health-check",
            headers={"Authorization": "Bearer operator-token-for-tests-0123456789"},
        )
        assert "rate limiter" not in right.text
        assert right.json()["dependencies"]["redis"] == "unhealthy"
        # The registry cannot be read: a problem, not a 500.
        operator = {"Authorization": "Bearer operator-token-for-tests-0123456789"}
        assert_problem(client.get("/api/v1/load-balancer/instances", headers=operator), 503)

        back = restart(own_valkey)
        poll(
            lambda: client.get("/api/v1/auth/me", headers=owner.headers).status_code == 200,
            15,
            "the session to work again once Valkey is back",
        )
        poll(lambda: dependency(client, "redis") == "healthy", 10, "/ready to see Redis back")
        assert client.get("/api/v1/load-balancer/health").json()["status"] == "healthy"
        login = client.post(
            "/api/v1/auth/login", json={"email": owner.email, "password": owner.password}
        )
        assert login.status_code == 200
        assert "ratelimit-remaining" in login.headers
        # The heartbeat re-registers the instance by itself.
        poll(
            lambda: (
                "deg-redis"
                in {
                    i["instanceId"]
                    for i in client.get("/api/v1/load-balancer/instances", headers=operator).json()[
                        "instances"
                    ]
                }
            ),
            10,
            "the instance to be back in the registry",
        )
    finally:
        if back is not None:
            back.stop()


async def _pg(dsn: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def test_database_down_keeps_ready_answers_503_and_recovers_without_restart(
    app_factory: Callable[..., TestClient[Any]], database: Any
) -> None:
    if database.backend != "postgresql":
        pytest.skip("database-down is exercised on PostgreSQL (set HAVEN_TEST_DATABASE_URL)")
    admin = os.environ[PG_ENV].replace("postgresql+asyncpg://", "postgresql://")
    name = database.url.rsplit("/", 1)[1]
    client = app_factory(instance_id="deg-db")
    owner = register(client)
    create_property(client, owner)
    terminate = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608 - our own db name
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )

    asyncio.run(
        _pg(
            admin,
            f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false',
            terminate,
        )
    )
    try:
        assert client.get("/alive").status_code == 200
        poll(
            lambda: dependency(client, "database") == "unhealthy",
            10,
            "/ready to see the database down",
        )
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["dependencies"]["redis"] == "healthy"
        health = client.get("/api/v1/load-balancer/health").json()
        assert health["status"] == "degraded"
        assert health["dependencies"]["database"] == "unhealthy"

        listing = client.get("/api/v1/properties", headers=owner.headers)
        assert_problem(listing, 503, "dependency-unavailable")
        assert int(listing.headers["retry-after"]) >= 1
        write = client.post(
            "/api/v1/tenants", headers=owner.headers, json={"firstName": "A", "lastName": "B"}
        )
        assert_problem(write, 503, "dependency-unavailable")
        # Sessions live in Redis: the caller is still signed in.
        assert_problem(client.get("/api/v1/auth/me", headers=owner.headers), 503)
    finally:
        asyncio.run(_pg(admin, f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))

    poll(
        lambda: client.get("/api/v1/properties", headers=owner.headers).status_code == 200,
        15,
        "the pool to reconnect once the database is back",
    )
    poll(lambda: dependency(client, "database") == "healthy", 10, "/ready to see it back")
    assert len(client.get("/api/v1/properties", headers=owner.headers).json()["items"]) == 1
