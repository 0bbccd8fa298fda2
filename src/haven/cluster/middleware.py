"""The edge of every request, pure ASGI: request id, timing, in-flight count, LB headers, drain.

`install(app, cluster)` wraps the Litestar app's own ASGI handler, not its
route middleware, so every response gets the instance headers, including
404/405 answers that never reach a route:

    Edge -> (CORS -> Probes, only when CORS origins are configured) -> Gate -> Litestar

`Edge` is one callable: it gives the request its id, times it, counts it in flight,
answers GET /health and /alive itself (no limit applies to them) and adds the security and
instance headers, all prebuilt at start-up, through one send wrapper; it writes the access
line and the metrics. The Gate runs the rate limits and prefetches the session in one Redis
round trip, and answers a cached view from the bytes that round trip read
(haven.cluster.gate); everything else reaches Litestar's errors and router.

The path is made canonical first (haven.cluster.asgi.canonical_path): every spelling of a
route (`//`, a trailing slash, `/./`, `/../`) is that route for the router and the limits.

While draining, responses carry `Connection: close` so keep-alive clients
(and load balancers) move to another instance before the listener closes.
"""

from __future__ import annotations

import logging
import re
from os import urandom
from time import perf_counter
from typing import Any

import msgspec
import structlog
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from haven.cluster.asgi import canonical_path, is_open_endpoint, send_problem
from haven.cluster.gate import GateMiddleware, cached_views
from haven.cluster.runtime import Cluster
from haven.cluster.security import SecurityHeaders
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


class Edge:
    """The one ASGI callable in front of Litestar (see the module docstring).

    Everything a response carries from the edge is prebuilt at start-up (instance, security
    and probe headers); a request adds only its id, its time and readiness. /health and
    /alive are answered here with one prebuilt header list; every other request goes
    through `self.app` (CORS when configured, then the gate, then Litestar) with one send
    wrapper that appends the edge's headers. The gate answers a cached view from the bytes
    of its one Redis round trip. The access line and the metrics are written after the
    answer; a log line below the configured level is not even built.
    """

    def __init__(self, app: ASGIApp, cluster: Cluster, cors: CORSConfig | None = None) -> None:
        from haven.cluster.health import now_iso

        self.app = app
        self.instance = cluster.instance
        self.metrics = cluster.metrics
        self.now_iso = now_iso
        settings = cluster.settings
        self.instance_id = settings.instance_id
        # A probe with an Origin goes through CORS (it may add Access-Control-* headers).
        self.cors = cors is not None
        instance = settings.instance_id.encode()
        static: list[tuple[bytes, bytes]] = [
            (b"x-instance-id", instance),
            (b"x-served-by", instance),
            (b"x-session-shared", b"true"),
            (b"x-stateless", b"true"),
        ]
        security = SecurityHeaders(settings)
        # The edge's tail of every answer: security headers, then the instance's.
        self.api_tail = [*security.api_headers, *static]
        self.docs_tail = [*security.docs_headers, *static]
        self.status_tail = [*security.status_headers, *static]
        level = _level_of(settings.log_level)
        self.log_info = level <= logging.INFO
        self.log_debug = level <= logging.DEBUG

    def tail_for(self, path: str) -> list[tuple[bytes, bytes]]:
        if path.startswith("/docs") and (path == "/docs" or path.startswith("/docs/")):
            return self.docs_tail
        if path.startswith("/status") and (path == "/status" or path.startswith("/status/")):
            return self.status_tail
        return self.api_tail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # First of all: one spelling per route, for the router, the limits and the logs.
        path = scope["path"] = canonical_path(scope["path"])
        started = perf_counter()
        request_id = None
        origin = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if request_id is None:
                    candidate = value.decode("latin-1")
                    request_id = candidate if _VALID_REQUEST_ID.match(candidate) else ""
            elif name == b"origin":
                origin = True
        if not request_id:
            request_id = urandom(16).hex()  # as random as uuid4().hex, without building a UUID
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = request_id
        instance = self.instance
        instance.in_flight += 1  # InstanceState.request_started, inlined
        status = 500
        response_started = False
        method = str(scope.get("method", ""))
        if path in _PROBES and method == "GET" and not (origin and self.cors):
            try:
                body = probe_body(path, self.instance_id, self.now_iso())
                headers = [
                    *_PROBE_HEAD,
                    (b"content-length", str(len(body)).encode()),
                    *self.api_tail,
                    *self._per_request(request_id, started),
                ]
                if instance.draining:
                    headers = self._closing(scope, headers)
                status = 200
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body, "more_body": False})
            finally:
                self._finish(method, path, request_id, status, started)
            return
        tail = self.tail_for(path)

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = [
                    *message.get("headers", ()),
                    *tail,
                    *self._per_request(request_id, started),
                ]
                message["headers"] = self._closing(scope, headers) if instance.draining else headers
            await send(message)

        try:
            # bind/reset rather than bound_contextvars(): no generator context manager per request.
            bound = structlog.contextvars.bind_contextvars(request_id=request_id)
            try:
                await self.app(scope, receive, send_wrapper)
            except Exception as exc:
                # Litestar's handler catches everything a route raises; this is the last
                # net for a fault in the middleware itself: a problem, never a trace.
                access_log.error("unhandled_error", error=repr(exc), path=path)
                if not response_started:
                    await send_problem(send_wrapper, scope, InternalError())
            finally:
                structlog.contextvars.reset_contextvars(**bound)
        finally:
            self._finish(method, path, request_id, status, started)

    def _per_request(self, request_id: str, started: float) -> tuple[tuple[bytes, bytes], ...]:
        """The headers only this request has: readiness, its id, its time."""
        return (
            _READY if self.instance.ready else _NOT_READY,
            (b"x-request-id", request_id.encode()),
            (b"x-response-time", f"{(perf_counter() - started) * 1000:.1f}ms".encode()),
        )

    @staticmethod
    def _closing(scope: Scope, headers: list[Any]) -> list[Any]:
        """While draining: `Connection: close`, so keep-alive clients (and load balancers)
        move to another instance before the listener closes. HTTP/1 only: HTTP/2 has no
        Connection header (GOAWAY does that job)."""
        if scope.get("http_version") not in ("1.0", "1.1"):
            return headers
        return [*(h for h in headers if h[0].lower() != b"connection"), _CLOSE]

    def _finish(self, method: str, path: str, request_id: str, status: int, started: float) -> None:
        duration = perf_counter() - started
        self.instance.request_finished(status, duration * 1000)
        self.metrics.observe(method, status, duration)
        # The access line: info for the API, debug for the load balancer's own endpoints;
        # below the configured level nothing is built at all.
        if is_open_endpoint(path):
            if not self.log_debug:
                return
            log = access_log.debug
        elif self.log_info:
            log = access_log.info
        else:
            return
        log(
            "request",
            request_id=request_id,
            method=method,
            path=path,
            status=status,
            duration_ms=round(duration * 1000, 2),
        )


