"""Sample one Haven instance with py-spy while wrk drives a scenario; print the top costs.

    python -m bench.profile LABEL        (writes bench/profiles/LABEL-<scenario>.txt)

Starts Valkey and one instance (haven.devcluster, no load balancer), seeds the bench
organization, then for each of the bench's scenarios (/health, the cached dashboard,
/properties?limit=50, a lease ledger, the tenant POST; BENCH_ONLY picks some, and names
bench.run's PROFILED_ONLY ones, such as payments-post) runs wrk (8 connections;
BENCH_PROFILE_CONNS) and `py-spy record --format raw` on the instance. Each report lists the
functions by self time and by inclusive time (share of samples) and the instance's CPU
time per request; BENCH_PROFILE_NATIVE=1 samples C and Rust frames too (slows it),
BENCH_PROFILE_RAW=1 keeps py-spy's folded stacks as LABEL-<scenario>.raw.
To profile older code, put its src/ first on PYTHONPATH: the instance imports it.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench.run import (
    HERE,
    PROFILED_ONLY,
    SCENARIOS,
    Scenario,
    log,
    one_instance,
    pg_database,
    pg_drop,
)
from bench.seed import seed
from haven.store.embedded import free_port

SECONDS = int(os.environ.get("BENCH_PROFILE_SECONDS", "8"))
NATIVE = os.environ.get("BENCH_PROFILE_NATIVE") == "1"  # C/Rust frames too (py-spy --native)
KEEP_RAW = os.environ.get("BENCH_PROFILE_RAW") == "1"  # keep py-spy's stacks next to the report
CONNS = int(os.environ.get("BENCH_PROFILE_CONNS", "8"))  # wrk's connections
TOP = 18
RATE = 250


def report(raw: Path, title: str, rps: float, cpu: tuple[float, float]) -> str:
    """`cpu`: the instance's user and system CPU seconds while py-spy sampled (it runs
    alongside wrk for SECONDS of its run)."""
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        self_time[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    per_request = (total / RATE) / (rps * SECONDS) * 1e6 if rps else 0.0
    lines = [
        f"## {title}",
        "",
        f"{total} samples at {RATE} Hz over {SECONDS} s; wrk measured {rps:.0f} req/s meanwhile "
        f"(~{per_request:.0f} us of sampled Python time per request)",
        "",
        f"process CPU over the window: {cpu[0]:.2f} s user + {cpu[1]:.2f} s system "
        f"(~{1e6 * sum(cpu) / max(rps * SECONDS, 1):.0f} us per request)",
        "",
        "self time:",
        "",
    ]
    for name, n in self_time.most_common(TOP):
        lines.append(f"  {100 * n / max(total, 1):5.1f}%  {name}")
    lines += ["", "inclusive time:", ""]
    for name, n in inclusive.most_common(TOP + 52):
        lines.append(f"  {100 * n / max(total, 1):5.1f}%  {name}")
    return "\n".join(lines) + "\n"


def _short(frame: str) -> str:
    # py-spy raw frames look like "func (path/to/module.py:123)"; drop the line number.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def main() -> int:
    label = sys.argv[1] if len(sys.argv) > 1 else "now"
    out_dir = HERE / "profiles"
    out_dir.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="haven-profile-"))
    port = free_port()
    db_url, pg_admin = pg_database()  # PostgreSQL when BENCH_DATABASE_URL is set
    cluster = one_instance(tmp, port, db_url)
    try:
        cluster.start()
        url = f"http://127.0.0.1:{port}"
        org = asyncio.run(seed([url], log=log))
        pid = cluster.instances[0].pid
        only = {s for s in os.environ.get("BENCH_ONLY", "").split(",") if s}
        named = [sc for sc in PROFILED_ONLY if sc.name in only]  # only when asked for
        scenarios = [
            Scenario(sc.name, sc.path.format(lease=org.ledger_lease), sc.method, sc.auth, sc.body)
            for sc in [*SCENARIOS, *named]
        ]
        cookie = {"Cookie": f"haven_session={org.cookie}"}
        for sc in scenarios:
            if only and sc.name not in only:
                continue
            if sc.method == "GET":
                httpx.get(url + sc.path, headers=cookie).raise_for_status()
            env = {**os.environ, "BENCH_METHOD": sc.method, "BENCH_KEY_PREFIX": f"p{time.time()}"}
            if sc.auth == "cookie":
                env["BENCH_COOKIE"] = f"haven_session={org.cookie}"
            elif sc.auth == "bearer":
                env["BENCH_BEARER"] = org.token
            if sc.body:
                env["BENCH_BODY"] = sc.body
            wrk = subprocess.Popen(
                [
                    "wrk",
                    "-t1",
                    f"-c{CONNS}",
                    f"-d{SECONDS + 3}s",
                    "-s",
                    str(HERE / "wrk.lua"),
                    url + sc.path,
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            time.sleep(1)
            raw = tmp / f"{sc.name}.raw"
            before = psutil.Process(pid).cpu_times()
            subprocess.run(
                [
                    shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "-p",
                    str(pid),
                    "-d",
                    str(SECONDS),
                    "-r",
                    "250",
                    "-f",
                    "raw",
                    "-o",
                    str(raw),
                    *(["--native"] if NATIVE else ["--nonblocking"]),
                ],
                check=True,
                capture_output=True,
                timeout=SECONDS + 60,
            )
            after = psutil.Process(pid).cpu_times()
            out, _ = wrk.communicate(timeout=SECONDS + 30)
            rps = 0.0
            for line in out.splitlines():
                if line.startswith("BENCH_JSON "):
                    result = json.loads(line.removeprefix("BENCH_JSON "))
                    rps = result["requests"] / (result["duration_us"] / 1e6)
            db = "PostgreSQL" if db_url else "SQLite"
            title = f"{label}: {sc.name} ({sc.path.split('?')[0]}, wrk c{CONNS}, {db})"
            cpu = (after.user - before.user, after.system - before.system)
            text = report(raw, title, rps, cpu)
            (out_dir / f"{label}-{sc.name}.txt").write_text(text)
            if KEEP_RAW:
                shutil.copy(raw, out_dir / f"{label}-{sc.name}.raw")
            log(f"profiled {sc.name}")
    finally:
        cluster.stop()
        if db_url and pg_admin:
            pg_drop(pg_admin, db_url)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
