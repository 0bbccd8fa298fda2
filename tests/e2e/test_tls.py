"""TLS at the load balancer (issue 12): `haven up --tls` and `haven render-config --tls-*`.

Real nginx and HAProxy terminate TLS with a certificate from a throwaway CA;
the client trusts only that CA. Plain HTTP answers 308 to https, HSTS is on
every HTTPS answer and never on plain HTTP, /metrics is 404 at the load
balancer, and a sign-in over HTTPS gets Secure cookies that work.
"""

from __future__ import annotations

import signal
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from haven.devcluster.render import find_haproxy, find_nginx
from haven.devcluster.tls import make_dev_certificates
from support import unique_email
from support_cluster import clean_env, consecutive_free_ports, haven_cmd, spawn, wait_for

# Fixed ports (127.0.0.1:18080...): never beside the other file that binds them.
pytestmark = pytest.mark.xdist_group("fixed-ports")


HSTS = "max-age=31536000"


def _need(lb: str) -> None:
    if lb == "nginx" and find_nginx() is None:
        pytest.skip("nginx not found: apt-get install nginx")
    if lb == "haproxy" and find_haproxy() is None:
        pytest.skip("haproxy not installed: apt-get install haproxy")


def _hsts(response: httpx.Response) -> str | None:
    return response.headers.get("strict-transport-security")


@pytest.mark.slow
@pytest.mark.parametrize("lb", ["nginx", "haproxy"])
def test_haven_up_tls_terminates_redirects_sends_hsts_and_keeps_secure_sessions(
    lb: str, tmp_path: Path
) -> None:
    _need(lb)
    base = consecutive_free_ports(5)
    https_port, http_port, instance_base = base, base + 2, base + 3
    env = clean_env(
        HAVEN_ENV="development",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'haven.db'}",
        LOG_LEVEL="warning",
    )
    run_dir = tmp_path / "run"
    args = haven_cmd(
        "up",
        "--tls",
        "--instances",
        "2",
        "--lb",
        lb,
        "--lb-port",
        str(https_port),
        "--http-port",
        str(http_port),
        "--base-port",
        str(instance_base),
        "--no-demo-data",
        "--runtime-dir",
        str(run_dir),
    )
    https = f"https://127.0.0.1:{https_port}"
    ca = run_dir / "tls" / "ca.pem"
    with spawn(args, env, tmp_path / "up.log") as up:

        def lb_ready() -> bool:
            assert up.process.poll() is None, up.output()
            if not ca.exists():
                return False
            verify = ssl.create_default_context(cafile=str(ca))
            return httpx.get(f"{https}/health", verify=verify, timeout=1).status_code == 200

        wait_for(lb_ready, 120, f"haven up --tls --lb {lb} to answer on https")
        wait_for(lambda: "Ctrl-C" in up.output(), 10, "haven up to announce itself")
        assert f"CA certificate {ca.resolve()}" in up.output()
        assert f"Haven is up: {https}" in up.output()
        verify = ssl.create_default_context(cafile=str(ca))

        # The certificate is really checked: without the CA the handshake fails.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{https}/health", timeout=5)
        # Plain HTTP is not served on the HTTPS port (nginx answers 400 itself, HAProxy hangs up).
        try:
            wrong = httpx.get(f"http://127.0.0.1:{https_port}/health", timeout=5)
        except httpx.HTTPError:
            pass
        else:
            assert wrong.status_code == 400
            assert "x-instance-id" not in wrong.headers

        # Plain HTTP on the redirect port: 308 to the same path and query on https.
        with httpx.Client(timeout=10) as plain:
            for method in ("GET", "POST"):
                moved = plain.request(
                    method, f"http://127.0.0.1:{http_port}/api/v1/auth/me?probe=1"
                )
                assert moved.status_code == 308, (method, moved.status_code, moved.text)
                assert moved.headers["location"] == f"{https}/api/v1/auth/me?probe=1"
                assert _hsts(moved) is None  # HSTS over plain HTTP means nothing; never sent

        with httpx.Client(base_url=https, verify=verify, timeout=10) as client:
            health = client.get("/health")
            assert health.status_code == 200
            assert health.json()["success"] is True
            assert _hsts(health) == HSTS
            # Errors carry it too.
            missing = client.get("/api/v1/no-such-route")
            assert missing.status_code == 404
            assert _hsts(missing) == HSTS
            # Prometheus scrapes instances directly; through the LB /metrics does not exist.
            # Dot segments too: the instance resolves them, so the LB must see them resolved.
            spellings = ("/metrics", "/metrics/", "//metrics", "/%6Detrics", "/METRICS")
            dots = ("/%2E/metrics", "/metrics/%2E", "/x/%2E%2E/metrics", "/x/%2e%2E/%2e/metrics")
            for path in (*spellings, *dots):
                hidden = client.get(path)
                assert hidden.status_code == 404, (path, hidden.text[:200])
                assert "process_cpu_seconds_total" not in hidden.text, path
            # The cluster-wide views need the operator token through the LB as well.
            assert client.get("/api/v1/load-balancer/config").status_code == 401

            # Sign up, sign in and read /auth/me over HTTPS with the cookie alone.
            email, password = unique_email(), "correct horse battery"
            registered = client.post(
                "/api/v1/auth/register",
                json={
                    "organizationName": "TLS Homes",
                    "name": "Tess Owner",
                    "email": email,
                    "password": password,
                },
            )
            assert registered.status_code == 201, registered.text
            client.cookies.clear()
            login = client.post("/api/v1/auth/login", json={"email": email, "password": password})
            assert login.status_code == 200, login.text
            set_cookies = login.headers.get_list("set-cookie")
            session_cookie = next(c for c in set_cookies if c.startswith("haven_session="))
            # The instance learnt from X-Forwarded-Proto that the client is on https.
            assert "secure" in session_cookie.lower(), session_cookie
            me = client.get("/api/v1/auth/me")  # the Secure cookie goes back over https
            assert me.status_code == 200, me.text
            assert me.json()["user"]["email"] == email
            assert _hsts(me) == HSTS
            bearer = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        with httpx.Client(base_url=https, verify=verify, timeout=10) as fresh:
            assert fresh.get("/api/v1/auth/me", headers=bearer).status_code == 200
            assert fresh.get("/api/v1/auth/me").status_code == 401

        up.signal(signal.SIGINT)
        assert up.wait(90) == 0, up.output()


