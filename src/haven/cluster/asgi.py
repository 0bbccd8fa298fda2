"""Small pure-ASGI helpers the edge middleware share: which paths are open, raw problem answers."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from urllib.parse import parse_qs

import msgspec
from litestar.types import Scope, Send

from haven.errors import PROBLEM_JSON, HavenError, problem_body

LB_PREFIX = "/api/v1/load-balancer/"
QUIET_PATHS = frozenset({"/health", "/ready", "/alive", "/metrics"})
# The routes that take the operator token (haven.cluster.health marks them opt={"operator": True};
# tests/integration/cluster/test_limits.py checks both lists name the same routes).
OPERATOR_PATHS = frozenset(
    {LB_PREFIX + "health-check", LB_PREFIX + "drain", LB_PREFIX + "config", LB_PREFIX + "instances"}
)
# Open for this instance's own figures; with ?scope=cluster an operator endpoint.
CLUSTER_METRICS_PATH = LB_PREFIX + "metrics"


def is_operator_request(scope: Scope) -> bool:
    """Whether the request asks for an operator endpoint (wrong tokens are rate limited)."""
    path = scope.get("path", "")
    if path in OPERATOR_PATHS:
        return True
    if path != CLUSTER_METRICS_PATH:
        return False
    query = scope.get("query_string", b"").decode("latin-1")
    return "cluster" in parse_qs(query).get("scope", [])


def canonical_path(path: str) -> str:
    """The one spelling of `path` that routing and rate limiting see.

    Repeated slashes collapse, `.` and `..` segments are resolved (never above the root), and
    a trailing slash goes (except for "/" itself): `/api/v1//auth/./login/` is
    `/api/v1/auth/login`, so every spelling of a route is one route and one rate-limit bucket.
    Case is left alone: routes are case-sensitive, so `/API/v1/...` is simply not found.
    """
    if path == "/" or not (
        "//" in path or "/." in path or path.endswith("/") or not path.startswith("/")
    ):
        return path
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    return "/" + "/".join(segments)


def operator_token_ok(expected: str | None, authorization: str | None) -> bool:
    """Whether `authorization` is `Bearer <OPERATOR_TOKEN>` (constant-time compare)."""
    if not expected or not authorization:
        return False
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), expected.encode()
    )


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
