"""The properties list page read with and without the asyncpg fast path, in process.

    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/postgres \
        python -m bench.list_path [ROUNDS] [REQUESTS]

Makes a throwaway database, migrates it, inserts one organization with 50 properties,
then reads `GET /api/v1/properties?limit=50`'s page (`haven.properties.service.list_properties`
plus the 50 `property_out` bodies) REQUESTS times per round, alternating between a Reader
that sends the SQL straight to asyncpg and one that runs SQLAlchemy's `execute`. Prints
the CPU time per page (process time: what a busy instance pays) and the wall time, the
minimum over ROUNDS rounds (the least disturbed by other work on the machine).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from typing import Any

import asyncpg

from haven.config import load_settings
from haven.db.engine import create_engine, read_only_engine
from haven.db.migrate import upgrade
from haven.db.reader import Reader
from haven.models import Organization, Property
from haven.properties.routes import property_out
from haven.properties.service import list_properties


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _seed(engine: Any) -> uuid.UUID:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    async with async_sessionmaker(engine)() as session:
        org = Organization(name="Bench Homes", currency="USD", timezone="UTC")
        session.add(org)
        await session.flush()
        org_id = org.id
        for i in range(50):
            session.add(
                Property(
                    organization_id=org.id,
                    name=f"Property {i:02d}",
                    type="residential",
                    address_line1=f"{i} Main St",
                    city="Town",
                    country="US",
                    unit_count=10,
                )
            )
        await session.commit()
        return org_id


async def _page(reader: Reader, org_id: uuid.UUID) -> int:
    page = await list_properties(
        reader, org_id, limit=50, cursor=None, sort=None, search=None, type_=None
    )
    return len([property_out(p) for p in page.items])


async def _measure(rounds: int, requests: int, url: str) -> dict[str, tuple[float, float]]:
    settings = load_settings({"DATABASE_URL": url, "HAVEN_ENV": "test", "DB_POOL_MIN": "1"})
    engine = create_engine(settings)
    try:
        org_id = await _seed(engine)
        read = read_only_engine(engine, settings)
        readers = {
            "asyncpg fast path": Reader(read),
            "SQLAlchemy execute": Reader(read, fast_path=False),
        }
        assert readers["asyncpg fast path"].fast
        best: dict[str, tuple[float, float]] = {}
        for name, reader in readers.items():  # warm both: statements built, pool open
            assert await _page(reader, org_id) == 50, name
        for _ in range(rounds):
            for name, reader in readers.items():
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(requests):
                    await _page(reader, org_id)
                cpu = (time.process_time() - cpu) / requests * 1e6
                wall = (time.perf_counter() - wall) / requests * 1e6
                old = best.get(name, (float("inf"), float("inf")))
                best[name] = (min(old[0], cpu), min(old[1], wall))
        return best
    finally:
        await engine.dispose()


def main() -> int:
    base = os.environ.get("BENCH_DATABASE_URL")
    if not base or not base.startswith("postgresql+asyncpg://"):
        print("set BENCH_DATABASE_URL=postgresql+asyncpg://... (an admin connection)")
        return 2
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    name = f"bench_list_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(load_settings({"DATABASE_URL": url, "HAVEN_ENV": "test"}))
        best = asyncio.run(_measure(rounds, requests, url))
    finally:
        asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"properties page (50 rows), min of {rounds} rounds x {requests} pages, interleaved")
    print("| path | CPU us/page | wall us/page |")
    print("|---|---|---|")
    for path, (cpu, wall) in best.items():
        print(f"| {path} | {cpu:,.0f} | {wall:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
