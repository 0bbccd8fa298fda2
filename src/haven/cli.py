"""The `haven` command."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from haven.config import ConfigError, Settings, load_settings


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(None, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        click.echo(f"haven: configuration error: {exc}", err=True)
        sys.exit(2)


class _Commands(click.Group):
    """`haven`'s commands; `up`, `render-config` and `lb-test` import their modules (httpx,
    rich, the TLS helpers and with them cryptography) only when one of them is run or
    listed, so a `haven serve` process does not hold them."""

    LAZY = {
        "up": ("haven.devcluster.commands", "up"),
        "render-config": ("haven.devcluster.commands", "render_config"),
        "lb-test": ("haven.lbtest.command", "lb_test"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY and cmd_name not in self.commands:
            module, attr = self.LAZY[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands)
@click.version_option(package_name="haven")
def main() -> None:
    """Haven: a property-management API for clusters of stateless instances."""


@main.command()
@click.option("--host", default=None, help="Address to bind (default HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default PORT or 4000).")
@click.option("--instance-id", default=None, help="Instance id (default INSTANCE_ID or host-pid).")
@click.option("--migrate/--no-migrate", default=False, help="Run migrations before serving.")
def serve(host: str | None, port: int | None, instance_id: str | None, migrate: bool) -> None:
    """Run one instance."""
    # Before the server's imports (structlog, redis-py, PyJWT) can load what it keeps out.
    from haven.footprint import keep_out_unused_packages

    keep_out_unused_packages()
    from haven.server import serve as run

    settings = _settings(host=host, port=port, instance_id=instance_id)
    if migrate:
        from haven.db.migrate import upgrade

        upgrade(settings)
    sys.exit(run(settings))


@main.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to run from several instances at once)."""
    from haven.db.migrate import upgrade

    settings = _settings()
    upgrade(settings)
    click.echo("haven: database is at the latest schema")


@main.command("demo-data")
def demo_data() -> None:
    """Create the demo organization (test@example.com / password). Development only."""
    import asyncio

    from haven.demo import load_demo_data

    settings = _settings()
    if settings.is_production:
        click.echo("haven: demo-data refuses to run with HAVEN_ENV=production", err=True)
        sys.exit(2)
    created = asyncio.run(load_demo_data(settings))
    click.echo(
        "haven: demo data loaded" if created else "haven: demo data already present",
    )
    click.echo("haven: sign in as test@example.com / password")


@main.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    required=True,
    help="The dump file to write (pg_dump custom format); FILE.manifest.json goes beside it.",
)
def backup(output: str) -> None:
    """Back up PostgreSQL at one snapshot while the cluster keeps serving writes."""
    import asyncio
    from pathlib import Path

    from haven.db.backup import BackupError, write_manifest
    from haven.db.backup import backup as run

    settings = _settings()
    if settings.is_sqlite:
        click.echo("haven: backup needs PostgreSQL (for SQLite, copy the file)", err=True)
        sys.exit(2)
    try:
        result = asyncio.run(run(settings.database_url, Path(output)))
        write_manifest(result)
    except BackupError as exc:
        click.echo(f"haven: backup: {exc}", err=True)
        sys.exit(1)
    tables = result.manifest["tables"]
    click.echo(
        f"haven: backup written to {output} ({len(tables)} tables, "
        f"{sum(tables.values())} rows, {len(result.manifest['ledger'])} lease ledgers)"
    )


@main.command()
@click.argument("dump", type=click.Path(dir_okay=False, exists=True))
def restore(dump: str) -> None:
    """Restore a `haven backup` into the empty database DATABASE_URL names, then verify it."""
    import asyncio
    from pathlib import Path

    from haven.db.backup import BackupError, load_manifest
    from haven.db.backup import restore as run

    settings = _settings()
    if settings.is_sqlite:
        click.echo("haven: restore needs PostgreSQL", err=True)
        sys.exit(2)
    try:
        expected = load_manifest(Path(dump))
        manifest = asyncio.run(run(Path(dump), expected, settings.database_url))
    except BackupError as exc:
        click.echo(f"haven: restore: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"haven: restored and verified: {len(manifest['tables'])} tables and "
        f"{len(manifest['ledger'])} lease ledgers match the backup"
    )


@main.group()
def jobs() -> None:
    """Scheduled work that runs once per cluster (cron or a Kubernetes CronJob calls these)."""


def _job_redis_url(settings: Any) -> tuple[str, Any]:
    """REDIS_URL, or in development a private Valkey (the caller cleans it up)."""
    if settings.redis_url is not None:
        return settings.redis_url, None
    if settings.is_production:
        click.echo("haven: configuration error: REDIS_URL is required", err=True)
        sys.exit(2)
    # No shared Redis in development: a private Valkey for the lock; the database's
    # unique billing keys still make every charge post once.
    from haven.store.embedded import EmbeddedValkey

    embedded = EmbeddedValkey().start()
    return embedded.url, embedded


