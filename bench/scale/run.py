"""The scale bench: Haven's page latency, CPU per request, dashboard miss, rent roll CSV and
billing run at 1,000 units and at 100,000 units (2 million ledger entries, 1,000 small
organizations), each size in its own throwaway PostgreSQL database, one Haven instance.

    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/postgres \
        python -m bench.scale [--units 100000] [--small 1000] [--requests 60] [--no-write]

Sequential requests (one connection): latency is p50/p99 over the requests, CPU is the server
process's user + system time over the requests divided by their number. The dashboard is
measured on a miss (the organization's cache version is bumped before each request). The CSV
is read as a stream (chunks counted, time to first byte). Billing is `haven jobs billing` in a
child process (its wall time, leases per second and peak RSS from wait4).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import redis

from bench.run import pg_database, pg_drop
from bench.scale import seed as seeding
from haven.db.pagination import _encode
from haven.devcluster.cluster import Cluster, ClusterSpec
from haven.store.client import Keys
from haven.store.embedded import free_port

HERE = Path(__file__).resolve().parent.parent
RESULTS = HERE / "RESULTS-scale.md"


def log(msg: str) -> None:
    print(f"[scale {datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


@dataclass
class Figure:
    name: str
    requests: int
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SizeResult:
    units: int
    seeded: seeding.Seeded
    figures: dict[str, Figure] = field(default_factory=dict)
    billing: dict[str, Any] = field(default_factory=dict)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


class Session:
    def __init__(self, base: str, cookie: str, proc: psutil.Process) -> None:
        self.base = base
        self.client = httpx.Client(base_url=base, cookies={"haven_session": cookie}, timeout=600.0)
        self.proc = proc

    def measure(
        self,
        name: str,
        path: str,
        n: int,
        before: Any = None,
        headers: Any = None,
        warm: bool = True,
    ) -> Figure:
        if warm:
            self.client.get(path, headers=headers).raise_for_status()
        latencies = []
        cpu = 0.0
        extra: dict[str, Any] = {}
        for _ in range(n):
            if before is not None:
                before()
            c0, t0 = _cpu(self.proc), time.perf_counter()
            r = self.client.get(path, headers=headers)
            t1, c1 = time.perf_counter(), _cpu(self.proc)
            latencies.append((t1 - t0) * 1000)
            cpu += c1 - c0
            if r.status_code != 200:  # e.g. a statement over the 30 s command timeout: 503
                extra["failed"] = f"{r.status_code} after {(t1 - t0):.1f} s"
                break
        n = len(latencies)
        fig = Figure(name, n, _pct(latencies, 0.5), _pct(latencies, 0.99), cpu / n * 1000, extra)
        log(f"  {name}: p50 {fig.p50_ms:.1f} ms p99 {fig.p99_ms:.1f} ms cpu {fig.cpu_ms:.2f} ms")
        return fig

    def csv(self, n: int) -> Figure:
        latencies, first, chunks, sizes, rss = [], [], [], [], []
        cpu = 0.0
        for _ in range(n):
            c0, t0 = _cpu(self.proc), time.perf_counter()
            count = size = 0
            peak = self.proc.memory_info().rss
            t_first = None
            with self.client.stream(
                "GET", "/api/v1/reports/rent-roll", headers={"Accept": "text/csv"}
            ) as r:
                r.raise_for_status()
                for chunk in r.iter_raw():
                    if t_first is None:
                        t_first = time.perf_counter()
                    count += 1
                    size += len(chunk)
                    if count % 20 == 0:
                        peak = max(peak, self.proc.memory_info().rss)
            t1, c1 = time.perf_counter(), _cpu(self.proc)
            latencies.append((t1 - t0) * 1000)
            first.append(((t_first or t1) - t0) * 1000)
            cpu += c1 - c0
            chunks.append(count)
            sizes.append(size)
            rss.append(peak)
        fig = Figure(
            "rent roll CSV",
            n,
            _pct(latencies, 0.5),
            _pct(latencies, 0.99),
            cpu / n * 1000,
            {
                "first_byte_ms": statistics.median(first),
                "chunks": max(chunks),
                "bytes": max(sizes),
                "server_rss_mb": max(rss) / 2**20,
            },
        )
        log(f"  CSV: {fig.p50_ms:.0f} ms, {fig.extra}")
        return fig


BILLING_LIMIT_S = 900


async def _billed(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        period = datetime.now(UTC).strftime("%Y-%m")
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM ledger_entries WHERE billing_key LIKE $1", f"rent:%:{period}"
            )
        )
    finally:
        await conn.close()


def _vm_hwm_kb(pid: int) -> int:
    """A live process's peak resident set (kB) since its exec, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _billing(env: dict[str, str], leases: int, dsn: str) -> dict[str, Any]:
    """`haven jobs billing` in a child; stopped (and what it posted counted) past the limit."""
    t0 = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "haven", "jobs", "billing"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    status, usage, stopped, hwm_kb = 0, None, False, 0
    while usage is None:
        hwm_kb = max(hwm_kb, _vm_hwm_kb(child.pid))
        pid, status, rusage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            usage = rusage
        elif time.perf_counter() - t0 > BILLING_LIMIT_S and not stopped:
            child.terminate()  # our own child, by its pid
            stopped = True
        else:
            time.sleep(0.2)
    elapsed = time.perf_counter() - t0
    out = child.stdout.read() if child.stdout else ""
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0 and not stopped:
        raise SystemExit(f"billing failed: {out[-2000:]}")
    billed = asyncio.run(_billed(dsn))
    line = out.strip().splitlines()[-1] if out.strip() else ""
    if stopped:
        line = f"stopped after {BILLING_LIMIT_S} s: {billed} of {leases} leases billed"
    result = {
        "seconds": elapsed,
        "leases_per_s": billed / elapsed,
        # The child's own high-water mark (VmHWM, polled): wait4's ru_maxrss is not it, as
        # Linux carries the forking process's peak RSS through fork and exec, and this
        # process grew with the seeding (at 30,000 units it read this bench's 193 MB).
        "peak_rss_mb": hwm_kb / 1024,
        "ru_maxrss_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "output": line,
    }
    log(f"  billing: {result}")
    return result