@pytest.mark.slow
def test_render_config_haproxy_writes_a_combined_pem_that_haproxy_accepts(
    tmp_path: Path,
) -> None:
    _need("haproxy")
    certs = make_dev_certificates(tmp_path / "tls", ["localhost", "127.0.0.1"])
    runtime = tmp_path / "lb"
    result = subprocess.run(
        haven_cmd(
            "render-config",
            "haproxy",
            "--upstream",
            "127.0.0.1:4001,127.0.0.1:4002",
            "--listen",
            "127.0.0.1:18443",
            "--http-listen",
            "127.0.0.1:18080",
            "--stats-listen",
            "127.0.0.1:18081",
            "--runtime-dir",
            str(runtime),
            "--tls-cert",
            str(certs.cert),
            "--tls-key",
            str(certs.key),
        ),
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    combined = certs.cert.with_name("server-combined.pem")
    assert combined.stat().st_mode & 0o077 == 0  # the key inside is private
    text = combined.read_text()
    assert "BEGIN CERTIFICATE" in text
    assert "PRIVATE KEY" in text
    assert f"crt {combined.resolve()}" in result.stdout
    assert "code 308" in result.stdout
    from haven.devcluster.render import write_runtime

    write_runtime(runtime)
    conf = tmp_path / "haproxy.cfg"
    conf.write_text(result.stdout)
    binary = find_haproxy()
    assert binary is not None
    check = subprocess.run(
        [binary, "-c", "-f", str(conf)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr

    # Without a key, --tls-cert alone is taken as an existing combined PEM; nginx needs both.
    nginx_without_key = subprocess.run(
        haven_cmd(
            "render-config", "nginx", "--upstream", "127.0.0.1:4001", "--tls-cert", str(certs.cert)
        ),
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert nginx_without_key.returncode != 0
    assert "--tls-key" in nginx_without_key.stderr
