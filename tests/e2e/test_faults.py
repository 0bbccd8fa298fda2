"""Zero-failure end-to-end tests under faults, behind real nginx and real HAProxy.

Three `haven serve` instances (started by the same code as `haven up`), a
Valkey with AOF on, the CI PostgreSQL when configured (SQLite otherwise),
and steady mixed traffic from tests/support_traffic.py. Each scenario records
every attempt and every logical request; the table of the last run goes to
docs/reliability.md when HAVEN_RELIABILITY_REPORT names that file
(`make reliability`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from haven.devcluster.cluster import Cluster, ClusterSpec
from haven.devcluster.render import find_haproxy, find_nginx
from support_cluster import clean_env, consecutive_free_ports, e2e_database
from support_traffic import Client, Org, Recorder, drive, one_operation, setup_org, verify_writes

pytestmark = pytest.mark.slow

RESULTS: list[dict[str, Any]] = []
KEEPALIVE_IDLE = 6.0  # longer than the load balancers' upstream keep-alive (4 s)


@pytest.fixture(scope="module", params=["nginx", "haproxy"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    lb = request.param
    if lb == "nginx" and find_nginx() is None:
        pytest.skip("nginx not found: apt-get install nginx")
    if lb == "haproxy" and find_haproxy() is None:
        pytest.skip("haproxy not installed: apt-get install haproxy")
    tmp = tmp_path_factory.mktemp(f"faults-{lb}")
    database_url, drop = e2e_database(tmp)
    base = consecutive_free_ports(5)
    spec = ClusterSpec(
        instances=3,
        base_port=base + 2,
        lb=lb,
        lb_port=base,
        stats_port=base + 1,
        runtime_dir=tmp / "run",
        drain_delay_ms=1500,
        shutdown_timeout_ms=10000,
        demo_data=False,
        valkey_appendonly=True,
        extra_env=clean_env(
            HAVEN_ENV="test",
            DATABASE_URL=database_url,
            LOG_LEVEL="warning",
            RATE_LIMIT_ENABLED="false",
            DB_POOL_MIN="2",
            DB_POOL_MAX="10",
        ),
    )
    c = Cluster(spec, log=lambda _line: None)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        for child in [*c.instances, c.balancer]:
            if child is not None and child.alive():
                child.stop(signal.SIGKILL, 5)
        if c.valkey is not None:
            c.valkey.cleanup()
        drop()


def _record(cluster: Cluster, scenario: str, recorder: Recorder, writes: dict[str, int]) -> None:
    retries = sum(lg.attempts - 1 for lg in recorder.logical)
    RESULTS.append(
        {
            "scenario": scenario,
            "lb": cluster.spec.lb,
            "requests": len(recorder.logical),
            "attempts": len(recorder.attempts),
            "failed_attempts": len(recorder.failed_attempts()),
            "failed_logical": len(recorder.failed_logical()),
            "retries": retries,
            "lost": writes.get("lost", 0),
            "duplicates": writes.get("duplicates", 0),
            "max_latency_ms": round(recorder.max_latency_ms()),
            "statuses": dict(recorder.statuses()),
        }
    )


async def _with_traffic(
    cluster: Cluster,
    fault: Callable[[], Awaitable[None]],
    *,
    before: float = 2.0,
    after: float = 2.0,
) -> tuple[Recorder, Org, Client]:
    recorder = Recorder()
    client = Client(cluster.lb_url, recorder)
    org = await setup_org(client)
    stop = asyncio.Event()
    traffic = asyncio.create_task(drive(client, org, stop))
    try:
        await asyncio.sleep(before)
        await fault()
        await asyncio.sleep(after)
    finally:
        stop.set()
        await traffic
    return recorder, org, client


async def _in_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(fn)


def _assert_zero_failures(
    recorder: Recorder, writes: dict[str, int], *, allow_post_retry: bool
) -> None:
    assert recorder.logical, "no traffic was recorded"
    assert recorder.failed_logical() == [], recorder.failed_logical()[:5]
    assert writes == {"lost": 0, "duplicates": 0}
    assert 500 not in recorder.statuses()
    failed = recorder.failed_attempts()
    if allow_post_retry:
        assert [a for a in failed if a.op.startswith("GET")] == [], failed[:5]
    else:
        assert failed == [], failed[:5]


def _traffic_scenario(
    cluster: Cluster, name: str, fault: Callable[[], Awaitable[None]], *, allow_post_retry: bool
) -> None:
    """Steady traffic around `fault`, then every write checked and the zero-failure bar held."""

    async def run() -> None:
        recorder, org, client = await _with_traffic(cluster, fault)
        writes = await verify_writes(client, org, recorder)
        await client.aclose()
        _record(cluster, name, recorder, writes)
        _assert_zero_failures(recorder, writes, allow_post_retry=allow_post_retry)

    asyncio.run(run())


def test_kill_9_one_instance_mid_traffic(cluster: Cluster) -> None:
    async def fault() -> None:
        await _in_thread(lambda: cluster.instances[1].stop(signal.SIGKILL, 10))
        await asyncio.sleep(2.0)
        await _in_thread(lambda: cluster.start_instance(1))

    _traffic_scenario(cluster, "1. kill -9 one instance", fault, allow_post_retry=True)


def test_sigterm_drains_one_instance_mid_traffic(cluster: Cluster) -> None:
    async def fault() -> None:
        await _in_thread(lambda: cluster.instances[0].stop(signal.SIGTERM, 30))
        assert cluster.instances[0].process.returncode == 0  # type: ignore[union-attr]
        await _in_thread(lambda: cluster.start_instance(0))

    _traffic_scenario(cluster, "2. SIGTERM (drain) one instance", fault, allow_post_retry=False)


async def _until_balanced_to(cluster: Cluster, i: int, within: float = 15.0) -> None:
    """Wait until the load balancer sends requests to instance i again.

    Ready at the instance is not yet in rotation at the balancer: nginx's passive checks
    keep an instance that refused a connection while it restarted out for `fail_timeout`
    (5 s) after it came back, so a rolling restart that stops the next instance sooner
    (as docs/deployment.md's procedures never do) can leave none in rotation.
    """
    name = f"api-{i + 1}"
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(f"{cluster.lb_url}/health")
                if response.headers.get("x-instance-id") == name:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError(f"the load balancer did not route to {name} within {within} s")


def test_rolling_restart_of_all_instances(cluster: Cluster) -> None:
    async def fault() -> None:
        for i in range(len(cluster.instances)):
            await _in_thread(lambda i=i: cluster.instances[i].stop(signal.SIGTERM, 30))
            await _in_thread(lambda i=i: cluster.start_instance(i))  # waits for /ready
            await _until_balanced_to(cluster, i)  # back in rotation before the next one

    _traffic_scenario(cluster, "3. rolling restart", fault, allow_post_retry=False)


def test_keepalive_race_idle_then_burst_of_posts(cluster: Cluster) -> None:
    async def run() -> None:
        import random

        recorder = Recorder()
        client = Client(cluster.lb_url, recorder, concurrency=20)
        org = await setup_org(client)
        rng = random.Random(4)
        for _ in range(20):  # warm every pooled connection
            await one_operation(client, org, rng, only="properties")
        await asyncio.sleep(KEEPALIVE_IDLE)
        sem = asyncio.Semaphore(20)

        async def post(i: int) -> None:
            async with sem:
                await one_operation(client, org, rng, only="tenant" if i % 2 else "payment")

        await asyncio.gather(*(post(i) for i in range(200)))
        writes = await verify_writes(client, org, recorder)
        await client.aclose()
        _record(cluster, "4. keep-alive race (idle, 200 POSTs)", recorder, writes)
        _assert_zero_failures(recorder, writes, allow_post_retry=False)

    asyncio.run(run())


def test_valkey_restart_sessions_survive_and_outage_is_503(cluster: Cluster) -> None:
    assert cluster.valkey is not None
    outage: list[tuple[int | None, str]] = []

    async def fault() -> None:
        await _in_thread(cluster.valkey.stop)  # type: ignore[union-attr]
        async with httpx.AsyncClient(base_url=cluster.lb_url, timeout=5) as probe:
            for _ in range(10):
                r = await probe.get("/api/v1/dashboard", headers=org_box[0].headers)
                outage.append((r.status_code, r.headers.get("content-type", "")))
                ready = await probe.get("/ready")
                assert ready.status_code == 200, "/ready must stay up during a shared outage"
                await asyncio.sleep(0.1)
        await _in_thread(cluster.valkey.start)  # type: ignore[union-attr]

    org_box: list[Org] = []

    async def run() -> None:
        recorder = Recorder()
        client = Client(cluster.lb_url, recorder)
        org = await setup_org(client)
        org_box.append(org)
        stop = asyncio.Event()
        traffic = asyncio.create_task(drive(client, org, stop))
        await asyncio.sleep(1.0)
        await fault()
        recovered_at = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = await client.call(
                "probe", "GET", "/api/v1/auth/me", headers=org.headers, record=False
            )
            if r.ok:
                recovered_at = time.monotonic()
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        stop.set()
        await traffic
        writes = await verify_writes(client, org, recorder)
        await client.aclose()
        _record(cluster, "5. Valkey restart", recorder, writes)
        assert recovered_at is not None, (
            "the cluster did not recover within 10 s of Valkey returning"
        )
        assert all(status == 503 and "problem+json" in ctype for status, ctype in outage), outage
        assert 500 not in recorder.statuses()
        assert writes["lost"] == 0
        assert writes["duplicates"] == 0

    asyncio.run(run())


def test_postgres_connection_loss_recovers(cluster: Cluster) -> None:
    url = cluster.env["DATABASE_URL"]
    if not url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set HAVEN_TEST_DATABASE_URL")
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")

    async def fault() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name LIKE 'haven:%' AND datname = current_database()"
            )
        finally:
            await conn.close()
        assert killed > 0

    async def run() -> None:
        recorder, org, client = await _with_traffic(cluster, fault, after=3.0)
        # Full recovery: six reads in a row (spread over every instance) succeed within 10 s.
        deadline = time.monotonic() + 10
        healthy = False
        while time.monotonic() < deadline and not healthy:
            results = [
                await client.call(
                    "probe", "GET", "/api/v1/properties", headers=org.headers, record=False
                )
                for _ in range(6)
            ]
            healthy = all(r.ok for r in results)
        writes = await verify_writes(client, org, recorder)
        await client.aclose()
        _record(cluster, "6. PostgreSQL connection loss", recorder, writes)
        assert healthy, "the pool did not recover within 10 s"
        assert 500 not in recorder.statuses()
        assert writes == {"lost": 0, "duplicates": 0}
        bad = [a for a in recorder.failed_attempts() if a.status not in (None, 503)]
        assert bad == [], bad[:5]

    asyncio.run(run())


def write_report() -> None:
    """Write the reliability table when asked (make reliability)."""
    target = os.environ.get("HAVEN_RELIABILITY_REPORT")
    if not target or not RESULTS:
        return
    lines = [
        "# Reliability: the last run of the fault suite",
        "",
        "Generated by `make reliability` (tests/e2e/test_faults.py): three `haven serve`",
        "instances, "
        "Valkey with AOF, steady mixed traffic (dashboard and property reads, tenant and payment",
        "writes with Idempotency-Keys) from a client that retries transport errors, 502/503 and",
        "409 idempotency-in-flight with the same key for up to 10 s.",
        "",
        "| scenario | load balancer | requests | attempts | failed attempts | failed requests "
        "| retries | lost writes | duplicate writes | max latency (ms) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines.extend(
        f"| {r['scenario']} | {r['lb']} | {r['requests']} | {r['attempts']} | "
        f"{r['failed_attempts']} | {r['failed_logical']} | {r['retries']} | {r['lost']} | "
        f"{r['duplicates']} | {r['max_latency_ms']} |"
        for r in sorted(RESULTS, key=lambda r: (r["scenario"], r["lb"]))
    )
    database = "PostgreSQL" if os.environ.get("HAVEN_TEST_DATABASE_URL") else "SQLite"
    lines += [
        "",
        f"Database: {database}. Failed attempts are answers the client retried (transport errors,",
        "502/503, 409 in flight); a failed request is one that still failed after its retries.",
        "",
        f"Run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
    ]
    # The Multi-host section (tests/multihost, `make multihost`) has its own generator.
    previous = Path(target).read_text() if Path(target).exists() else ""
    _, marker, section = previous.partition("## Multi-host")
    Path(target).write_text("\n".join(lines) + (f"\n{marker}{section}" if marker else ""))


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    with contextlib.suppress(OSError):
        write_report()