def _level_of(name: str) -> int:
    level = logging.getLevelName(name.upper())
    return level if isinstance(level, int) else logging.INFO


_CLOSE = (b"connection", b"close")
_READY = (b"x-load-balancer-ready", b"true")
_NOT_READY = (b"x-load-balancer-ready", b"false")


class ProbeMiddleware:
    """GET /health and /alive for a request the edge passes on: with an Origin while CORS
    is configured (the answer then carries CORS's headers). Same body as the edge's."""

    def __init__(self, app: ASGIApp, cluster: Cluster) -> None:
        from haven.cluster.health import now_iso

        self.app = app
        self.now_iso = now_iso
        self.instance_id = cluster.settings.instance_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "GET" or path not in _PROBES:
            await self.app(scope, receive, send)
            return
        body = probe_body(path, self.instance_id, self.now_iso())
        headers = [*_PROBE_HEAD, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


_PROBES = frozenset({"/health", "/alive"})
_PROBE_HEAD = ((b"content-type", b"application/json"), (b"cache-control", b"no-store"))
_probe_encoder = msgspec.json.Encoder()


def probe_body(path: str, instance_id: str, timestamp: str) -> bytes:
    """The body of GET /health or /alive (the Litestar routes answer the same shape)."""
    if path == "/health":
        return _probe_encoder.encode(
            {"success": True, "status": "OK", "timestamp": timestamp, "instanceId": instance_id}
        )
    return _probe_encoder.encode({"alive": True, "timestamp": timestamp, "instanceId": instance_id})


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
    """Put the edge in front of the app's ASGI handler (see the module docstring)."""
    from litestar.middleware._internal.cors import CORSMiddleware

    # Cached views are read from the routes now: start-up fails here on one the gate
    # could not answer as its route would (haven.cluster.gate.cached_views).
    handler: ASGIApp = GateMiddleware(app.asgi_handler, cluster, cached_views(app))
    cors = cors_config(cluster.settings)
    if cors is not None:
        # CORS outside the gate, so a browser can read a 429 (and preflights are free); a
        # probe with an Origin is answered inside it, so it gets CORS's headers.
        handler = CORSMiddleware(ProbeMiddleware(handler, cluster), cors)
    app.asgi_handler = Edge(handler, cluster, cors)


__all__ = ["Edge", "install", "is_open_endpoint"]
