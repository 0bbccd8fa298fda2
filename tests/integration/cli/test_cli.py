"""The `haven` command as an operator runs it: real processes, real files, real ports."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from haven.db.migrate import current_heads
from haven.store.embedded import free_port

pytestmark = pytest.mark.slow  # every test here runs the real `haven` command in a subprocess

HAVEN = str(Path(sys.executable).parent / "haven")
PG_ENV = "HAVEN_TEST_DATABASE_URL"
_STRIP = ("HAVEN_", "REDIS_", "DATABASE_URL", "SECRET_KEY", "PORT", "HOST", "INSTANCE_ID")


def clean_env(**values: str) -> dict[str, str]:
    """The caller's environment without any Haven setting, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIP)}
    env.update(values)
    return env


def run(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HAVEN, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.mark.parametrize(
    ("variable", "env"),
    [
        ("PORT", {"PORT": "eighty"}),
        ("HAVEN_ENV", {"HAVEN_ENV": "prod"}),
        ("DATABASE_URL", {"DATABASE_URL": "mysql://root:pw@db/haven"}),
        ("SESSION_TTL", {"SESSION_TTL": "forever"}),
        ("SECRET_KEY", {"HAVEN_ENV": "production", "REDIS_URL": "redis://127.0.0.1:1/0"}),
        ("REDIS_URL", {"HAVEN_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48)}),
        # Issue 12: what the old templates shipped, and what lets anyone choose their IP.
        ("TRUSTED_PROXIES", {"TRUST_PROXY": "true", "TRUSTED_PROXIES": "0.0.0.0/0"}),
        ("CORS_ORIGINS", {"CORS_ORIGINS": "*"}),
        (
            "SECRET_KEY",
            {
                "HAVEN_ENV": "production",
                "REDIS_URL": "redis://127.0.0.1:1/0",
                "SECRET_KEY": "CHANGE-ME-secret-key-at-least-32-random-characters",
            },
        ),
        (
            "OPERATOR_TOKEN",
            {
                "HAVEN_ENV": "production",
                "REDIS_URL": "redis://127.0.0.1:1/0",
                "SECRET_KEY": secrets.token_urlsafe(48),
                "OPERATOR_TOKEN": "CHANGE-ME-operator-token",
            },
        ),
    ],
)
def test_serve_with_a_bad_value_exits_non_zero_with_one_line_naming_it(
    variable: str, env: dict[str, str], tmp_path: Path
) -> None:
    base = {"DATABASE_URL": sqlite_url(tmp_path / "x.db")}
    result = run(["serve", "--port", str(free_port())], clean_env(**{**base, **env}), timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"{variable}:" in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert "pw@" not in result.stderr


def test_demo_data_refuses_in_production(tmp_path: Path) -> None:
    env = clean_env(
        HAVEN_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(48),
        REDIS_URL="redis://127.0.0.1:1/0",
        DATABASE_URL=sqlite_url(tmp_path / "prod.db"),
    )
    result = run(["demo-data"], env, timeout=60)
    assert result.returncode != 0
    assert "production" in result.stderr
    assert not (tmp_path / "prod.db").exists() or _tables(tmp_path / "prod.db") == set()


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    return {r[0] for r in rows}


def _start_together(env: dict[str, str], n: int = 3) -> list[subprocess.CompletedProcess[str]]:
    procs = [
        subprocess.Popen(
            [HAVEN, "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(n)
    ]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return results


def test_concurrent_migrate_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    results = _start_together(clean_env(HAVEN_ENV="development", DATABASE_URL=sqlite_url(db)))
    for result in results:
        assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as conn:
        versions = {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")}
    assert versions == set(current_heads())
    assert {"organizations", "users", "properties", "units", "tenants"} <= _tables(db)
    # And once more on the migrated file: nothing to do, still fine.
    assert run(["migrate"], clean_env(DATABASE_URL=sqlite_url(db))).returncode == 0


async def _pg(dsn: str, sql: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        if sql.lstrip().upper().startswith("SELECT"):
            return [r[0] for r in await conn.fetch(sql)]
        await conn.execute(sql)
        return []
    finally:
        await conn.close()


@pytest.fixture
def fresh_pg_database() -> Iterator[str]:
    configured = os.environ.get(PG_ENV)
    if not configured:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    admin = configured.replace("postgresql+asyncpg://", "postgresql://")
    base = configured.rpartition("/")[0]
    name = f"haven_migrate_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_pg(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_pg(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_concurrent_migrate_on_a_fresh_postgresql_database(fresh_pg_database: str) -> None:
    results = _start_together(clean_env(HAVEN_ENV="development", DATABASE_URL=fresh_pg_database))
    for result in results:
        assert result.returncode == 0, result.stderr
    dsn = fresh_pg_database.replace("postgresql+asyncpg://", "postgresql://")
    versions = asyncio.run(_pg(dsn, "SELECT version_num FROM alembic_version"))
    assert set(versions) == set(current_heads())
    tables = asyncio.run(_pg(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    assert {"organizations", "users", "properties", "units", "tenants"} <= set(tables)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_seed_curl_session_against_a_real_haven_serve(tmp_path: Path) -> None:
    """migrate, demo-data, serve on the embedded defaults; log in with a cookie jar; SIGTERM."""
    env = clean_env(
        HAVEN_ENV="development",
        DATABASE_URL=sqlite_url(tmp_path / "haven.db"),
        DRAIN_DELAY="0",
        SHUTDOWN_TIMEOUT="5000",
        LOG_LEVEL="warning",
    )
    migrated = run(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    demo = run(["demo-data"], env)
    assert demo.returncode == 0, demo.stderr
    assert "test@example.com" in demo.stdout
    again = run(["demo-data"], env)
    assert again.returncode == 0, again.stderr
    assert "already" in again.stdout

    port = free_port()
    stderr_path = tmp_path / "serve.err"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [HAVEN, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    valkey_pids: list[int] = []
    valkey_port = None
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, stderr_path.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "haven serve did not answer /health within 60 s"
            time.sleep(0.2)

        found = re.search(r"embedded Valkey at redis://127\.0\.0\.1:(\d+)", stderr_path.read_text())
        assert found, stderr_path.read_text()
        valkey_port = int(found.group(1))
        assert _port_open(valkey_port)
        valkey_pids = [
            child.pid
            for child in psutil.Process(proc.pid).children(recursive=True)
            if "valkey" in child.name()
        ]
        assert valkey_pids, "the embedded Valkey runs as a child of haven serve"

        # The seed's curl session: login into a cookie jar, then GET /auth/me with it.
        with httpx.Client(base_url=base, timeout=10) as jar:
            login = jar.post(
                "/api/v1/auth/login", json={"email": "test@example.com", "password": "password"}
            )
            assert login.status_code == 200, login.text
            assert "haven_session" in jar.cookies
            me = jar.get("/api/v1/auth/me")
            assert me.status_code == 200, me.text
            assert me.json()["user"]["email"] == "test@example.com"
            props = jar.get("/api/v1/properties").json()["items"]
            assert len(props) == 3

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, stderr_path.read_text()
        deadline = time.monotonic() + 15
        while any(psutil.pid_exists(pid) and _alive(pid) for pid in valkey_pids):
            assert time.monotonic() < deadline, "embedded Valkey outlived haven serve"
            time.sleep(0.1)
        assert not _port_open(valkey_port)
        assert not _port_open(port)
    finally:
        _stop(proc)
        for pid in valkey_pids:
            if psutil.pid_exists(pid) and _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
