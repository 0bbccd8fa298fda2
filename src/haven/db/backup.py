"""Consistent PostgreSQL backups that prove themselves on restore (`haven backup` / `restore`).

A backup is `pg_dump --format=custom` run on a snapshot that Haven exported from a
REPEATABLE READ transaction (`pg_export_snapshot()`). Inside that same transaction, so
at exactly the point the dump sees, Haven records a manifest: the row count of every
table and, per lease, the sum of its ledger entries by type. The dump is consistent
while the cluster keeps writing (pg_dump never blocks writers); the manifest is what
`haven restore` checks the restored database against.

Nothing in Redis is needed to restore: sessions, rate-limit counters, locks, the
instance registry and cached views rebuild themselves; Idempotency-Key responses live in
PostgreSQL (docs/backup.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST_SUFFIX = ".manifest.json"


class BackupError(Exception):
    """A backup or restore could not be made or does not match; the message says why."""


def libpq_url(database_url: str) -> str:
    """DATABASE_URL as pg_dump/psql/asyncpg take it: no +asyncpg, no Haven-only options."""
    url = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    base, _, query = url.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith("prepared_statement_cache")]
    return base + ("?" + "&".join(kept) if kept else "")


def pg_tool(name: str) -> str:
    """pg_dump / pg_restore: from `pg_config --bindir` (the server's major version), else PATH."""
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip()) / name
        if out.returncode == 0 and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: apt-get install postgresql-client")
    return found


async def _tables(conn: Any) -> list[str]:
    rows = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    return [r["tablename"] for r in rows]


async def manifest_of(conn: Any) -> dict[str, Any]:
    """Row counts of every table and ledger sums per lease and type, as this snapshot sees them."""
    counts = {}
    for table in await _tables(conn):
        quoted = table.replace('"', '""')  # a name from pg_tables, quoted as an identifier
        counts[table] = await conn.fetchval(f'SELECT count(*) FROM "{quoted}"')  # noqa: S608
    ledger: dict[str, dict[str, int]] = {}
    if "ledger_entries" in counts:
        rows = await conn.fetch(
            "SELECT lease_id::text AS lease, type, sum(amount)::bigint AS total, count(*) AS n "
            "FROM ledger_entries GROUP BY lease_id, type ORDER BY 1, 2"
        )
        for r in rows:
            ledger.setdefault(r["lease"], {})[r["type"]] = int(r["total"])
    return {"tables": counts, "ledger": ledger}


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]


async def backup(database_url: str, output: Path) -> BackupResult:
    """Dump the database at one snapshot to `output`; write the manifest beside it."""
    import asyncpg

    dsn = libpq_url(database_url)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            manifest = await manifest_of(conn)
            # The snapshot is usable only while this transaction is open: dump now.
            proc = await asyncio.create_subprocess_exec(
                pg_tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot}",
                f"--file={output}",
                f"--dbname={dsn}",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await proc.communicate()
            if proc.returncode != 0:
                raise BackupError(f"pg_dump failed: {err.decode(errors='replace').strip()}")
    finally:
        await conn.close()
    return BackupResult(output, manifest)


def write_manifest(result: BackupResult) -> None:
    manifest_path(result.path).write_text(json.dumps(result.manifest, indent=1, sort_keys=True))


def load_manifest(dump: Path) -> dict[str, Any]:
    """The manifest `haven backup` wrote beside `dump`."""
    if not dump.exists():
        raise BackupError(f"{dump}: no such file")
    path = manifest_path(dump)
    if not path.exists():
        raise BackupError(f"{path}: the manifest written by `haven backup` is missing")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise BackupError(f"{path}: not a manifest ({exc})") from None
    return manifest


def manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name + MANIFEST_SUFFIX)


async def restore(dump: Path, expected: dict[str, Any], database_url: str) -> dict[str, Any]:
    """pg_restore `dump` into an empty database, then check it against its manifest."""
    import asyncpg

    dsn = libpq_url(database_url)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        if await _tables(conn):
            raise BackupError("the target database is not empty: restore into a new database")
    finally:
        await conn.close()
    proc = await asyncio.create_subprocess_exec(
        pg_tool("pg_restore"),
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        f"--dbname={dsn}",
        str(dump),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise BackupError(f"pg_restore failed: {err.decode(errors='replace').strip()}")
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        actual = await manifest_of(conn)
    finally:
        await conn.close()
    if actual != expected:
        raise BackupError(
            f"the restored database differs from the backup: {_diff(expected, actual)}"
        )
    return actual


def _diff(expected: dict[str, Any], actual: dict[str, Any]) -> str:
    out = [
        f"{section}.{key}: backup {want.get(key)!r}, restored {got.get(key)!r}"
        for section in ("tables", "ledger")
        for want, got in [(expected.get(section, {}), actual.get(section, {}))]
        for key in sorted(set(want) | set(got))
        if want.get(key) != got.get(key)
    ]
    return "; ".join(out[:10]) or "manifests differ"
