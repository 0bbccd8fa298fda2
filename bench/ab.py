"""Server CPU per request of two builds side by side: `python -m bench.ab OTHER_SRC [PATH]`.

Starts two single-instance clusters (haven.devcluster, SQLite, each with its own Valkey):
"other" imports OTHER_SRC first on PYTHONPATH (e.g. an older checkout's src/), "this" runs
this checkout. Registers one user on each, fills the cache with one GET, then drives PATH
(default the cached dashboard, cookie) with wrk in alternating runs (order shuffled per
repeat) and reads each instance's CPU time (user + system, /proc via psutil) around every
run. Prints CPU ms per request and req/s per run, the medians, and the ratio this/other:
on a shared machine the ratio of interleaved runs is the figure to read, not the absolutes.

Environment: AB_REPEATS (default 7), AB_SECONDS (default 4), AB_CONNS (default 8),
AB_FORWARDED_FOR (an X-Forwarded-For value to send, as nginx would), AB_BODY (a JSON body:
POST it to PATH with the Bearer token instead of GETting it with the cookie), AB_LOG_LEVEL
(both builds' LOG_LEVEL, default warning), AB_THIS_LOG_LEVEL (this build's only: e.g. info
against warning measures the access line's cost per request), AB_DATABASE_URL (a PostgreSQL
server: each build gets a fresh database there, seeded as bench.profile seeds it: 50
properties, 500 units, 450 leases; e.g. PATH=/api/v1/properties?limit=50).

`python -m bench.ab --baseline [PATH]`: "other" is the raw-ASGI baseline (bench/baseline.py,
the same server and event loop) on this build's Valkey, reading the session and the cached
dashboard this build stored: this/other is then Haven's CPU per request over the raw one's.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil

from bench.run import HERE, log, pg_database, pg_drop
from bench.seed import seed
from haven.devcluster.cluster import Cluster, ClusterSpec
from haven.store.embedded import free_port

REPEATS = int(os.environ.get("AB_REPEATS", "7"))
SECONDS = int(os.environ.get("AB_SECONDS", "4"))
CONNS = int(os.environ.get("AB_CONNS", "8"))
BODY = os.environ.get("AB_BODY")
DATABASE_URL = os.environ.get("AB_DATABASE_URL")
IDLE_SECONDS = 3


def start(
    name: str, tmp: Path, pythonpath: str | None, db_url: str | None = None
) -> tuple[Cluster, str, int, int]:
    port = free_port()
    level = os.environ.get("AB_LOG_LEVEL", "warning")
    if name == "this":
        level = os.environ.get("AB_THIS_LOG_LEVEL", level)
    env = {
        "DATABASE_URL": db_url or f"sqlite+aiosqlite:///{tmp / (name + '.db')}",
        "LOG_LEVEL": level,
        "RATE_LIMIT_GLOBAL": "10000000",
        "RATE_LIMIT_PER_USER": "10000000",
        "RATE_LIMIT_AUTH": "10000",
        "RATE_LIMIT_AUTH_EMAIL": "10000",
        "RATE_LIMIT_REGISTER": "10000",
    }
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cluster = Cluster(
        ClusterSpec(
            instances=1,
            base_port=port,
            lb="none",
            runtime_dir=tmp / name,
            demo_data=False,
            drain_delay_ms=200,
            extra_env=env,
        ),
        log=log,
    )
    cluster.start()
    url = f"http://127.0.0.1:{port}"
    pid = cluster.instances[0].pid
    assert pid is not None
    assert cluster.valkey is not None
    valkey_pid = cluster.valkey.pid
    assert valkey_pid is not None
    if db_url is not None:
        org = asyncio.run(seed([url], log=log))
        return cluster, f"{url}|{org.cookie}|{org.token}", pid, valkey_pid
    r = httpx.post(
        f"{url}/api/v1/auth/register",
        json={
            "organizationName": "AB Homes",
            "name": "AB Owner",
            "email": f"ab-{uuid.uuid4().hex[:10]}@example.com",
            "password": "bench password 1",
        },
        timeout=30,
    )
    r.raise_for_status()
    cookie = r.cookies["haven_session"]
    token = r.json()["accessToken"]
    return cluster, f"{url}|{cookie}|{token}", pid, valkey_pid


def start_baseline(
    this: Cluster, target: str, tmp: Path
) -> tuple[subprocess.Popen[bytes], str, int]:
    """The raw baseline on `this` cluster's Valkey, serving the dashboard `this` cached."""
    import redis

    url, cookie, token = target.split("|")
    httpx.get(url + "/api/v1/dashboard", headers={"Cookie": f"haven_session={cookie}"})
    assert this.valkey is not None
    client = redis.Redis.from_url(this.valkey.url)
    try:
        keys = sorted(client.scan_iter(match="*:cache:*dashboard*"))
    finally:
        client.close()
    if not keys:
        raise SystemExit("no cached dashboard key found in Valkey")
    prefix = keys[0].decode().split(":cache:")[0]
    port = free_port()
    env = {
        **os.environ,
        "BASELINE_REDIS_URL": this.valkey.url,
        "BASELINE_SESSION_PREFIX": f"{prefix}:session:",
        "BASELINE_CACHE_KEY": keys[-1].decode(),
        "PYTHONPATH": str(HERE.parent),
    }
    with (tmp / "baseline.log").open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.baseline", str(port)], env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):  # up to 20 s
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        child.kill()
        raise SystemExit("the baseline did not start")
    return child, f"{base}|{cookie}|{token}", child.pid


