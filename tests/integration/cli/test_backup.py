"""`haven backup` while writes go on, `haven restore` into a fresh database, checked row by row."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from haven.app import create_app
from haven.config import load_settings
from haven.db.migrate import upgrade
from haven.store.embedded import EmbeddedValkey
from support import register
from support_leases import active_lease, charge, pay

pytestmark = pytest.mark.slow

HAVEN = str(Path(sys.executable).parent / "haven")
PG_ENV = "HAVEN_TEST_DATABASE_URL"


def _admin() -> tuple[str, str]:
    configured = os.environ.get(PG_ENV)
    if not configured:
        pytest.skip(f"backups are PostgreSQL's: set {PG_ENV}")
    base = configured.rpartition("/")[0]
    return configured.replace("postgresql+asyncpg://", "postgresql://"), base


async def _sql(dsn: str, sql: str, *args: Any) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """(source URL, empty target URL), both dropped afterwards."""
    admin, base = _admin()
    names = [f"haven_backup_{secrets.token_hex(4)}" for _ in range(2)]
    for name in names:
        asyncio.run(_sql(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        for name in names:
            asyncio.run(_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _haven(args: list[str], database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAVEN_", "DATABASE_URL"))}
    env["DATABASE_URL"] = database_url
    return subprocess.run(
        [HAVEN, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _pg(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def test_backup_under_writes_restores_to_exactly_the_backup_point(
    databases: tuple[str, str], valkey: EmbeddedValkey, tmp_path: Path
) -> None:
    source, target = databases
    upgrade(load_settings({"DATABASE_URL": source}))
    settings = load_settings(
        {
            "HAVEN_ENV": "test",
            "DATABASE_URL": source,
            "REDIS_URL": valkey.url,
            "RATE_LIMIT_ENABLED": "false",
            "LOG_LEVEL": "warning",
        }
    )
    stop = threading.Event()
    written: list[int] = []
    failures: list[str] = []
    ready = threading.Event()

    def writer() -> None:
        with TestClient(create_app(settings)) as client:
            owner = register(client)
            leases = [active_lease(client, owner)["id"] for _ in range(2)]
            for lease in leases:
                charge(client, owner, lease, 100000, "2026-01-01")
            ready.set()
            for i in range(5000):  # bounded; stopped once the backup is done
                if stop.is_set():
                    return
                response = pay(client, owner, leases[i % 2], 1 + i % 97)
                if response.status_code != 201:
                    failures.append(response.text)
                    return
                written.append(i)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert ready.wait(60), "the writer did not start"
        while len(written) < 20 and thread.is_alive():
            threading.Event().wait(0.05)
        dump = tmp_path / "haven.dump"
        before = len(written)
        made = _haven(["backup", "--output", str(dump)], source)
        during = len(written)
        threading.Event().wait(0.5)  # writes keep landing after the snapshot
    finally:
        stop.set()
        thread.join(60)
    assert failures == []
    assert made.returncode == 0, made.stderr
    assert "backup written" in made.stdout
    manifest = json.loads((tmp_path / "haven.dump.manifest.json").read_text())
    assert len(written) > during > before > 0  # writing before, during and after the backup

    restored = _haven(["restore", str(dump)], target)
    assert restored.returncode == 0, restored.stderr
    assert "verified" in restored.stdout

    # Independently of `haven restore`'s own check: the restored ledger is the source's at
    # the backup point: every restored entry is in the source unchanged, the source has
    # the later payments on top, and every balance and row count matches the manifest.
    entries = "SELECT id::text, lease_id::text, type, amount FROM ledger_entries"
    restored_rows = {tuple(r) for r in asyncio.run(_sql(_pg(target), entries))}
    source_rows = {tuple(r) for r in asyncio.run(_sql(_pg(source), entries))}
    assert restored_rows < source_rows
    assert len(restored_rows) == manifest["tables"]["ledger_entries"]
    balances: dict[str, dict[str, int]] = {}
    for _, lease, kind, amount in restored_rows:
        balances.setdefault(lease, {}).setdefault(kind, 0)
        balances[lease][kind] += amount
    assert balances == manifest["ledger"]
    for table, count in manifest["tables"].items():
        rows = asyncio.run(_sql(_pg(target), f'SELECT count(*) AS n FROM "{table}"'))  # noqa: S608
        assert rows[0]["n"] == count, table
    # Every payment acknowledged before the backup started is in it; none made after it ended.
    restored_payments = sum(1 for r in restored_rows if r[2] == "payment")
    assert before <= restored_payments <= during + 1  # +1: the one in flight at the end


def test_restore_refuses_a_database_that_is_not_empty_and_a_tampered_manifest(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    source, target = databases
    upgrade(load_settings({"DATABASE_URL": source}))
    dump = tmp_path / "b.dump"
    assert _haven(["backup", "-o", str(dump)], source).returncode == 0

    into_source = _haven(["restore", str(dump)], source)
    assert into_source.returncode == 1
    assert "not empty" in into_source.stderr

    manifest = tmp_path / "b.dump.manifest.json"
    data = json.loads(manifest.read_text())
    data["tables"]["tenants"] = 999
    manifest.write_text(json.dumps(data))
    tampered = _haven(["restore", str(dump)], target)
    assert tampered.returncode == 1
    assert "tables.tenants: backup 999, restored 0" in tampered.stderr

    manifest.unlink()
    missing = _haven(["restore", str(dump)], target)
    assert missing.returncode == 1
    assert "manifest" in missing.stderr


def test_backup_on_sqlite_says_to_copy_the_file(tmp_path: Path) -> None:
    result = _haven(["backup", "-o", str(tmp_path / "x")], f"sqlite+aiosqlite:///{tmp_path}/h.db")
    assert result.returncode == 2
    assert "copy the file" in result.stderr
