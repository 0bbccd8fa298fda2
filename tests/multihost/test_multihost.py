"""Haven across hosts: five failure scenarios under steady mixed load, in network namespaces.

Two runs of the same testbed (tests/support_netns.py): nginx in front and PostgreSQL
direct, then HAProxy in front and PgBouncer (transaction mode) between the instances
and PostgreSQL. Redis is a Valkey primary and replica watched by three sentinels, and
every instance reaches it through REDIS_SENTINELS. The traffic is the fault suite's
(tests/support_traffic.py): reads, and tenant and payment writes with Idempotency-Keys
from a client that retries 502/503/504 and transport errors with the same key.

Run with `make multihost` (root; skipped with the package to install otherwise).
HAVEN_MULTIHOST_REPORT=docs/reliability.md rewrites that file's Multi-host table.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from haven.devcluster.render import (
    Upstream,
    find_haproxy,
    find_nginx,
    haproxy_config,
    nginx_config,
    write_runtime,
)
from support_cluster import Spawned, clean_env
from support_netns import NetBed, pg_bindir, skip_reason, which
from support_sentinel import (
    SERVICE,
    primary_of,
    replica_caught_up,
    sentinel_args,
    server_args,
    wait_settled,
)
from support_traffic import Client, Org, Recorder, drive, setup_org, verify_writes

pytestmark = pytest.mark.slow

APPS = ("app1", "app2", "app3")
APP_PORT = 4000
LB_PORT = 8080
VALKEY_PORT = 6379
SENTINEL_PORT = 26379
SENTINEL_PASSWORD = "multihost-sentinel-secret"
OPERATOR_TOKEN = secrets.token_urlsafe(32)  # the registry view is an operator endpoint
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
RECOVERY_S = 10.0
# A careful client's budget for one logical request: above the load balancer's upstream
# read timeout, so a request stranded on a host that stopped answering is retried.
RETRY_BUDGET = 25.0
RESULTS: list[dict[str, Any]] = []


@dataclass
class Run:
    name: str
    lb: str
    pgbouncer: bool


RUNS = [Run("nginx+postgres", "nginx", False), Run("haproxy+pgbouncer", "haproxy", True)]


@dataclass
class Bed:
    """One running testbed and what the scenarios need to drive it."""

    net: NetBed
    run: Run
    tmp: Path
    pg_dir: Path
    env: dict[str, str]
    direct_dsn: str
    apps: dict[str, Spawned] = field(default_factory=dict)
    postgres: Spawned | None = None
    pgbouncer: Spawned | None = None
    valkeys: dict[str, Spawned] = field(default_factory=dict)
    version: dict[str, str] = field(default_factory=dict)

    @property
    def lb_url(self) -> str:
        return f"http://{self.net.ip('lb')}:{LB_PORT}"

    @property
    def sentinels(self) -> list[str]:
        return [f"{self.net.ip(h)}:{SENTINEL_PORT}" for h in ("kv1", "kv2", "db")]

    def valkey_host(self, address: str) -> str:
        ip = address.rpartition(":")[0]
        return next(h for h in ("kv1", "kv2") if self.net.ip(h) == ip)


# -- building the testbed -------------------------------------------------------------------


def _postgres_args(bed: Bed) -> list[str]:
    bindir = pg_bindir()
    assert bindir is not None
    return [
        str(bindir / "postgres"),
        "-D", str(bed.pg_dir / "data"),
        "-c", f"listen_addresses={bed.net.ip('db')}",
        "-c", "port=5432",
        "-c", f"unix_socket_directories={bed.pg_dir}",
        "-c", "max_connections=200",
        "-c", "fsync=off",
        "-c", "synchronous_commit=off",
        "-c", "full_page_writes=off",
        "-c", "shared_buffers=32MB",
    ]  # fmt: skip


def _start_postgres(bed: Bed) -> None:
    bed.postgres = bed.net.spawn("db", _postgres_args(bed), "postgres", user="postgres")
    _wait_tcp(bed, bed.net.ip("db"), 5432, "PostgreSQL")


def _start_pgbouncer(bed: Bed) -> None:
    binary = which("pgbouncer")
    assert binary is not None
    bed.pgbouncer = bed.net.spawn(
        "db", [binary, str(bed.pg_dir / "pgbouncer.ini")], "pgbouncer", user="postgres"
    )
    _wait_tcp(bed, bed.net.ip("db"), 6432, "PgBouncer")


def _wait_tcp(bed: Bed, host: str, port: int, what: str, timeout: float = 30) -> None:
    import socket

    def probe() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex((host, port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError(f"{what} did not listen on {host}:{port} within {timeout}s")

    bed.net.call(probe)


def _setup_postgres(bed: Bed) -> None:
    bindir = pg_bindir()
    assert bindir is not None
    data = bed.pg_dir / "data"
    subprocess.run(
        [
            "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
            str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--no-sync",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {bed.net.subnet} trust\n")
    _start_postgres(bed)

    def create() -> None:
        import asyncpg

        async def run() -> None:
            dsn = f"postgresql://postgres@{bed.net.ip('db')}:5432/postgres"
            for _ in range(100):  # listening comes before accepting: "starting up"
                try:
                    conn = await asyncpg.connect(dsn, timeout=5)
                    break
                except asyncpg.CannotConnectNowError:
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError("PostgreSQL did not accept connections within 20 s")
            try:
                await conn.execute("CREATE DATABASE haven")
            finally:
                await conn.close()

        asyncio.run(run())

    bed.net.call(create)
    if bed.run.pgbouncer:
        (bed.pg_dir / "userlist.txt").write_text('"postgres" ""\n')
        (bed.pg_dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"haven = host={bed.net.ip('db')} port=5432 dbname=haven user=postgres\n"
            "[pgbouncer]\n"
            f"listen_addr = {bed.net.ip('db')}\n"
            "listen_port = 6432\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {bed.pg_dir / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            "max_client_conn = 500\n"
            "default_pool_size = 40\n"
            "server_reset_query =\n"
            "ignore_startup_parameters = extra_float_digits\n"
            f"logfile = {bed.pg_dir / 'pgbouncer.log'}\n"
            f"pidfile = {bed.pg_dir / 'pgbouncer.pid'}\n"
        )
        _start_pgbouncer(bed)


def _setup_valkey(bed: Bed) -> None:
    primary = f"{bed.net.ip('kv1')}:{VALKEY_PORT}"
    for host, of in (("kv1", None), ("kv2", primary)):
        _start_valkey(bed, host, of)
    for host, address in zip(("kv1", "kv2", "db"), bed.sentinels, strict=True):
        args = sentinel_args(
            bed.tmp / f"sentinel-{host}",
            bed.net.ip(host),
            SENTINEL_PORT,
            primary,
            password=SENTINEL_PASSWORD,
        )
        bed.net.spawn(host, args, f"sentinel-{host}")
        del address
    bed.net.call(lambda: wait_settled(bed.sentinels, 1, 60, SENTINEL_PASSWORD))


def _start_valkey(bed: Bed, host: str, replica_of: str | None) -> None:
    args = server_args(bed.net.ip(host), VALKEY_PORT, bed.tmp / f"valkey-{host}", replica_of)
    bed.valkeys[host] = bed.net.spawn(host, args, f"valkey-{host}-{len(bed.net.children)}")


def _app_env(bed: Bed, app: str) -> dict[str, str]:
    env = dict(bed.env)
    env.update(
        HOST=bed.net.ip(app),
        PORT=str(APP_PORT),
        INSTANCE_ID=f"{app}-{bed.version.get(app, 'v1')}",
    )
    return env


def _start_app(bed: Bed, app: str) -> None:
    child = bed.net.spawn(
        app,
        [sys.executable, "-m", "haven", "serve"],
        f"{app}-{len(bed.net.children)}",
        env=_app_env(bed, app),
    )
    bed.apps[app] = child
    url = f"http://{bed.net.ip(app)}:{APP_PORT}/ready"

    def ready() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise AssertionError(f"{app} exited during start:\n{child.output()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"{app} was not ready within 60 s:\n{child.output()[-3000:]}")

    bed.net.call(ready)


def _setup_lb(bed: Bed) -> None:
    runtime = bed.tmp / "lb"
    write_runtime(runtime)
    upstreams = [
        Upstream(f"api-{i + 1}", f"{bed.net.ip(a)}:{APP_PORT}") for i, a in enumerate(APPS)
    ]
    listen = f"{bed.net.ip('lb')}:{LB_PORT}"
    if bed.run.lb == "nginx":
        binary = find_nginx()
        assert binary is not None
        text = nginx_config(
            upstreams, listen=listen, runtime_dir=runtime, worker_processes="1", user="root root"
        )
        conf = runtime / "nginx.conf"
        conf.write_text(tune_nginx(text))
        args = [binary, "-p", str(runtime), "-c", str(conf), "-g", "daemon off;"]
    else:
        binary = find_haproxy()
        assert binary is not None
        text = haproxy_config(
            upstreams, listen=listen, stats_listen=f"{bed.net.ip('lb')}:8404", runtime_dir=runtime
        )
        conf = runtime / "haproxy.cfg"
        conf.write_text(tune_haproxy(text))
        args = [binary, "-W", "-db", "-f", str(conf)]
    bed.net.spawn("lb", args, bed.run.lb)
    _wait_tcp(bed, bed.net.ip("lb"), LB_PORT, bed.run.lb)


def tune_nginx(text: str) -> str:
    """NetBed timeouts: a host that stops answering is given up on in 1 s (connect) and
    a request stranded on it in 12 s (read: above Haven's worst Redis-outage answer)."""
    text = re.sub(r"proxy_connect_timeout\s+\S+;", "proxy_connect_timeout 1s;", text)
    text = re.sub(r"proxy_read_timeout\s+\S+;", "proxy_read_timeout 12s;", text)
    return re.sub(r"proxy_next_upstream_timeout\s+\S+;", "proxy_next_upstream_timeout 20s;", text)


def tune_haproxy(text: str) -> str:
    """NetBed timeouts: checks every 500 ms, a silent host is down after two missed ones."""
    text = re.sub(r"timeout connect \S+", "timeout connect 1s", text)
    text = re.sub(r"timeout server \S+", "timeout server 12s", text)
    text = text.replace(
        "default-server check inter 1s fall 2 rise 2",
        "default-server check inter 500ms fall 2 rise 2",
    )
    return text.replace(
        "    timeout queue 10s\n", "    timeout queue 10s\n    timeout check 500ms\n"
    )


@pytest.fixture(scope="module", params=RUNS, ids=[r.name for r in RUNS])
def bed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    run: Run = request.param
    tools = {"pgbouncer": "pgbouncer"} if run.pgbouncer else {}
    tools[run.lb] = run.lb
    reason = skip_reason(tools)
    if reason is None and run.lb == "nginx" and find_nginx() is None:
        reason = "nginx not found: apt-get install nginx"
    if reason is not None:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp(f"multihost-{run.lb}")
    net = NetBed(tmp)
    # PostgreSQL runs as `postgres`, which cannot enter pytest's private tmp folders.
    pg_dir = Path(tempfile.mkdtemp(prefix=f"haven-{net.run}-pg-"))
    shutil.chown(pg_dir, "postgres", "postgres")
    os.chmod(pg_dir, 0o700)
    db_port = 6432 if run.pgbouncer else 5432
    query = "?prepared_statement_cache_size=0" if run.pgbouncer else ""
    bed = Bed(
        net=net,
        run=run,
        tmp=tmp,
        pg_dir=pg_dir,
        env={},
        direct_dsn=f"postgresql://postgres@{net.ip('db')}:5432/haven",
    )
    bed.env = clean_env(
        HAVEN_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(48),
        OPERATOR_TOKEN=OPERATOR_TOKEN,
        DATABASE_URL=f"postgresql+asyncpg://postgres@{net.ip('db')}:{db_port}/haven{query}",
        REDIS_SENTINELS=",".join(bed.sentinels),
        REDIS_SENTINEL_MASTER=SERVICE,
        REDIS_SENTINEL_PASSWORD=SENTINEL_PASSWORD,
        LOG_LEVEL="warning",
        LOG_FORMAT="console",
        RATE_LIMIT_ENABLED="true",
        RATE_LIMIT_GLOBAL="1000000",
        RATE_LIMIT_PER_USER="1000000",
        RATE_LIMIT_AUTH="1000",
        DRAIN_DELAY="1500",
        SHUTDOWN_TIMEOUT="10000",
        DB_POOL_MIN="2",
        DB_POOL_MAX="10",
        TRUST_PROXY="true",
        TRUSTED_PROXIES=f"{net.ip('lb')}/32",
    )
    try:
        net.build()
        _setup_postgres(bed)
        _setup_valkey(bed)
        # Migrations go to PostgreSQL itself (their advisory lock needs a session).
        migrate_env = dict(
            bed.env, DATABASE_URL=f"postgresql+asyncpg://postgres@{net.ip('db')}:5432/haven"
        )
        migrated = subprocess.run(
            ["ip", "netns", "exec", net.ns("app1"), sys.executable, "-m", "haven", "migrate"],
            env=migrate_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        for app in APPS:
            _start_app(bed, app)
        _setup_lb(bed)
        yield bed
    finally:
        net.close()
        shutil.rmtree(pg_dir, ignore_errors=True)
        alive = [c.pid for c in net.children if c.process.poll() is None]
        assert alive == [], f"processes left running: {alive}"
        assert net.leftovers() == [], "network namespaces left behind"


# -- traffic and checks -----------------------------------------------------------------------


@dataclass
class Outcome:
    recorder: Recorder
    org: Org
    writes: dict[str, int]
    fault_started: float
    fault_ended: float
    recovered_at: float | None
    extra: dict[str, Any] = field(default_factory=dict)


async def _traffic(
    bed: Bed,
    fault: Callable[[Client, Org, dict[str, Any]], Awaitable[None]],
    *,
    before: float = 2.0,
    after: float = 3.0,
) -> Outcome:
    recorder = Recorder()
    client = Client(bed.lb_url, recorder, retry_budget=RETRY_BUDGET, timeout=20.0)
    org = await setup_org(client)
    stop = asyncio.Event()
    traffic = asyncio.create_task(drive(client, org, stop, workers=6, pause=0.02))
    extra: dict[str, Any] = {}
    try:
        await asyncio.sleep(before)
        started = time.monotonic()
        await fault(client, org, extra)
        ended = time.monotonic()
        recovered = await _recovered(client, org)
        await asyncio.sleep(after)
    finally:
        stop.set()
        await traffic
    writes = await verify_writes(client, org, recorder)
    writes.update(await _database_check(bed, org, recorder))
    await client.aclose()
    started = extra.pop("started", started)  # the fault's own first moment, if it says
    return Outcome(recorder, org, writes, started, ended, recovered, extra)


async def _recovered(client: Client, org: Org) -> float | None:
    """When six reads in a row first succeed, each at a single attempt (None: not in 10 s)."""
    deadline = time.monotonic() + RECOVERY_S
    while time.monotonic() < deadline:
        results = []
        for _ in range(6):
            try:
                r = await client.http.get("/api/v1/properties?limit=1", headers=org.headers)
                results.append(r.status_code == 200)
            except httpx.TransportError:
                results.append(False)
        if all(results):
            return time.monotonic()
        await asyncio.sleep(0.1)
    return None


async def _database_check(bed: Bed, org: Org, recorder: Recorder) -> dict[str, int]:
    """Against PostgreSQL itself: every acknowledged write is there once, none twice."""
    import asyncpg

    conn = await asyncpg.connect(bed.direct_dsn, timeout=5)
    try:
        tenants = {
            r["last_name"]: r["n"]
            for r in await conn.fetch(
                "SELECT last_name, count(*) AS n FROM tenants WHERE organization_id = "
                "(SELECT organization_id FROM leases WHERE id = $1) GROUP BY last_name",
                uuid.UUID(org.lease_id),
            )
        }
        payments = {
            r["reference"]: r["n"]
            for r in await conn.fetch(
                "SELECT reference, count(*) AS n FROM ledger_entries "
                "WHERE lease_id = $1 AND type = 'payment' GROUP BY reference",
                uuid.UUID(org.lease_id),
            )
        }
    finally:
        await conn.close()
    lost = duplicated = 0
    for lg in recorder.logical:
        if lg.marker is None:
            continue
        seen = (tenants if lg.op == "POST tenant" else payments).get(f"m-{lg.marker}", 0)
        duplicated += seen > 1
        lost += lg.ok and seen == 0
    return {"db_lost": lost, "db_duplicates": duplicated}


def _in_thread(fn: Callable[[], Any]) -> Awaitable[Any]:
    return asyncio.to_thread(fn)


def _record(bed: Bed, scenario: str, out: Outcome) -> dict[str, Any]:
    failed = out.recorder.failed_attempts()
    window = max((a.at for a in failed), default=out.fault_started) - out.fault_started
    first = min((a.at for a in failed), default=out.fault_started) - out.fault_started
    row = {
        "scenario": scenario,
        "run": bed.run.name,
        "requests": len(out.recorder.logical),
        "failed_attempts": len(failed),
        "failed_requests": len(out.recorder.failed_logical()),
        "statuses": dict(sorted((str(k), v) for k, v in out.recorder.statuses().items())),
        "error_window_s": round(max(0.0, window - first), 1) if failed else 0.0,
        "fault_s": round(out.fault_ended - out.fault_started, 1),
        "recovered_s": (
            round(out.recovered_at - out.fault_ended, 1) if out.recovered_at is not None else None
        ),
        "lost": out.writes["lost"] + out.writes["db_lost"],
        "duplicates": out.writes["duplicates"] + out.writes["db_duplicates"],
        "max_latency_ms": round(out.recorder.max_latency_ms()),
        **out.extra,
    }
    RESULTS.append(row)
    print(f"\nMULTIHOST {row}")
    return row


def _assert_writes(out: Outcome) -> None:
    assert out.writes == {"lost": 0, "duplicates": 0, "db_lost": 0, "db_duplicates": 0}
    assert "500" not in {str(s) for s in out.recorder.statuses()}


def _assert_no_failures(out: Outcome) -> None:
    assert out.recorder.logical, "no traffic was recorded"
    assert out.recorder.failed_logical() == [], out.recorder.failed_logical()[:5]
    _assert_writes(out)


def _assert_outage_only(out: Outcome, *, slack: float = RECOVERY_S) -> None:
    """Errors only inside the outage window, each a 503 with Retry-After; recovery in 10 s."""
    _assert_writes(out)
    assert out.recovered_at is not None, "no recovery within 10 s of the fault's end"
    failed = out.recorder.failed_attempts()
    bad = [a for a in failed if a.status != 503 or not a.retry_after]
    assert bad == [], bad[:5]
    late = [a for a in failed if a.at > out.fault_ended + slack]
    assert late == [], late[:5]
    early = [a for a in failed if a.at < out.fault_started]
    assert early == [], early[:5]


def _scenario(bed: Bed, fn: Callable[[], Awaitable[Outcome]]) -> Outcome:
    return bed.net.call(lambda: asyncio.run(fn()))


# -- the scenarios ------------------------------------------------------------------------------


def test_1_an_app_host_stops_answering(bed: Bed) -> None:
    async def fault(client: Client, org: Org, extra: dict[str, Any]) -> None:
        await _in_thread(lambda: bed.net.cut("app2"))
        await asyncio.sleep(8.0)
        await _in_thread(lambda: bed.net.heal("app2"))

    out = _scenario(bed, lambda: _traffic(bed, fault))
    _record(bed, "1. app host cut off (no RST), 8 s", out)
    _assert_no_failures(out)


def test_2_valkey_primary_host_cut_off_sentinel_promotes_the_replica(bed: Bed) -> None:
    async def fault(client: Client, org: Org, extra: dict[str, Any]) -> None:
        # A second session, made and replicated before the fault: it must survive.
        login = await client.call(
            "setup",
            "POST",
            "/api/v1/auth/login",
            headers={},
            json={"email": org.email, "password": org.password},
            record=False,
        )
        assert login.ok, login
        extra_headers = {"Authorization": f"Bearer {login.body['accessToken']}"}
        old = await _in_thread(lambda: primary_of(bed.sentinels, SENTINEL_PASSWORD))
        assert old is not None
        await _in_thread(lambda: replica_caught_up(old, 5))
        host = bed.valkey_host(old)
        t0 = extra["started"] = time.monotonic()
        await _in_thread(lambda: bed.net.cut(host))
        new = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = await _in_thread(lambda: primary_of(bed.sentinels[::-1], SENTINEL_PASSWORD))
            if new is not None and new != old:
                break
            await asyncio.sleep(0.2)
        assert new is not None, "the sentinels did not promote the replica"
        assert new != old, "the sentinels did not promote the replica"
        extra["promoted_after_s"] = round(time.monotonic() - t0, 1)
        extra["old"], extra["new"], extra["host"] = old, new, host
        extra["headers"] = extra_headers

    async def body() -> Outcome:
        out = await _traffic(bed, fault)
        # Both sessions made before the fault still work; the registry is whole again.
        async with httpx.AsyncClient(base_url=bed.lb_url, timeout=10) as http:
            for headers in (out.org.headers, out.extra.pop("headers")):
                me = await http.get("/api/v1/auth/me", headers=headers)
                assert me.status_code == 200, me.text
                assert "ratelimit-remaining" in me.headers
            deadline = time.monotonic() + 15
            count = 0
            while time.monotonic() < deadline and count != len(APPS):
                r = await http.get("/api/v1/load-balancer/instances", headers=OPERATOR)
                count = r.json().get("count", 0) if r.status_code == 200 else 0
                await asyncio.sleep(0.5)
            assert count == len(APPS), "every instance re-registers on the new primary"
        return out

    try:
        out = _scenario(bed, body)
    finally:
        _heal_valkey(bed)
    _record(bed, "2. Valkey primary host cut off (Sentinel failover)", out)
    _assert_outage_only(out)


def _heal_valkey(bed: Bed) -> None:
    """Bring a cut Valkey host back; the sentinels turn its server into a replica."""
    for host in list(bed.net.cut_hosts):
        bed.net.heal(host)
    bed.net.call(lambda: wait_settled(bed.sentinels, 1, 60, SENTINEL_PASSWORD))


def test_3_app_hosts_lose_valkey_for_5_seconds(bed: Bed) -> None:
    async def fault(client: Client, org: Org, extra: dict[str, Any]) -> None:
        def cut() -> None:
            for app in APPS:
                for kv in ("kv1", "kv2"):
                    bed.net.blackhole(app, kv)

        await _in_thread(cut)
        await asyncio.sleep(5.0)
        await _in_thread(bed.net.unblackhole_all)

    try:
        out = _scenario(bed, lambda: _traffic(bed, fault))
    finally:
        bed.net.unblackhole_all()
    _record(bed, "3. app hosts lose Valkey for 5 s", out)
    _assert_outage_only(out)


def test_4_postgresql_restarts(bed: Bed) -> None:
    async def fault(client: Client, org: Org, extra: dict[str, Any]) -> None:
        def restart() -> None:
            assert bed.postgres is not None
            bed.postgres.signal(signal.SIGINT)  # fast shutdown: sessions end, then exit
            bed.postgres.wait(30)
            _start_postgres(bed)
            if bed.pgbouncer is not None:
                bed.pgbouncer.signal(signal.SIGTERM)  # immediate shutdown
                bed.pgbouncer.wait(30)
                _start_pgbouncer(bed)

        await _in_thread(restart)

    out = _scenario(bed, lambda: _traffic(bed, fault))
    name = "PostgreSQL and PgBouncer restart" if bed.pgbouncer else "PostgreSQL restarts"
    _record(bed, f"4. {name}", out)
    _assert_outage_only(out)


def test_5_rolling_upgrade_across_hosts(bed: Bed) -> None:
    """Each host in turn: SIGTERM (drain), then the next version starts on it.

    "Two versions" here: the same code started as a new release (INSTANCE_ID
    `appN-v2`), so that for the length of the roll v1 and v2 instances answer
    together behind the load balancer; the test checks both served requests.
    """
    seen: set[str] = set()

    async def fault(client: Client, org: Org, extra: dict[str, Any]) -> None:
        for app in APPS:
            await _in_thread(lambda app=app: _roll(bed, app))
            seen.update(a.instance for a in client.recorder.attempts if a.instance)
        extra["versions_seen"] = sorted({i.rsplit("-", 1)[1] for i in seen})

    async def body() -> Outcome:
        out = await _traffic(bed, fault, after=2.0)
        out.extra.update(await _connections(bed))
        # Every instance of the new release takes traffic (HAProxy waits for `rise 2`).
        answered: set[str] = set()
        async with httpx.AsyncClient(base_url=bed.lb_url, timeout=10) as http:
            for _ in range(200):
                r = await http.get("/api/v1/properties?limit=1", headers=out.org.headers)
                answered.add(r.headers.get("x-instance-id", ""))
                if {f"{app}-v2" for app in APPS} <= answered:
                    break
                await asyncio.sleep(0.05)
        out.extra["new_release_answered"] = sorted(answered)
        return out

    out = _scenario(bed, body)
    _record(bed, "5. rolling upgrade across hosts", out)
    _assert_no_failures(out)
    assert {"v1", "v2"} <= set(out.extra["versions_seen"])  # both answered during the roll
    assert {f"{app}-v2" for app in APPS} <= set(out.extra.pop("new_release_answered"))


async def _connections(bed: Bed) -> dict[str, Any]:
    """Connections the three instances hold after the run (docs/capacity.md quotes them)."""
    import asyncpg
    from redis.asyncio import Redis

    conn = await asyncpg.connect(bed.direct_dsn, timeout=5)
    try:
        backends = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'haven' "
            "AND application_name LIKE 'haven:%'"
        )
        via_pgbouncer = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'haven' "
            "AND application_name NOT LIKE 'haven:%' AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    primary = await asyncio.to_thread(primary_of, bed.sentinels, SENTINEL_PASSWORD)
    assert primary is not None
    host, _, port = primary.rpartition(":")
    redis = Redis(host=host, port=int(port))
    try:
        clients = int((await redis.info("clients"))["connected_clients"])
    finally:
        await redis.aclose()
    return {
        "pg_backends": int(backends) + int(via_pgbouncer),
        "redis_clients": clients,
    }


def _roll(bed: Bed, app: str) -> None:
    child = bed.apps[app]
    child.signal(signal.SIGTERM)
    assert child.wait(30) == 0
    bed.version[app] = "v2" if bed.version.get(app, "v1") == "v1" else "v1"
    _start_app(bed, app)


# -- the report ------------------------------------------------------------------------------

MARK_START = "<!-- multihost:start -->"
MARK_END = "<!-- multihost:end -->"


def write_report() -> None:
    target = os.environ.get("HAVEN_MULTIHOST_REPORT")
    if not target or not RESULTS:
        return
    path = Path(target)
    text = path.read_text() if path.exists() else ""
    lines = [
        MARK_START,
        "| scenario | run | requests | failed attempts | failed requests | error window (s) "
        "| recovered (s after fault) | lost | duplicated | max latency (ms) | answers |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in sorted(RESULTS, key=lambda r: (r["scenario"], r["run"])):
        statuses = ", ".join(f"{k}: {v}" for k, v in r["statuses"].items())
        extra = f" (promoted after {r['promoted_after_s']} s)" if "promoted_after_s" in r else ""
        lines.append(
            f"| {r['scenario']}{extra} | {r['run']} | {r['requests']} | {r['failed_attempts']} "
            f"| {r['failed_requests']} | {r['error_window_s']} | {r['recovered_s']} "
            f"| {r['lost']} | {r['duplicates']} | {r['max_latency_ms']} | {statuses} |"
        )
    for r in RESULTS:
        if "pg_backends" in r:
            lines += [
                "",
                f"Connections after scenario 5, {r['run']} (3 instances, `DB_POOL_MIN=2`, "
                f"`DB_POOL_MAX=10`, 6 client workers): {r['pg_backends']} PostgreSQL backends "
                f"for the haven database; {r['redis_clients']} clients on the Valkey primary "
                "(the instances' pools plus the replica's link and two per sentinel).",
            ]
    lines += ["", f"Run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", MARK_END]
    block = "\n".join(lines)
    if MARK_START in text and MARK_END in text:
        head, _, rest = text.partition(MARK_START)
        _, _, tail = rest.partition(MARK_END)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


@pytest.fixture(scope="session", autouse=True)
def _report() -> Iterator[None]:
    yield
    with contextlib.suppress(OSError):
        write_report()