def wrk_command(target: str, path: str) -> tuple[dict[str, str], list[str]]:
    """Warm the cache with one GET (or POST once); wrk's environment and arguments for `path`."""
    url, cookie, token = target.split("|")
    if BODY is not None:
        bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        httpx.post(url + path, headers=bearer, content=BODY).raise_for_status()
        env = {**os.environ, "BENCH_METHOD": "POST", "BENCH_BEARER": token, "BENCH_BODY": BODY}
        args = ["wrk", "-t1", f"-c{CONNS}", f"-d{SECONDS}s", "-s", str(HERE / "wrk.lua")]
        return env, [*args, url + path]
    httpx.get(url + path, headers={"Cookie": f"haven_session={cookie}"}).raise_for_status()
    env = {**os.environ, "BENCH_METHOD": "GET", "BENCH_COOKIE": f"haven_session={cookie}"}
    if os.environ.get("AB_FORWARDED_FOR"):
        env["BENCH_FORWARDED_FOR"] = os.environ["AB_FORWARDED_FOR"]
    args = ["wrk", "-t1", f"-c{CONNS}", f"-d{SECONDS}s", "-s", str(HERE / "wrk.lua"), url + path]
    return env, args


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    baseline = sys.argv[1] == "--baseline"
    other_src = "" if baseline else str(Path(sys.argv[1]).resolve())
    path = sys.argv[2] if len(sys.argv) > 2 else "/api/v1/dashboard"
    tmp = Path(tempfile.mkdtemp(prefix="haven-ab-"))
    clusters: list[Cluster] = []
    children: list[subprocess.Popen[bytes]] = []
    databases: list[tuple[str, str]] = []  # (admin dsn, url) of each fresh database
    try:
        targets: dict[str, tuple[str, int, int]] = {}
        if baseline:
            cluster, target, pid, valkey_pid = start("this", tmp, None)
            clusters.append(cluster)
            targets["this"] = (target, pid, valkey_pid)
            child, base_target, base_pid = start_baseline(cluster, target, tmp)
            children.append(child)
            targets["other"] = (base_target, base_pid, valkey_pid)
        for name, pp in () if baseline else (("other", other_src), ("this", None)):
            db_url = None
            if DATABASE_URL:
                db_url, admin = pg_database(DATABASE_URL)
                assert db_url is not None
                assert admin is not None
                databases.append((admin, db_url))
            cluster, target, pid, valkey_pid = start(name, tmp, pp, db_url)
            clusters.append(cluster)
            targets[name] = (target, pid, valkey_pid)
        # Each process's own background CPU (heartbeats, the webhook worker's polling) while no
        # request arrives, in ms per second: on a loaded machine, where few requests get
        # through, it is a visible share of CPU per request; "net" figures take it out.
        idle: dict[str, float] = {}
        for name, (_, pid, _) in targets.items():
            proc = psutil.Process(pid)
            c0, w0 = proc.cpu_times(), time.perf_counter()
            time.sleep(IDLE_SECONDS)
            c1, w1 = proc.cpu_times(), time.perf_counter()
            idle[name] = ((c1.user + c1.system) - (c0.user + c0.system)) * 1000 / (w1 - w0)
            log(f"idle {name:<5} {idle[name]:.2f} ms CPU per second")
        results: dict[str, list[tuple[float, float, float]]] = {"other": [], "this": []}
        net: dict[str, list[float]] = {"other": [], "this": []}
        ratios: list[float] = []
        net_ratios: list[float] = []
        for rep in range(REPEATS):
            order = ["other", "this"]
            random.shuffle(order)
            cpu_of: dict[str, float] = {}
            net_of: dict[str, float] = {}
            for name in order:
                target, pid, valkey_pid = targets[name]
                env, args = wrk_command(target, path)
                proc, valkey = psutil.Process(pid), psutil.Process(valkey_pid)
                t0, v0, w0 = proc.cpu_times(), valkey.cpu_times(), time.perf_counter()
                out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
                t1, v1, w1 = proc.cpu_times(), valkey.cpu_times(), time.perf_counter()
                line = next(x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON "))
                res = json.loads(line.removeprefix("BENCH_JSON "))
                n = max(res["requests"], 1)
                cpu_ms = ((t1.user + t1.system) - (t0.user + t0.system)) * 1000 / n
                valkey_us = ((v1.user + v1.system) - (v0.user + v0.system)) * 1e6 / n
                rps = res["requests"] / (res["duration_us"] / 1e6)
                errors = res["status_errors"] + res["socket_errors"]
                results[name].append((cpu_ms, rps, valkey_us))
                cpu_of[name] = cpu_ms
                net_of[name] = max(cpu_ms - idle[name] * (w1 - w0) / n, 0.0)
                net[name].append(net_of[name])
                log(
                    f"rep {rep} {name:<5} {cpu_ms:.3f} ms CPU/req (net {net_of[name]:.3f}) "
                    f"{rps:7.0f} req/s valkey {valkey_us:.0f} us/req err {errors}"
                )
            ratios.append(cpu_of["this"] / cpu_of["other"])
            net_ratios.append(net_of["this"] / max(net_of["other"], 1e-9))
        for name in ("other", "this"):
            cpu = statistics.median(c for c, _, _ in results[name])
            rps = statistics.median(r for _, r, _ in results[name])
            valkey_us = statistics.median(v for _, _, v in results[name])
            print(
                f"{name:<5} median {cpu:.3f} ms CPU/req (net of idle "
                f"{statistics.median(net[name]):.3f}), {rps:.0f} req/s, "
                f"valkey {valkey_us:.0f} us CPU/req, idle {idle[name]:.2f} ms CPU/s"
            )
        print(
            f"this/other CPU per request: median {statistics.median(ratios):.3f} "
            f"(per repeat: {', '.join(f'{r:.2f}' for r in ratios)}); net of idle: median "
            f"{statistics.median(net_ratios):.3f} "
            f"(per repeat: {', '.join(f'{r:.2f}' for r in net_ratios)})"
        )
    finally:
        for child in children:
            child.terminate()
            child.wait(10)
        for cluster in clusters:
            cluster.stop()
        for admin, db_url in databases:
            pg_drop(admin, db_url)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
