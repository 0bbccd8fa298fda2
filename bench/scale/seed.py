"""Bulk rows for the scale bench, written with PostgreSQL COPY (asyncpg) into a throwaway database.

One organization (registered through the API, so its owner can sign in) gets `units` units in
properties of 20, one active tenant and lease per unit started ten months ago, and 20 ledger
entries per lease (ten months of rent, each with its billing key, and ten payments): the current
month is left unbilled, so a billing run posts one rent charge per lease. `units // 100` small
organizations get one property with 5 units, leases and two ledger entries each.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import text

UNITS_PER_PROPERTY = 20
MONTHS = 10  # of billed rent and payments per lease: 20 entries
SMALL_UNITS = 5
CHUNK = 50_000

_NOW = datetime.now(UTC)


@dataclass
class Seeded:
    units: int
    leases: int
    ledger_entries: int
    small_orgs: int
    seconds: float = 0.0
    totals_seconds: float = 0.0  # the ledger's maintained totals, computed after the COPY


def months_back(today: date, n: int) -> date:
    year, month = today.year, today.month - n
    while month <= 0:
        month += 12
        year -= 1
    return date(year, month, 1)


def _ts(i: int) -> datetime:
    """Distinct, increasing creation times (the lists' createdAt order)."""
    return _NOW - timedelta(days=400) + timedelta(microseconds=i * 37)


COLUMNS = {
    "organizations": ("id", "name", "currency", "timezone", "created_at", "updated_at", "version"),
    "properties": (
        "id", "organization_id", "name", "type", "address_line1", "city", "country",
        "unit_count", "created_at", "updated_at", "version",
    ),
    "units": (
        "id", "organization_id", "property_id", "label", "bedrooms", "bathrooms", "market_rent",
        "status", "created_at", "updated_at", "version",
    ),
    "tenants": (
        "id", "organization_id", "first_name", "last_name", "email", "created_at", "updated_at",
        "version",
    ),
    "leases": (
        "id", "organization_id", "unit_id", "status", "start_date", "end_date", "rent", "deposit",
        "due_day", "grace_days", "activated_at", "charge_deposit", "created_at", "updated_at",
        "version",
    ),
    "lease_tenants": ("lease_id", "tenant_id", "position"),
    "ledger_entries": (
        "id", "organization_id", "lease_id", "type", "kind", "amount", "date", "description",
        "method", "billing_key", "created_at",
    ),
}  # fmt: skip


class _Rows:
    def __init__(self) -> None:
        self.by_table: dict[str, list[tuple[Any, ...]]] = {t: [] for t in COLUMNS}


def _org_rows(
    rows: _Rows, org_id: uuid.UUID, units: int, today: date, offset: int, tag: str
) -> Iterator[None]:
    """Append one organization's rows; yields whenever a chunk is worth flushing."""
    start = months_back(today, MONTHS)
    n_props = -(-units // UNITS_PER_PROPERTY)
    prop_ids = [uuid.uuid4() for _ in range(n_props)]
    for p, pid in enumerate(prop_ids):
        rows.by_table["properties"].append(
            (pid, org_id, f"{tag} Property {p:05d}", "residential", f"{p} Main St", "Town", "US",
             UNITS_PER_PROPERTY, _ts(offset + p), _ts(offset + p), 1)
        )  # fmt: skip
    for u in range(units):
        unit_id, tenant_id, lease_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        i = offset + u
        rent = 100_000 + (u % 50) * 1_000
        rows.by_table["units"].append(
            (unit_id, org_id, prop_ids[u // UNITS_PER_PROPERTY], f"U{u:06d}", 2, 1, rent,
             "occupied", _ts(i), _ts(i), 1)
        )  # fmt: skip
        rows.by_table["tenants"].append(
            (tenant_id, org_id, f"First{u}", f"Last{u:06d}", f"t{u}@{tag.lower()}.example",
             _ts(i), _ts(i), 1)
        )  # fmt: skip
        rows.by_table["leases"].append(
            (lease_id, org_id, unit_id, "active", start, None, rent, 0, 1, 5, _ts(i), False,
             _ts(i), _ts(i), 1)
        )  # fmt: skip
        rows.by_table["lease_tenants"].append((lease_id, tenant_id, 0))
        entries = MONTHS if units > SMALL_UNITS else 1
        for m in range(entries, 0, -1):
            due = months_back(today, m)
            period = f"{due.year:04d}-{due.month:02d}"
            at = datetime(due.year, due.month, due.day, tzinfo=UTC) + timedelta(microseconds=u)
            rows.by_table["ledger_entries"].append(
                (uuid.uuid4(), org_id, lease_id, "charge", "rent", rent, due, f"Rent {period}",
                 None, f"rent:{lease_id}:{period}", at)
            )  # fmt: skip
            paid = due + timedelta(days=3)
            rows.by_table["ledger_entries"].append(
                (uuid.uuid4(), org_id, lease_id, "payment", None, -rent, paid, "Payment",
                 "ach", None, at + timedelta(days=3))
            )  # fmt: skip
        if len(rows.by_table["ledger_entries"]) >= CHUNK:
            yield


async def _flush(conn: asyncpg.Connection, rows: _Rows) -> None:
    for table, columns in COLUMNS.items():  # in foreign-key order
        batch = rows.by_table[table]
        if batch:
            await conn.copy_records_to_table(table, records=batch, columns=list(columns))
            batch.clear()


async def seed(dsn: str, org_id: uuid.UUID, units: int, small_orgs: int, today: date) -> Seeded:
    """COPY the big organization's portfolio and the small organizations into `dsn`."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = _Rows()
        for _ in _org_rows(rows, org_id, units, today, 0, "Big"):
            await _flush(conn, rows)
        await _flush(conn, rows)
        for k in range(small_orgs):
            small = uuid.uuid4()
            rows.by_table["organizations"].append(
                (small, f"Small {k:04d}", "USD", "UTC", _NOW, _NOW, 1)
            )
            for _ in _org_rows(rows, small, SMALL_UNITS, today, units + k * 10, f"S{k}"):
                pass
            if len(rows.by_table["units"]) >= CHUNK:
                await _flush(conn, rows)
        await _flush(conn, rows)
        await conn.execute("ANALYZE")
        counts = {
            t: await conn.fetchval(f"SELECT count(*) FROM {t}")  # noqa: S608 (fixed names)
            for t in ("units", "leases", "ledger_entries", "organizations")
        }
    finally:
        await conn.close()
    return Seeded(
        units=int(counts["units"]),
        leases=int(counts["leases"]),
        ledger_entries=int(counts["ledger_entries"]),
        small_orgs=int(counts["organizations"]) - 1,
    )


async def backfill_totals(db_url: str) -> float:
    """Compute lease_balances and payments_by_day from the COPYed ledger, as the 0011
    migration does for an existing database (haven.ledger.totals.backfill): the COPY
    bypasses the write path that keeps them. Then VACUUM ANALYZE the tables the dashboard
    reads. Returns the seconds it took."""
    import time

    from sqlalchemy.ext.asyncio import create_async_engine

    from haven.ledger.totals import backfill

    engine = create_async_engine(db_url)
    t0 = time.perf_counter()
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM lease_balances"))
            await conn.execute(text("DELETE FROM payments_by_day"))
            await conn.run_sync(backfill)
    finally:
        await engine.dispose()
    # What autovacuum does after a bulk load (PostgreSQL 13+ vacuums on inserts too): the
    # visibility map lets the dashboard's sums over indexes run index-only.
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for table in ("units", "leases", "lease_balances", "payments_by_day"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()
    return time.perf_counter() - t0
