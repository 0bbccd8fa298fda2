"""Rate limiting at the edge, pure ASGI, shared by every instance through Redis.

Every request counts against its client IP (RATE_LIMIT_GLOBAL) and, when it
carries a session (cookie or Bearer token), against that session
(RATE_LIMIT_PER_USER). POST /auth/login and /auth/register also count
against IP+email (RATE_LIMIT_AUTH); the email is read from the JSON body,
which is buffered and replayed to the app untouched. Login also counts
against the email alone, from any address (RATE_LIMIT_AUTH_EMAIL per hour),
and register against the client IP (RATE_LIMIT_REGISTER per hour). POST
/auth/password counts against its session (RATE_LIMIT_PASSWORD per hour): a stolen
session cannot guess the current password faster than that. A request
to an operator endpoint without the right operator token counts against its
client IP (RATE_LIMIT_OPERATOR per minute); the right token never counts.

Paths are matched in their canonical spelling (haven.cluster.asgi.canonical_path,
applied by the outermost middleware before anything else reads the path), so
`/api/v1//auth/login/` is the login route and counts in its buckets.

When Redis cannot be reached the general limits fail open (the API keeps
working on what else is up) and the sign-in, sign-up, password and operator limits fail
closed with 503: a password-guessing limit that silently turns off is worse
than a short outage of sign-in.

A request that carries a session runs the gate (haven.store.gate) instead of
the plain limiter, even with rate limiting off: the same limit step plus the
session touch and the cached-view read, in one round trip, left in the scope
for the `principal` dependency and the cached routes.
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send
from redis.exceptions import RedisError

from haven.auth import tokens
from haven.cluster.asgi import (
    is_open_endpoint,
    is_operator_request,
    operator_token_ok,
    send_problem,
)
from haven.errors import DependencyUnavailableError, RateLimitedError
from haven.store.gate import SCOPE_KEY as PREFETCH_KEY
from haven.store.gate import cache_name_for
from haven.store.ratelimit import Decision, Limit, hashed
from haven.web import client_ip_from_scope

LOGIN_PATH = "/api/v1/auth/login"
REGISTER_PATH = "/api/v1/auth/register"
AUTH_PATHS = frozenset({LOGIN_PATH, REGISTER_PATH})
PASSWORD_PATH = "/api/v1/auth/password"  # noqa: S105 - a route, not a secret
MAX_BUFFERED_BODY = 1024 * 1024
HOUR = 3600
MINUTE = 60

log = structlog.get_logger("haven.ratelimit")


class _Email(msgspec.Struct):
    email: str = ""


_email_decoder = msgspec.json.Decoder(_Email)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"') or None
    return None


def email_from(body: bytes) -> str:
    """The email a login/register body names, normalised as the app compares it ("" if none)."""
    try:
        return _email_decoder.decode(body).email.strip().lower()[:320]
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return ""  # the app answers 400/422 for the same bytes


async def buffer_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """Read the request body (up to 1 MiB) and return a `receive` that replays it.

    Returns (None, replaying receive) when the body is larger: the app then sees
    every byte and answers 413 itself.
    """
    messages: list[ReceiveMessage] = []
    size = 0
    complete = False
    while size <= MAX_BUFFERED_BODY:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            complete = True
            break
    body = b"".join(bytes(m.get("body", b"")) for m in messages if m["type"] == "http.request")

    async def replay() -> ReceiveMessage:
        if messages:
            return messages.pop(0)
        return await receive()

    return (body if complete else None), replay


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, cluster: Any) -> None:
        self.app = app
        self.cluster = cluster
        self.settings = cluster.settings
        self._outage = False

    def _session_id(self, scope: Scope) -> tuple[str | None, bool]:
        """(sid, via_cookie), as haven.auth.principal reads it: a Bearer header wins."""
        auth = _header(scope, b"authorization")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return tokens.session_id(self.settings.secret_key, token.strip()), False
        sid = _cookie(scope, self.settings.session_cookie_name)
        return (sid if sid and len(sid) <= 128 else None), True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self.cluster.limiter
        settings = self.settings
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if (
            scope["type"] != "http"
            or limiter is None
            or scope.get("method") == "OPTIONS"
            or (is_open_endpoint(path) and not is_operator_request(scope))
        ):
            await self.app(scope, receive, send)
            return
        enabled = settings.rate_limit_enabled
        if is_operator_request(scope):
            await self._operator(scope, receive, send)
            return
        sid, via_cookie = self._session_id(scope)
        gate = self.cluster.gate
        if not enabled and (sid is None or gate is None):
            await self.app(scope, receive, send)
            return
        limits: list[Limit] = []
        auth = password = False
        if enabled:
            ip = client_ip_from_scope(scope, settings) or "unknown"
            limits.append(Limit("ip", ip, settings.rate_limit_global))
            if sid:
                limits.append(Limit("user", hashed(sid), settings.rate_limit_per_user))
            auth = scope.get("method") == "POST" and path in AUTH_PATHS
            if auth:
                body, receive = await buffer_body(receive)
                email = email_from(body) if body is not None else ""
                limits.append(Limit("auth", hashed(f"{ip}|{email}"), settings.rate_limit_auth))
                if path == LOGIN_PATH:
                    limits.append(
                        Limit("auth-email", hashed(email), settings.rate_limit_auth_email, HOUR)
                    )
                else:
                    limits.append(Limit("register", ip, settings.rate_limit_register, HOUR))
            password = sid is not None and scope.get("method") == "POST" and path == PASSWORD_PATH
            if password:
                # Guesses at the current password, per session (the one a thief holds).
                limits.append(
                    Limit("password", hashed(str(sid)), settings.rate_limit_password, HOUR)
                )
        try:
            decision: Decision | None
            if sid is not None and gate is not None and not (auth or password):
                # One round trip: the limits, the session and the cached view (haven.store.gate).
                name = cache_name_for(str(scope.get("method", "")), scope.get("path", ""))
                decision, prefetch = await gate.run(limits, sid, via_cookie, name)
                if prefetch is not None:
                    scope.setdefault("state", {})[PREFETCH_KEY] = prefetch
            else:
                decision = await limiter.hit(limits)
        except (RedisError, OSError, TimeoutError) as exc:
            if not self._outage:  # once per outage, not once per request
                log.warning("rate_limit_unavailable", error=repr(exc))
            self._outage = True
            if auth or password:
                await send_problem(
                    send,
                    scope,
                    DependencyUnavailableError(
                        f"{'Sign-in' if auth else 'Changing a password'} is briefly unavailable "
                        "(its rate limiter cannot be reached); retry shortly"
                    ),
                )
                return
            decision = None
        else:
            self._outage = False
        if decision is not None and not decision.allowed:
            await self._refuse(scope, send, decision)
            return
        if decision is None:
            await self.app(scope, receive, send)
            return
        extra = decision.headers()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # A limit the app applied itself (an API key's, haven.apikeys) names its own.
                if not any(name.lower() == b"ratelimit-limit" for name, _ in headers):
                    headers.extend(extra)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)

    async def _refuse(self, scope: Scope, send: Send, decision: Decision) -> None:
        """429 problem+json with Retry-After and the RateLimit-* headers of the binding limit."""
        window = decision.window or self.settings.rate_limit_window
        await send_problem(
            send,
            scope,
            RateLimitedError(
                f"Too many requests; retry in {decision.reset_seconds} s "
                f"(limit {decision.limit} per {window} s)"
            ),
            [(b"retry-after", str(decision.reset_seconds).encode()), *decision.headers()],
        )

    async def _operator(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Operator endpoints: a wrong (or missing) token counts against the client IP.

        The right token is never counted nor refused, so an attacker guessing from one
        address cannot lock the operator out; without OPERATOR_TOKEN the routes are 404
        and nothing is counted.
        """
        settings = self.settings
        limiter = self.cluster.limiter
        if (
            not settings.rate_limit_enabled
            or limiter is None
            or not settings.operator_token
            or operator_token_ok(settings.operator_token, _header(scope, b"authorization"))
        ):
            await self.app(scope, receive, send)
            return
        ip = client_ip_from_scope(scope, settings) or "unknown"
        try:
            decision = await limiter.hit(
                [Limit("operator", ip, settings.rate_limit_operator, MINUTE)]
            )
        except (RedisError, OSError, TimeoutError):
            await send_problem(
                send,
                scope,
                DependencyUnavailableError(
                    "Operator endpoints are briefly unavailable without the right token "
                    "(their rate limiter cannot be reached); retry shortly"
                ),
            )
            return
        if not decision.allowed:
            await self._refuse(scope, send, decision)
            return
        await self.app(scope, receive, send)
