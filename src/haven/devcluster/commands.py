"""Click commands: `haven up` and `haven render-config`."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from haven.devcluster.cluster import Cluster, ClusterError, ClusterSpec
from haven.devcluster.render import (
    TLS,
    combine_pem,
    haproxy_config,
    listen_port,
    nginx_config,
    parse_upstreams,
)


@click.command()
@click.option("--instances", default=3, show_default=True, type=click.IntRange(1, 32))
@click.option("--base-port", default=4001, show_default=True, type=click.IntRange(1, 65000))
@click.option(
    "--lb", default="nginx", show_default=True, type=click.Choice(["nginx", "haproxy", "none"])
)
@click.option("--lb-port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-demo-data", is_flag=True, help="Skip loading the demo organization.")
@click.option(
    "--runtime-dir", default="var/run", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--tls",
    is_flag=True,
    help="HTTPS on the LB port with a fresh self-signed CA (its path is printed).",
)
@click.option(
    "--http-port",
    default=None,
    type=click.IntRange(1, 65535),
    help="With --tls: the plain-HTTP port that redirects to HTTPS [default: LB port + 2].",
)
def up(
    instances: int,
    base_port: int,
    lb: str,
    lb_port: int,
    no_demo_data: bool,
    runtime_dir: Path,
    tls: bool,
    http_port: int | None,
) -> None:
    """Start a local cluster: Valkey, N instances and a load balancer. Ctrl-C stops it in order."""
    if tls and lb == "none":
        raise click.UsageError("--tls needs a load balancer (--lb nginx or haproxy)")
    spec = ClusterSpec(
        instances=instances,
        base_port=base_port,
        lb=lb,
        lb_port=lb_port,
        demo_data=not no_demo_data,
        runtime_dir=runtime_dir,
        tls=tls,
        http_port=http_port,
    )
    cluster = Cluster(spec, log=lambda line: click.echo(f"haven up: {line}", err=True))
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        cluster.start()
        _announce(cluster)
        _watch(cluster, stop)
    except ClusterError as exc:
        click.echo(f"haven up: {exc}", err=True)
        cluster.stop()
        sys.exit(1)
    cluster.stop()
    click.echo("haven up: stopped", err=True)


def _announce(cluster: Cluster) -> None:
    spec = cluster.spec
    entry = cluster.lb_url if spec.lb != "none" else f"http://{spec.host}:{spec.base_port}"
    click.echo("")
    click.echo(f"  Haven is up: {entry}  ({spec.instances} instances, load balancer: {spec.lb})")
    click.echo(f"  API docs:    {entry}/docs")
    click.echo(f"  Status:      {entry}/status")
    if spec.lb == "haproxy":
        click.echo(
            f"  HAProxy:     http://{spec.host}:{spec.stats_port or spec.lb_port + 1}/ (stats)"
        )
    if cluster.certificates is not None:
        click.echo(
            f"  TLS:         CA certificate {cluster.certificates.ca} "
            f"(curl --cacert {cluster.certificates.ca} {entry}/health)"
        )
        click.echo(
            f"  HTTP:        http://{spec.host}:{spec.redirect_port}/ redirects (308) to HTTPS"
        )
    if cluster.operator_token:
        click.echo(f"  Operator:    Authorization: Bearer {cluster.operator_token}")
    if spec.demo_data:
        click.echo("  Demo login:  test@example.com / password (development only)")
    click.echo("  Ctrl-C stops everything.\n")


def _watch(cluster: Cluster, stop: threading.Event) -> None:
    """One status line per instance, refreshed live on a terminal, on change otherwise."""
    live = sys.stdout.isatty()
    last: list[str] = []
    while not stop.is_set():
        lines = cluster.status_lines()
        if live:
            if last:
                click.echo(f"\x1b[{len(last)}A", nl=False)
            for line in lines:
                click.echo(f"\x1b[2K{line}")
        elif [line.split()[3] for line in lines] != [line.split()[3] for line in last]:
            for line in lines:
                click.echo(line)
        last = lines
        stop.wait(2.0)


@click.command("render-config")
@click.argument("kind", type=click.Choice(["nginx", "haproxy"]))
@click.option("--upstream", required=True, help="Comma-separated host:port list of instances.")
@click.option(
    "--listen", default=None, help="[default: 0.0.0.0:80, or 0.0.0.0:443 with --tls-cert]"
)
@click.option("--stats-listen", default="0.0.0.0:8404", show_default=True, help="HAProxy stats.")
@click.option("--runtime-dir", default="/var/run/haven-lb", show_default=True)
@click.option("--rate-limit-rps", type=int, default=None, help="nginx per-IP edge limit.")
@click.option("--access-log", default=None, help="nginx access log target, e.g. /dev/stdout.")
@click.option("--error-log", default=None, help="nginx error log target, e.g. stderr.")
@click.option("--user", default=None, help="nginx worker user (leave out in containers).")
@click.option(
    "--tls-cert",
    default=None,
    help="Terminate TLS: the certificate chain PEM (HAProxy: alone, a combined cert+key PEM).",
)
@click.option("--tls-key", default=None, help="The certificate's private key PEM.")
@click.option(
    "--tls-pem",
    default=None,
    help="HAProxy with --tls-cert and --tls-key: where to write the combined PEM "
    "[default: next to the certificate, *-combined.pem].",
)
@click.option(
    "--http-listen",
    default="0.0.0.0:80",
    show_default=True,
    help="With TLS: plain-HTTP listener answering 308 to https ('' for none).",
)
def render_config(
    kind: str,
    upstream: str,
    listen: str | None,
    stats_listen: str,
    runtime_dir: str,
    rate_limit_rps: int | None,
    access_log: str | None,
    error_log: str | None,
    user: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_pem: str | None,
    http_listen: str,
) -> None:
    """Print deploy/nginx-lb.conf or deploy/haproxy.cfg rendered for these upstreams."""
    upstreams = parse_upstreams(upstream)
    tls = _tls_option(kind, tls_cert, tls_key, tls_pem, http_listen)
    listen = listen or ("0.0.0.0:443" if tls else "0.0.0.0:80")
    if tls is not None:
        try:
            listen_port(listen)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--listen") from None
    if kind == "nginx":
        click.echo(
            nginx_config(
                upstreams,
                listen=listen,
                runtime_dir=Path(runtime_dir),
                rate_limit_rps=rate_limit_rps,
                access_log=f"{access_log} haven" if access_log else None,
                error_log=error_log,
                user=user,
                tls=tls,
            )
        )
    else:
        click.echo(
            haproxy_config(
                upstreams,
                listen=listen,
                stats_listen=stats_listen,
                runtime_dir=Path(runtime_dir),
                tls=tls,
            )
        )


def _tls_option(
    kind: str, cert: str | None, key: str | None, pem: str | None, http_listen: str
) -> TLS | None:
    """The TLS settings of render-config; HAProxy gets one combined PEM (written here)."""
    if cert is None:
        if key is not None or pem is not None:
            raise click.UsageError("--tls-key and --tls-pem need --tls-cert")
        return None
    redirect = http_listen or None
    if kind == "nginx":
        if key is None:
            raise click.UsageError("nginx needs --tls-key with --tls-cert")
        return TLS(cert=cert, key=key, redirect_listen=redirect)
    if key is None:  # already a combined PEM
        return TLS(cert=cert, redirect_listen=redirect)
    cert_path, key_path = Path(cert), Path(key)
    if not cert_path.is_file() or not key_path.is_file():
        raise click.UsageError(
            "HAProxy reads one PEM with the certificate and its key: run render-config where "
            "--tls-cert and --tls-key exist (it writes the combined file), or pass a combined "
            "PEM as --tls-cert alone"
        )
    out = Path(pem) if pem else cert_path.with_name(f"{cert_path.stem}-combined.pem")
    combine_pem(cert_path, key_path, out)
    click.echo(f"haven render-config: wrote {out} (certificate + key, mode 0600)", err=True)
    return TLS(cert=str(out.resolve()), redirect_listen=redirect)
