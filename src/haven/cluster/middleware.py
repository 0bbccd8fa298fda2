"""The edge of every request, pure ASGI: request id, timing, in-flight count, LB headers, drain.

`install(app, cluster)` wraps the Litestar app's own ASGI handler, not its
route middleware, so every response gets the instance headers, including
404/405 answers that never reach a route:

    RequestContext -> SecurityHeaders -> CORS -> Probes -> Gate -> Litestar

(Probes answers GET /health and /alive, which no limit applies to; the Gate runs the rate
limits and prefetches the session in one Redis round trip, and answers a cached view from
the bytes that round trip read (haven.cluster.gate); everything else reaches Litestar's
errors and router.)

The path is made canonical first (haven.cluster.asgi.canonical_path): every spelling of a
route (`//`, a trailing slash, `/./`, `/../`) is that route for the router and the limits.

While draining, responses carry `Connection: close` so keep-alive clients
(and load balancers) move to another instance before the listener closes.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import msgspec
import structlog
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from haven.cluster.asgi import canonical_path, is_open_endpoint, send_problem
from haven.cluster.gate import GateMiddleware, cached_views
from haven.cluster.runtime import Cluster
from haven.cluster.security import SecurityHeadersMiddleware
from haven.config import Settings
from haven.errors import InternalError

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
EXPOSED_HEADERS = [
    "X-Request-Id",
    "X-Instance-Id",
    "ETag",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Idempotent-Replayed",
]

access_log = structlog.get_logger("haven.access")


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    return os.urandom(16).hex()  # as random as uuid4().hex, without building a UUID


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, cluster: Cluster) -> None:
        self.app = app
        self.cluster = cluster
        self.instance = cluster.instance
        self.metrics = cluster.metrics
        instance = cluster.settings.instance_id.encode()
        self.static_headers: list[tuple[bytes, bytes]] = [
            (b"x-instance-id", instance),
            (b"x-served-by", instance),
            (b"x-session-shared", b"true"),
            (b"x-stateless", b"true"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # First of all: one spelling per route, for the router, the limits and the logs.
        scope["path"] = canonical_path(scope["path"])
        started = time.perf_counter()
        request_id = request_id_from(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        instance = self.instance
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers: list[Any] = list(message.get("headers", []))
                headers.extend(self.static_headers)
                headers.append((b"x-load-balancer-ready", b"true" if instance.ready else b"false"))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-response-time", f"{elapsed_ms:.1f}ms".encode()))
                if instance.draining and scope.get("http_version") in ("1.0", "1.1"):
                    # HTTP/1 only: HTTP/2 has no Connection header (GOAWAY does that job).
                    headers = [h for h in headers if h[0].lower() != b"connection"]
                    headers.append((b"connection", b"close"))
                message["headers"] = headers
            await send(message)

        instance.request_started()
        try:
            # bind/reset rather than bound_contextvars(): no generator context manager per request.
            bound = structlog.contextvars.bind_contextvars(request_id=request_id)
            try:
                await self.app(scope, receive, send_wrapper)
            except Exception as exc:
                # Litestar's handler catches everything a route raises; this is the last
                # net for a fault in the middleware itself: a problem, never a trace.
                access_log.error("unhandled_error", error=repr(exc), path=scope.get("path"))
                if not response_started:
                    await send_problem(send_wrapper, scope, InternalError())
            finally:
                structlog.contextvars.reset_contextvars(**bound)
        finally:
            duration = time.perf_counter() - started
            instance.request_finished(status, duration * 1000)
            self.metrics.observe(str(scope.get("method", "")), status, duration)
            path = scope.get("path", "")
            log = access_log.debug if is_open_endpoint(path) else access_log.info
            log(
                "request",
                request_id=request_id,
                method=scope.get("method"),
                path=path,
                status=status,
                duration_ms=round(duration * 1000, 2),
            )


class ProbeMiddleware:
    """GET /health and /alive answered in pure ASGI, without the framework's routing and DI.

    They are hit by every load balancer every few seconds and touch no dependency, so
    the answer is a fixed shape built here; the same routes stay registered in Litestar
    (OpenAPI, HEAD/other methods -> 405) and the outer middleware still add every header.
    """

    def __init__(self, app: ASGIApp, cluster: Cluster) -> None:
        from haven.cluster.health import now_iso

        self.app = app
        self.now_iso = now_iso
        self.instance_id = cluster.settings.instance_id
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or scope.get("method") != "GET" or path not in _PROBES:
            await self.app(scope, receive, send)
            return
        now_iso = self.now_iso
        if path == "/health":
            body = _probe_encoder.encode(
                {
                    "success": True,
                    "status": "OK",
                    "timestamp": now_iso(),
                    "instanceId": self.instance_id,
                }
            )
        else:
            body = _probe_encoder.encode(
                {"alive": True, "timestamp": now_iso(), "instanceId": self.instance_id}
            )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*self.headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


_PROBES = frozenset({"/health", "/alive"})
_probe_encoder = msgspec.json.Encoder()


def cors_config(settings: Settings) -> CORSConfig | None:
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "X-CSRF-Token",
            "X-Request-Id",
            "If-Match",
            "If-None-Match",
            "Idempotency-Key",
        ],
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )


def install(app: Litestar, cluster: Cluster) -> None:
    """Wrap the app's ASGI handler with the edge middleware (see the module docstring)."""
    from litestar.middleware._internal.cors import CORSMiddleware

    settings = cluster.settings
    # Cached views are read from the routes now: start-up fails here on one the gate
    # could not answer as its route would (haven.cluster.gate.cached_views).
    gate = GateMiddleware(app.asgi_handler, cluster, cached_views(app))
    handler: ASGIApp = ProbeMiddleware(gate, cluster)
    cors = cors_config(settings)
    if cors is not None:
        # CORS outside the gate, so a browser can read a 429 (and preflights are free).
        handler = CORSMiddleware(handler, cors)
    handler = SecurityHeadersMiddleware(handler, settings)
    app.asgi_handler = RequestContextMiddleware(handler, cluster)


__all__ = ["RequestContextMiddleware", "install", "is_open_endpoint", "request_id_from"]