@jobs.command("billing")
@click.option(
    "--date",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Bill the month containing this date (default: each organization's local today).",
)
def jobs_billing(on: object) -> None:
    """Post rent, recurring charges and late fees due on a date, for every organization, once."""
    import asyncio
    from datetime import datetime

    from haven.billing.job import BillingBusyError, run_billing

    settings = _settings()
    day = on.date() if isinstance(on, datetime) else None
    url, embedded = _job_redis_url(settings)
    try:
        results = asyncio.run(run_billing(settings, day, url))
    except BillingBusyError as exc:
        click.echo(f"haven: billing: {exc}", err=True)
        sys.exit(75)  # EX_TEMPFAIL: the scheduler may retry
    finally:
        if embedded is not None:
            embedded.cleanup()
    periods = sorted({r.period for r in results}) or ["-"]
    click.echo(
        f"haven: billing {', '.join(periods)} for {len(results)} organization(s): "
        f"{sum(r.posted for r in results)} posted, "
        f"{sum(r.already_posted for r in results)} already posted"
    )


@jobs.command("scheduler")
@click.option("--once", is_flag=True, help="Run what is due now and exit (for cron/CronJob).")
@click.option(
    "--job",
    "only",
    multiple=True,
    type=click.Choice(["billing", "purge-idempotency"]),
    help="Run only this job (repeatable; default: all).",
)
@click.option("--interval", type=click.FloatRange(1, 86400), default=300.0, show_default=True,
              help="Seconds between ticks when not --once.")  # fmt: skip
@click.option("--heartbeat", type=click.Path(dir_okay=False), default=None,
              help="Touch this file after every tick (a healthcheck reads its age).")  # fmt: skip
def jobs_scheduler(
    once: bool, only: tuple[str, ...], interval: float, heartbeat: str | None
) -> None:
    """Run the daily jobs (billing per organization time zone, idempotency purge), once each."""
    import asyncio
    import signal
    from datetime import UTC, datetime

    from haven.db.engine import WRITE_OPTION, create_engine
    from haven.jobs.scheduler import Scheduler, selected, serve
    from haven.store.client import Keys, create_redis
    from haven.uow import create_sessionmaker

    settings = _settings()
    url, embedded = _job_redis_url(settings)

    async def main_loop() -> int:
        engine = create_engine(settings.with_overrides(db_pool_min=1, db_pool_max=2))
        redis = create_redis(settings, url)
        try:
            scheduler = Scheduler(
                create_sessionmaker(engine.execution_options(**{WRITE_OPTION: True})),
                redis,
                Keys(settings.redis_key_prefix),
                settings.instance_id,
                selected(only),
                reader=create_sessionmaker(engine),
                event_retention_days=settings.event_retention_days,
            )
            if once:  # errors surface as a failed run, which cron or the CronJob reports
                report = await scheduler.tick(datetime.now(UTC))
                click.echo(
                    f"haven: scheduler: {report.posted} charge(s) posted, "
                    f"{sum(len(d) for d in report.billed.values())} billing day(s) run, "
                    f"purged {report.purged if report.purged is not None else '-'}, "
                    f"events purged "
                    f"{report.purged_events if report.purged_events is not None else '-'}, "
                    f"{len(report.skipped)} held by another copy"
                )
                return 1
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            return await serve(
                scheduler,
                interval=interval,
                clock=lambda: datetime.now(UTC),
                stop=stop,
                heartbeat=heartbeat,
            )
        finally:
            await redis.aclose()
            await engine.dispose()

    try:
        ticks = asyncio.run(main_loop())
    finally:
        if embedded is not None:
            embedded.cleanup()
    click.echo(f"haven: scheduler stopped after {ticks} tick(s)")


@jobs.command("purge-idempotency")
def jobs_purge_idempotency() -> None:
    """Delete stored Idempotency-Key responses older than 24 h (safe to run anywhere, any time)."""
    import asyncio

    from haven.db.engine import WRITE_OPTION, create_engine
    from haven.uow import create_sessionmaker
    from haven.uow.idempotency import purge_expired

    settings = _settings()

    async def purge() -> int:
        engine = create_engine(settings.with_overrides(db_pool_min=1, db_pool_max=1))
        try:
            maker = create_sessionmaker(engine.execution_options(**{WRITE_OPTION: True}))
            async with maker() as session, session.begin():
                return await purge_expired(session)
        finally:
            await engine.dispose()

    click.echo(f"haven: purged {asyncio.run(purge())} idempotency records older than 24 h")


@jobs.command("purge-events")
def jobs_purge_events() -> None:
    """Delete events and webhook delivery log rows older than EVENT_RETENTION_DAYS."""
    import asyncio

    from haven.db.engine import WRITE_OPTION, create_engine
    from haven.events.service import purge_expired
    from haven.uow import create_sessionmaker
    from haven.webhooks.service import purge_deliveries

    settings = _settings()
    days = settings.event_retention_days

    async def purge() -> tuple[int, int]:
        engine = create_engine(settings.with_overrides(db_pool_min=1, db_pool_max=1))
        try:
            maker = create_sessionmaker(engine.execution_options(**{WRITE_OPTION: True}))
            async with maker() as session, session.begin():
                events = await purge_expired(session, days)
                deliveries = await purge_deliveries(session, days)
            return events, deliveries
        finally:
            await engine.dispose()

    events, deliveries = asyncio.run(purge())
    click.echo(
        f"haven: purged {events} events and {deliveries} webhook deliveries older than {days} days"
    )
