"""Shared fixtures: a real Valkey, real databases (SQLite always, PostgreSQL when configured).

Isolation: each test session gets its own Valkey and its own database per
backend (a fresh SQLite file; a fresh PostgreSQL database created from
HAVEN_TEST_DATABASE_URL and dropped at the end). Tests isolate from each
other by registering their own organizations with unique emails, which is
exactly the isolation Haven gives its users.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from haven.app import create_app
from haven.config import Settings, load_settings
from haven.db.migrate import upgrade
from haven.store.embedded import EmbeddedValkey
from support import Account, register

PG_ENV = "HAVEN_TEST_DATABASE_URL"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `make test` (pytest-xdist, --dist loadgroup) a test file runs on one worker, so
    its module-scoped fixtures (a cluster, an app) are built once; a file that binds fixed
    ports names its own group to share a worker with the others that do."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


@pytest.fixture(scope="session")
def valkey() -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey().start()
    yield server
    server.cleanup()


def _pg_admin_url(url: str) -> tuple[str, str]:
    """(asyncpg DSN of the configured database, base URL without the database name)."""
    base, _, _db = url.rpartition("/")
    return url.replace("postgresql+asyncpg://", "postgresql://"), base


async def _pg_exec(dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class Database:
    backend: str
    url: str


def _create_database(backend: str, tmp: Path) -> Iterator[Database]:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'haven.db'}"
        upgrade(load_settings({"DATABASE_URL": url}))
        yield Database("sqlite", url)
        return
    configured = os.environ.get(PG_ENV)
    if not configured:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+asyncpg://postgres@127.0.0.1/test)"
        )
    dsn, base = _pg_admin_url(configured)
    name = f"haven_test_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_pg_exec(dsn, f'CREATE DATABASE "{name}"'))
    url = f"{base}/{name}"
    try:
        upgrade(load_settings({"DATABASE_URL": url}))
        yield Database("postgresql", url)
    finally:
        asyncio.run(_pg_exec(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    yield from _create_database(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="session")
def secret_key() -> str:
    return secrets.token_urlsafe(48)


def make_settings(
    database: Database, valkey: EmbeddedValkey, secret_key: str, **overrides: Any
) -> Settings:
    env = {
        "HAVEN_ENV": "test",
        "DATABASE_URL": database.url,
        "REDIS_URL": valkey.url,
        "SECRET_KEY": secret_key,
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "warning",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "5",
    }
    instance_id = overrides.pop("instance_id", f"test-{secrets.token_hex(3)}")
    return load_settings(env, instance_id=instance_id, **overrides)


@pytest.fixture
def settings_factory(
    database: Database, valkey: EmbeddedValkey, secret_key: str
) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        return make_settings(database, valkey, secret_key, **overrides)

    return factory


@pytest.fixture
def app_factory(
    settings_factory: Callable[..., Settings],
) -> Iterator[Callable[..., TestClient[Any]]]:
    """Build independent app instances (own engine, own Redis pool) sharing Valkey and the DB."""
    clients: list[TestClient[Any]] = []

    def factory(**overrides: Any) -> TestClient[Any]:
        client: TestClient[Any] = TestClient(create_app(settings_factory(**overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(app_factory: Callable[..., TestClient[Any]]) -> TestClient[Any]:
    return app_factory(instance_id="api-1")


@pytest.fixture
def client_b(app_factory: Callable[..., TestClient[Any]]) -> TestClient[Any]:
    return app_factory(instance_id="api-2")


@pytest.fixture
def owner(client: TestClient[Any]) -> Account:
    return register(client)
