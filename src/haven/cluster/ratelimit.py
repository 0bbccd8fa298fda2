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

This module says which limits a request falls under and answers refusals; the edge
middleware that applies them is haven.cluster.gate.GateMiddleware: for a request that
carries a session it runs the limits inside the gate's one round trip (haven.store.gate),
otherwise through the plain limiter.
"""

from __future__ import annotations

import msgspec
from litestar.types import Receive, ReceiveMessage, Scope, Send

from haven.cluster.asgi import send_problem
from haven.config import Settings
from haven.errors import RateLimitedError
from haven.store.ratelimit import Decision, Limit, hashed
from haven.web import client_ip_from_scope

LOGIN_PATH = "/api/v1/auth/login"
REGISTER_PATH = "/api/v1/auth/register"
# Accepting an invitation sets a password like sign-up: limited per IP+email and per IP.
ACCEPT_PATH = "/api/v1/invitations/accept"
AUTH_PATHS = frozenset({LOGIN_PATH, REGISTER_PATH, ACCEPT_PATH})
PASSWORD_PATH = "/api/v1/auth/password"  # noqa: S105 - a route, not a secret
MAX_BUFFERED_BODY = 1024 * 1024
HOUR = 3600
MINUTE = 60


class _Email(msgspec.Struct):
    email: str = ""


_email_decoder = msgspec.json.Decoder(_Email)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
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


async def limits_for(
    scope: Scope, receive: Receive, settings: Settings, sid: str | None
) -> tuple[list[Limit], str, Receive]:
    """The limits `scope` falls under (none with rate limiting off), which of them fail
    closed ("sign-in" or "password", "" for none) and the `receive` to pass on (the body
    of a login or register is buffered for its email and replayed)."""
    if not settings.rate_limit_enabled:
        return [], "", receive
    ip = client_ip_from_scope(scope, settings) or "unknown"
    limits = [Limit("ip", ip, settings.rate_limit_global)]
    if sid:
        limits.append(Limit("user", hashed(sid), settings.rate_limit_per_user))
    if scope.get("method") != "POST":
        return limits, "", receive
    path = scope.get("path", "")
    if path in AUTH_PATHS:
        body, receive = await buffer_body(receive)
        email = email_from(body) if body is not None else ""
        limits.append(Limit("auth", hashed(f"{ip}|{email}"), settings.rate_limit_auth))
        if path == LOGIN_PATH:
            limits.append(Limit("auth-email", hashed(email), settings.rate_limit_auth_email, HOUR))
        else:
            limits.append(Limit("register", ip, settings.rate_limit_register, HOUR))
        return limits, "sign-in", receive
    if sid is not None and path == PASSWORD_PATH:
        # Guesses at the current password, per session (the one a thief holds).
        limits.append(Limit("password", hashed(sid), settings.rate_limit_password, HOUR))
        return limits, "password", receive
    return limits, "", receive


async def refuse(scope: Scope, send: Send, decision: Decision, settings: Settings) -> None:
    """429 problem+json with Retry-After and the RateLimit-* headers of the binding limit."""
    window = decision.window or settings.rate_limit_window
    await send_problem(
        send,
        scope,
        RateLimitedError(
            f"Too many requests; retry in {decision.reset_seconds} s "
            f"(limit {decision.limit} per {window} s)"
        ),
        [(b"retry-after", str(decision.reset_seconds).encode()), *decision.headers()],
    )


def operator_limit(scope: Scope, settings: Settings) -> Limit:
    """A wrong (or missing) operator token counts against the client IP."""
    ip = client_ip_from_scope(scope, settings) or "unknown"
    return Limit("operator", ip, settings.rate_limit_operator, MINUTE)
