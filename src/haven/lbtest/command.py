"""`haven lb-test URL`: run the checks, print a table (or JSON), exit 0 only if all pass."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict

import click
import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from haven.lbtest import checks
from haven.lbtest.checks import CheckResult


async def run_checks(
    url: str,
    *,
    health_only: bool,
    distribution: bool,
    sessions: bool,
    requests: int,
    concurrency: int,
    expect_instances: int | None,
    email: str | None,
    password: str | None,
    show_progress: bool,
    operator_token: str | None = None,
) -> list[CheckResult]:
    everything = not (health_only or distribution or sessions)
    results: list[CheckResult] = []
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=10.0, limits=limits) as client:
        results.append(await checks.check_health(client))
        results.append(await checks.check_headers(client))
        results.append(await checks.check_exposure(client))
        if health_only:
            return results
        seen: set[str] = set()
        if distribution or sessions or everything:
            with Progress(transient=True, disable=not show_progress) as progress:
                task = progress.add_task("load distribution", total=requests)
                result, run = await checks.check_distribution(
                    client,
                    requests,
                    concurrency,
                    expect_instances,
                    lambda n: progress.advance(task, n),
                )
            seen = set(run.counts) - {"?"}
            if distribution or everything:
                results.append(result)
                results.append(checks.check_latency(run))
        if sessions or everything:
            results.append(await checks.check_sessions(client, seen, email, password))
        if distribution or everything:
            results.append(
                await checks.check_registry(client, operator_token, expect_instances, seen)
            )
    return results


def print_table(console: Console, url: str, results: list[CheckResult]) -> None:
    table = Table(title=f"haven lb-test {url}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("summary", overflow="fold")
    for r in results:
        if r.details.get("skipped"):
            verdict = "[yellow]skip[/]"
        else:
            verdict = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
        table.add_row(r.name, verdict, r.summary)
    console.print(table)
    dist = next((r for r in results if r.name == "load-distribution"), None)
    if dist:
        counts = dist.details.get("counts", {})
        total = sum(counts.values()) or 1
        for instance, n in counts.items():
            bar = "#" * round(40 * n / total)
            console.print(f"  {instance:<12} {n:>6}  {bar}")


@click.command("lb-test")
@click.argument("url")
@click.option("--health-only", is_flag=True, help="Only the health endpoints and headers.")
@click.option("--load-distribution", "distribution", is_flag=True, help="Only load distribution.")
@click.option("--sessions", is_flag=True, help="Only session sharing and logout revocation.")
@click.option("--requests", default=300, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--concurrency", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--expect-instances",
    type=click.IntRange(1, 1000),
    default=None,
    help="Fail unless at least this many instances serve.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--email", default=None, help="Sign in as this user (else a throwaway org is registered)."
)
@click.option("--password", default=None)
@click.option(
    "--operator-token",
    envvar="HAVEN_OPERATOR_TOKEN",
    default=None,
    help="For the checks that need it (the registry); else they are skipped.",
)
def lb_test(
    url: str,
    health_only: bool,
    distribution: bool,
    sessions: bool,
    requests: int,
    concurrency: int,
    expect_instances: int | None,
    as_json: bool,
    email: str | None,
    password: str | None,
    operator_token: str | None,
) -> None:
    """Check a running deployment the way the seed guide's test-load-balancer does."""
    console = Console(stderr=as_json)
    results = asyncio.run(
        run_checks(
            url,
            health_only=health_only,
            distribution=distribution,
            sessions=sessions,
            requests=requests,
            concurrency=concurrency,
            expect_instances=expect_instances,
            email=email,
            password=password,
            show_progress=not as_json and console.is_terminal,
            operator_token=operator_token or None,
        )
    )
    passed = all(r.passed for r in results)
    if as_json:
        click.echo(
            json.dumps({"url": url, "passed": passed, "checks": [asdict(r) for r in results]})
        )
    else:
        print_table(console, url, results)
        console.print("[green]all checks passed[/]" if passed else "[red]some checks failed[/]")
    sys.exit(0 if passed else 1)
