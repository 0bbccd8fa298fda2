"""Helmet-equivalent response headers, pure ASGI.

The API answers JSON, so its CSP allows nothing at all; the Swagger UI under
/docs loads its own assets from /docs/assets and runs one inline init script,
so /docs gets a CSP that allows exactly that (self + inline), still no
framing and no third-party origin.
"""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from haven.config import Settings

API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
    b"frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
# The operator status page: its own script and stylesheet only, no inline code.
STATUS_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
    b"form-action 'none'"
)
HSTS = b"max-age=31536000; includeSubDomains"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"x-permitted-cross-domain-policies", b"none"),
        ]
        if settings.is_production:
            common.append((b"strict-transport-security", HSTS))
        self.api_headers = [*common, (b"content-security-policy", API_CSP)]
        self.docs_headers = [*common, (b"content-security-policy", DOCS_CSP)]
        self.status_headers = [*common, (b"content-security-policy", STATUS_CSP)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/docs" or path.startswith("/docs/"):
            extra = self.docs_headers
        elif path == "/status" or path.startswith("/status/"):
            extra = self.status_headers
        else:
            extra = self.api_headers

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_wrapper)
