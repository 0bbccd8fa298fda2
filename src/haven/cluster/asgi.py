"""Small pure-ASGI helpers the edge middleware share: which paths are open, raw problem answers."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from litestar.types import Scope, Send

from haven.errors import PROBLEM_JSON, HavenError, problem_body

LB_PREFIX = "/api/v1/load-balancer/"
QUIET_PATHS = frozenset({"/health", "/ready", "/alive", "/metrics"})


def is_open_endpoint(path: str) -> bool:
    """The load-balancer endpoints: never rate limited, never access-logged at info."""
    return path in QUIET_PATHS or path.startswith(LB_PREFIX)


async def send_problem(
    send: Send, scope: Scope, error: HavenError, extra: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Answer with `error` as problem+json straight from middleware (outside Litestar)."""
    body = msgspec.json.encode(
        problem_body(
            error.status, error.slug, error.title, error.detail, scope.get("path", ""), error.errors
        )
    )
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *[(k.lower().encode(), v.encode()) for k, v in error.headers.items()],
        *extra,
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