async def _deep_cursor(dsn: str, table: str, sort: str, column: str, org: str, at: int) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            f"SELECT {column} AS v, id FROM {table} WHERE organization_id = $1 "  # noqa: S608
            f"ORDER BY {column}, id OFFSET $2 LIMIT 1",
            uuid.UUID(org),
            at,
        )
    finally:
        await conn.close()
    return _encode(sort, row["v"], row["id"])


def _dashboard_miss(s: Session, cluster: Cluster, org_id: str, n: int) -> Figure:
    """GET /dashboard, each a miss: the organization's cache version is bumped before it."""
    rc = redis.Redis.from_url(cluster.env["REDIS_URL"])
    version_key = Keys(cluster.env.get("REDIS_KEY_PREFIX", "haven")).org_version(org_id)
    try:
        return s.measure(
            "dashboard miss", "/api/v1/dashboard", max(10, n // 3), lambda: rc.incr(version_key)
        )
    finally:
        rc.close()


def write_only_dashboard(sizes: list[SizeResult], started: datetime, elapsed: float) -> None:
    """`--only dashboard`: print the dashboard-miss figures and append them to the results
    (the other figures of the file stay those of the last full run)."""
    load = os.getloadavg()
    lines = [
        "",
        "### Dashboard miss only (`python -m bench.scale --only dashboard`), "
        f"{started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min, load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}",
        "",
        "| units (big organization) | leases (all) | ledger entries | totals backfill, s |"
        " requests | p50 ms | p99 ms | CPU ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        fig = size.figures["dashboard_miss"]
        lines.append(
            f"| {size.units:,} | {size.seeded.leases:,} | {size.seeded.ledger_entries:,} |"
            f" {size.seeded.totals_seconds:.0f} | {fig.requests} | {fig.p50_ms:.1f} |"
            f" {fig.p99_ms:.1f} | {fig.cpu_ms:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    with RESULTS.open("a") as out:
        out.write(text)
    log(f"appended to {RESULTS}")


def measure_size(units: int, small: int, n: int, only: str | None = None) -> SizeResult:
    db_url, admin = pg_database()
    if not db_url or not admin:
        raise SystemExit("set BENCH_DATABASE_URL (or HAVEN_TEST_DATABASE_URL) to a PostgreSQL")
    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
    tmp = Path(tempfile.mkdtemp(prefix="haven-scale-"))
    port = free_port()
    spec = ClusterSpec(
        instances=1,
        base_port=port,
        lb="none",
        runtime_dir=tmp / "cluster",
        demo_data=False,
        extra_env={
            "DATABASE_URL": db_url,
            "HAVEN_ENV": "development",
            "LOG_LEVEL": "warning",
            "RATE_LIMIT_GLOBAL": "10000000",
            "RATE_LIMIT_PER_USER": "10000000",
            "RATE_LIMIT_AUTH": "10000",
            "RATE_LIMIT_REGISTER": "10000",
        },
    )
    cluster = Cluster(spec, log=log)
    try:
        cluster.start()
        base = f"http://127.0.0.1:{port}"
        r = httpx.post(
            f"{base}/api/v1/auth/register",
            json={
                "organizationName": "Scale Homes",
                "name": "Scale Owner",
                "email": f"scale-{uuid.uuid4().hex[:8]}@example.com",
                "password": "scale password 1",
            },
            timeout=60,
        )
        r.raise_for_status()
        org_id = r.json()["organization"]["id"]
        cookie = r.cookies["haven_session"]
        log(f"seeding {units} units, {small} small organizations")
        t0 = time.perf_counter()
        today = datetime.now(UTC).date()
        seeded = asyncio.run(seeding.seed(dsn, uuid.UUID(org_id), units, small, today))
        seeded.seconds = time.perf_counter() - t0
        seeded.totals_seconds = asyncio.run(seeding.backfill_totals(db_url))
        log(f"seeded {seeded} in {seeded.seconds:.0f}s, totals in {seeded.totals_seconds:.0f}s")
        pid = cluster.instances[0].pid
        assert pid is not None
        s = Session(base, cookie, psutil.Process(pid))
        result = SizeResult(units, seeded)
        f = result.figures
        if only == "dashboard":
            f["dashboard_miss"] = _dashboard_miss(s, cluster, org_id, n)
            return result
        lease = s.client.get("/api/v1/leases?limit=1").json()["items"][0]["id"]
        deep = int(units * 0.9)
        units_deep = asyncio.run(_deep_cursor(dsn, "units", "label", "label", org_id, deep))
        leases_first = s.client.get("/api/v1/leases?limit=2").json()["nextCursor"]
        assert leases_first
        leases_deep = asyncio.run(
            _deep_cursor(dsn, "leases", "createdAt", "created_at", org_id, deep)
        )
        log(f"measuring {units} units")
        f["properties"] = s.measure("properties page 1", "/api/v1/properties?limit=50", n)
        f["units"] = s.measure("units page 1", "/api/v1/units?limit=50", n)
        f["units_deep"] = s.measure(
            "units deep page (90%)", f"/api/v1/units?limit=50&cursor={units_deep}", n
        )
        f["leases"] = s.measure("leases page 1", "/api/v1/leases?limit=50", n)
        f["leases_deep"] = s.measure(
            "leases deep page (90%)",
            f"/api/v1/leases?limit=50&sort=createdAt&cursor={leases_deep}",
            n,
        )
        f["ledger"] = s.measure("ledger page (20 entries)", f"/api/v1/leases/{lease}/ledger", n)
        f["dashboard_miss"] = _dashboard_miss(s, cluster, org_id, n)
        f["csv"] = s.csv(2 if units > 10_000 else 5)
        result.billing = _billing(cluster.env, seeded.leases, dsn)
        return result
    finally:
        cluster.stop()
        try:
            pg_drop(admin, db_url)
        except Exception as exc:  # the run's figures matter more than the cleanup message
            log(f"could not drop {db_url}: {exc!r}")
        shutil.rmtree(tmp, ignore_errors=True)


ROWS = [
    ("properties", "properties page 1 (50)"),
    ("units", "units page 1 (50)"),
    ("units_deep", "units page at 90% depth (cursor)"),
    ("leases", "leases page 1 (50)"),
    ("leases_deep", "leases page at 90% depth (cursor)"),
    ("ledger", "a lease's ledger (20 entries)"),
    ("dashboard_miss", "dashboard, cache miss"),
    ("csv", "rent roll CSV (streamed, whole body)"),
]


def write(small: SizeResult, large: SizeResult, started: datetime, elapsed: float) -> None:
    load = os.getloadavg()
    lines = [
        "# Scale bench: costs as a portfolio grows",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min, `python -m bench.scale`"
        f" (`make bench-scale`). Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GB RAM, Python {platform.python_version()},"
        f" PostgreSQL (local). Load average at the end {load[0]:.1f} / {load[1]:.1f} /"
        f" {load[2]:.1f}: the machine was shared with other work during the run, so absolute"
        " times carry noise; ratios come from the same run.",
        "",
        "One Haven instance, no proxy, sequential requests (one connection). Latency p50/p99"
        " over the requests; CPU = the server process's user+system time per request.",
        "",
        "| data | small | large |",
        "|---|---:|---:|",
    ]
    for label, attr in (
        ("units (big organization)", "units"),
        ("leases (all organizations)", "leases"),
        ("ledger entries", "ledger_entries"),
        ("small organizations", "small_orgs"),
        ("seed time (COPY), s", "seconds"),
    ):
        a, b = getattr(small.seeded, attr), getattr(large.seeded, attr)
        lines.append(f"| {label} | {a:,.0f} | {b:,.0f} |")
    lines += [
        "",
        "| request | small p50 / p99 ms | large p50 / p99 ms | p50 ratio | small CPU ms | "
        "large CPU ms | CPU ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in ROWS:
        a, b = small.figures[key], large.figures[key]
        if "failed" in b.extra:
            lines.append(
                f"| {label} | {a.p50_ms:.1f} / {a.p99_ms:.1f} | failed: {b.extra['failed']} | "
                f"- | {a.cpu_ms:.2f} | - | - |"
            )
            continue
        lines.append(
            f"| {label} | {a.p50_ms:.1f} / {a.p99_ms:.1f} | {b.p50_ms:.1f} / {b.p99_ms:.1f} | "
            f"{b.p50_ms / a.p50_ms:.2f}x | {a.cpu_ms:.2f} | {b.cpu_ms:.2f} | "
            f"{b.cpu_ms / a.cpu_ms:.2f}x |"
        )
    ca, cb = small.figures["csv"].extra, large.figures["csv"].extra
    ba, bb = small.billing, large.billing
    lines += [
        "",
        "| streamed and batched work | small | large |",
        "|---|---:|---:|",
        f"| CSV bytes | {ca['bytes']:,} | {cb['bytes']:,} |",
        f"| CSV chunks received | {ca['chunks']:,} | {cb['chunks']:,} |",
        f"| CSV time to first byte, ms | {ca['first_byte_ms']:.0f} | {cb['first_byte_ms']:.0f} |",
        f"| server RSS during the CSV, MB | {ca['server_rss_mb']:.0f} | "
        f"{cb['server_rss_mb']:.0f} |",
        f"| billing run, s | {ba['seconds']:.1f} | {bb['seconds']:.1f} |",
        f"| billing, leases per second | {ba['leases_per_s']:.0f} | {bb['leases_per_s']:.0f} |",
        f"| billing process peak RSS, MB | {ba['peak_rss_mb']:.0f} | {bb['peak_rss_mb']:.0f} |",
        f"| billing output | {ba['output']} | {bb['output']} |",
        "",
    ]
    RESULTS.write_text("\n".join(lines) + "\n")
    log(f"wrote {RESULTS}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--units", type=int, default=100_000, help="the large size's units")
    parser.add_argument("--small-units", type=int, default=1_000, help="the small size's units")
    parser.add_argument("--small-orgs", type=int, default=None, help="default: units // 100")
    parser.add_argument("--requests", type=int, default=60, help="requests per page figure")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite the results")
    parser.add_argument(
        "--only",
        choices=["dashboard"],
        default=None,
        help="measure only the dashboard miss (seed, backfill, requests); appends its figures",
    )
    args = parser.parse_args()
    started, t0 = datetime.now(UTC), time.perf_counter()
    sizes = []
    for units in (args.small_units, args.units):
        orgs = args.small_orgs if args.small_orgs is not None else units // 100
        sizes.append(measure_size(units, orgs, args.requests, args.only))
    if args.only == "dashboard":
        if not args.no_write:
            write_only_dashboard(sizes, started, time.perf_counter() - t0)
        return 0
    if not args.no_write:
        write(sizes[0], sizes[1], started, time.perf_counter() - t0)
    return 0
