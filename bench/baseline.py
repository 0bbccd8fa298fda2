"""The baseline: a raw ASGI app of ~20 lines on the same server (granian, embedded) as Haven.

/health answers a small JSON; /api/v1/dashboard does one Redis GET of the session
(from the cookie) and one of the cached JSON, the least an authenticated cached
read can do. Run: BASELINE_REDIS_URL=... BASELINE_CACHE_KEY=... python -m bench.baseline PORT
"""

from __future__ import annotations

import asyncio
import os
import sys

from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server
from redis.asyncio import Redis

from haven.server import event_loop_factory

REDIS = Redis.from_url(os.environ.get("BASELINE_REDIS_URL", "redis://127.0.0.1:6379"))
PREFIX = os.environ.get("BASELINE_SESSION_PREFIX", "haven:session:").encode()
CACHE_KEY = os.environ.get("BASELINE_CACHE_KEY", "")
HEALTH = b'{"success":true,"status":"OK","instanceId":"baseline"}'
JSON = [(b"content-type", b"application/json")]


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    status, body = 200, HEALTH
    if scope["path"] == "/api/v1/dashboard":
        cookie = next((v for k, v in scope["headers"] if k == b"cookie"), b"")
        sid = cookie.partition(b"haven_session=")[2].split(b";")[0]
        if await REDIS.get(PREFIX + sid) is None:
            status, body = 401, b"{}"
        else:
            body = await REDIS.get(CACHE_KEY) or b"{}"
    await send({"type": "http.response.start", "status": status, "headers": JSON})
    await send({"type": "http.response.body", "body": body})


async def _main(port: int) -> None:
    server = Server(
        app,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        log_access=False,
        log_level=LogLevels.warning,
    )
    await server.serve()


if __name__ == "__main__":
    # The same event loop as `haven serve` (uvloop where installed).
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(_main(int(sys.argv[1])))
