"""RSS of one Haven instance: at rest, and after wrk has driven each bench scenario.

    python -m bench.memory            (BENCH_DATABASE_URL=postgresql+asyncpg://... for PostgreSQL)

Starts Valkey and one instance (haven.devcluster, no load balancer) as bench/profile.py
does, records the instance's RSS once it is ready, again after the bench organization is
seeded and each GET scenario answered once, then after wrk (8, then 64 connections,
BENCH_MEMORY_SECONDS each) on each of dashboard, properties, ledger and tenants-post; prints
a table (RSS, and its anonymous and file-backed parts from /proc/PID/status). The
instance inherits this process's environment (e.g. MALLOC_ARENA_MAX) and, with older code
first on PYTHONPATH, imports that.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.run import HERE, SCENARIOS, log, one_instance, pg_database, pg_drop
from bench.seed import seed
from haven.store.embedded import free_port

SECONDS = int(os.environ.get("BENCH_MEMORY_SECONDS", "5"))
LOADED = ("dashboard", "properties", "ledger", "tenants-post")
CONNS = (8, 64)


def memory(pid: int) -> dict[str, float]:
    """RSS and its parts in MB (RssAnon: heap and the like, RssFile: mapped code)."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "Threads"):
            number = float(value.split()[0])
            out[key] = number if key == "Threads" else number / 1024
    return out


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="haven-memory-"))
    port = free_port()
    db_url, pg_admin = pg_database()  # PostgreSQL when BENCH_DATABASE_URL is set
    cluster = one_instance(tmp, port, db_url)
    rows: list[tuple[str, dict[str, float], float | None]] = []
    try:
        cluster.start()
        url = f"http://127.0.0.1:{port}"
        pid = cluster.instances[0].pid
        assert pid is not None
        time.sleep(1)
        rows.append(("ready (idle)", memory(pid), None))
        org = asyncio.run(seed([url], log=log))
        cookie = {"Cookie": f"haven_session={org.cookie}"}
        scenarios = {sc.name: sc for sc in SCENARIOS}
        for sc in SCENARIOS:
            if sc.method == "GET":
                path = sc.path.replace("{lease}", org.ledger_lease)
                httpx.get(url + path, headers=cookie).raise_for_status()
        time.sleep(1)
        rows.append(("seeded, warmed (idle)", memory(pid), None))
        for name in LOADED:
            sc = scenarios[name]
            path = sc.path.replace("{lease}", org.ledger_lease)
            for conns in CONNS:
                env = {
                    **os.environ,
                    "BENCH_METHOD": sc.method,
                    "BENCH_KEY_PREFIX": f"m{time.time()}",
                }
                if sc.auth == "cookie":
                    env["BENCH_COOKIE"] = f"haven_session={org.cookie}"
                elif sc.auth == "bearer":
                    env["BENCH_BEARER"] = org.token
                if sc.body:
                    env["BENCH_BODY"] = sc.body
                done = subprocess.run(
                    [
                        "wrk",
                        "-t1",
                        f"-c{conns}",
                        f"-d{SECONDS}s",
                        "-s",
                        str(HERE / "wrk.lua"),
                        url + path,
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=SECONDS + 60,
                    check=True,
                )
                rps = None
                for line in done.stdout.splitlines():
                    if line.startswith("BENCH_JSON "):
                        result = json.loads(line.removeprefix("BENCH_JSON "))
                        rps = result["requests"] / (result["duration_us"] / 1e6)
                rows.append((f"after {name} c{conns}", memory(pid), rps))
        time.sleep(2)
        rows.append(("after the run, 2 s idle", memory(pid), None))
    finally:
        cluster.stop()
        if db_url and pg_admin:
            pg_drop(pg_admin, db_url)
        shutil.rmtree(tmp, ignore_errors=True)
    db = "PostgreSQL" if db_url else "SQLite"
    print(f"\nHaven instance memory ({db}, wrk {SECONDS} s per scenario and connection count)\n")
    print(f"| {'point':<26} | RSS MB | anon MB | file MB | threads | req/s |")
    print(f"|{'-' * 28}|-------:|--------:|--------:|--------:|------:|")
    for label, mem, rps in rows:
        print(
            f"| {label:<26} | {mem['VmRSS']:6.1f} | {mem['RssAnon']:7.1f} | "
            f"{mem['RssFile']:7.1f} | {mem['Threads']:7.0f} | "
            f"{'' if rps is None else f'{rps:5.0f}'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
