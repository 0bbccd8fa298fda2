"""The outermost pure-ASGI middleware: request id, timing, and the instance headers.

It wraps `send` to add headers to every response, errors included, and binds
request_id into the log context for everything the request logs.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from haven.config import Settings

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
QUIET_PATHS = frozenset({"/health", "/ready", "/alive", "/metrics"})

access_log = structlog.get_logger("haven.access")


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        instance = settings.instance_id.encode()
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
        started = time.perf_counter()
        request_id = request_id_from(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers: list[Any] = list(message.get("headers", []))
                headers.extend(self.static_headers)
                headers.append((b"x-load-balancer-ready", b"true"))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-response-time", f"{elapsed_ms:.1f}ms".encode()))
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                path = scope.get("path", "")
                if path not in QUIET_PATHS:
                    access_log.info(
                        "request",
                        method=scope.get("method"),
                        path=path,
                        status=status,
                        duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    )
