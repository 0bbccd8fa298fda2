"""The edge gate: one Redis round trip per authenticated request, and the cached views.

`GateMiddleware` runs for every request that reaches the app (not the probes, not CORS
preflights). For a request that carries a session (cookie or Bearer token) it runs the
gate script (haven.cluster.gate_script), with rate limiting on or off: the request's rate limits
(haven.cluster.ratelimit), the session read with its TTL slid, the user's authorization
mirror and, for a cached view, the organization's cache version and entry, all in one
EVALSHA. What it read is left in the scope as a `Prefetch` for the `principal` dependency
(haven.auth.principal). A request without a session goes through the plain limiter.

Cached views are declared on their handlers (`opt=cached_view(name)`, haven.store.gate)
and collected from the app's routes when the edge is installed (`cached_views`). For a
GET of one, when the session, the mirror and the entry are all there, the gate answers
with the cached bytes at once, doing what the route and its `principal` would (accept
the session, which refreshes its lastSeen at most once a minute; refuse a malformed one or
one the mirror does not vouch for) without routing, dependency injection or response
building. Anything else (no session, a miss, a query string, an error) goes on to the
route, which computes or refuses exactly as before; tests/integration/dashboard checks that
both answer alike. A cached view cannot have role guards (the fast path would skip them):
start-up refuses one.
"""

from __future__ import annotations

import re

import structlog
from litestar import Litestar
from litestar.exceptions import ImproperlyConfiguredException
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.exceptions import RedisError

from haven.auth import authz
from haven.auth.sessions import session_id_from_scope
from haven.cluster.asgi import (
    is_open_endpoint,
    is_operator_request,
    operator_token_ok,
    send_problem,
)
from haven.cluster.ratelimit import header, limits_for, operator_limit, refuse
from haven.cluster.runtime import Cluster
from haven.errors import DependencyUnavailableError
from haven.models.organization import RESIDENT
from haven.store.gate import CACHED_VIEW, SCOPE_KEY, CachedView, Prefetch
from haven.store.idempotency import edge_key
from haven.store.ratelimit import Decision, Limit

log = structlog.get_logger("haven.gate")

# The ids a session names, as the server writes them (str(uuid.UUID)): only these are
# trusted on the fast path (the gate derived its cache keys from the raw oid); anything
# else goes to the route, which parses them and answers for itself.
_CANONICAL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CACHED_HEADERS = ((b"content-type", b"application/json"), (b"cache-control", b"private, no-store"))


def cached_views(app: Litestar) -> dict[str, CachedView]:
    """The app's cached views by path, from their handlers' `opt`.

    Refuses (ImproperlyConfiguredException, at start-up) a cached view the fast path could
    not answer as its route would: one with guards or `roles(...)`, a path parameter, or
    another method than GET.
    """
    views: dict[str, CachedView] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            view = handler.opt.get(CACHED_VIEW)
            if view is None:
                continue
            where = f"{handler.handler_name} ({route.path})"
            if not isinstance(view, CachedView):
                raise ImproperlyConfiguredException(
                    f"{where}: opt['{CACHED_VIEW}'] must be haven.store.gate.cached_view(...)"
                )
            if handler.opt.get("roles") is not None or handler.resolve_guards():
                raise ImproperlyConfiguredException(
                    f"{where} is a cached view with role guards: the edge answers a cached "
                    "view before any guard runs, so a cached view cannot be limited to roles"
                )
            if route.path_parameters or set(handler.http_methods) - {"GET", "HEAD"}:
                raise ImproperlyConfiguredException(
                    f"{where}: a cached view must be a GET of a path without parameters"
                )
            views[route.path] = view
    return views


class GateMiddleware:
    """Runs the gate (rate limits + session prefetch + cached view) for each request."""

    def __init__(self, app: ASGIApp, cluster: Cluster, views: dict[str, CachedView]) -> None:
        self.app = app
        self.cluster = cluster
        self.settings = cluster.settings
        self.views = views
        self._outage = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method")
        path = scope.get("path", "")
        if method == "OPTIONS":
            await self.app(scope, receive, send)
            return
        if is_operator_request(scope):
            await self._operator(scope, receive, send)
            return
        if is_open_endpoint(path):
            await self.app(scope, receive, send)
            return
        settings = self.settings
        sid, via_cookie = session_id_from_scope(scope, settings)
        gate = self.cluster.gate
        if sid is None:
            if settings.rate_limit_enabled:
                await self._limited(scope, receive, send, sid)
            else:
                await self.app(scope, receive, send)
            return
        limits, strict, receive = await limits_for(scope, receive, settings, sid)
        if strict:  # sign-in and password limits count in their own windows
            await self._limited(scope, receive, send, sid, limits, strict)
            return
        view = self.views.get(path) if method == "GET" else None
        try:
            decision, prefetch = await gate.run(
                limits,
                sid,
                via_cookie,
                view.name() if view is not None else "",
                edge_key(scope) if method == "POST" else None,
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._unavailable(exc)
            await self.app(scope, receive, send)
            return
        self._outage = False
        if prefetch is None:
            assert decision is not None
            await refuse(scope, send, decision, settings)
            return
        scope.setdefault("state", {})[SCOPE_KEY] = prefetch
        if view is not None and prefetch.cached is not None and not scope.get("query_string"):
            body = await self._cached(prefetch)
            if body is not None:
                headers = [*_CACHED_HEADERS, (b"content-length", str(len(body)).encode())]
                if decision is not None:
                    headers += decision.headers()
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
        await self._app_with(decision, scope, receive, send)

    async def _cached(self, prefetch: Prefetch) -> bytes | None:
        """The cached bytes when the route would answer them; None: let the route answer."""
        try:
            data = await self.cluster.links.sessions.accept(prefetch.sid, prefetch.session)
        except Exception:  # let the route meet (and report) the same failure
            return None
        if data is None or not (
            _CANONICAL_ID.fullmatch(data.uid) and _CANONICAL_ID.fullmatch(data.oid)
        ):
            return None  # the route answers 401 for it (or parses a non-canonical id)
        # Only a member in good standing per the authorization mirror read in the same round
        # trip; anything else (mirror missing or behind, removed, older credential epoch) goes
        # to the route, whose principal consults the database and refuses or re-publishes.
        current = authz.parse(prefetch.authz)
        if authz.verdict(data, current) != authz.OK:
            return None
        if isinstance(current, authz.Authz) and current.role == RESIDENT:
            return None  # closed to residents: the route's principal answers 404

        return prefetch.cached

    async def _app_with(
        self, decision: Decision | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """The app, with the RateLimit-* headers of `decision` on its response."""
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

    def _unavailable(self, exc: BaseException) -> None:
        if not self._outage:  # once per outage, not once per request
            log.warning("rate_limit_unavailable", error=repr(exc))
        self._outage = True

    async def _limited(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        sid: str | None,
        limits: list[Limit] | None = None,
        strict: str = "",
    ) -> None:
        """The request's limits through the plain limiter (no session to prefetch, or a
        sign-in/password limit); those fail closed without Redis, the others open."""
        if limits is None:
            limits, strict, receive = await limits_for(scope, receive, self.settings, sid)
        limiter = self.cluster.limiter
        try:
            decision = await limiter.hit(limits)
        except (RedisError, OSError, TimeoutError) as exc:
            self._unavailable(exc)
            if strict:
                await send_problem(
                    send,
                    scope,
                    DependencyUnavailableError(
                        f"{'Sign-in' if strict == 'sign-in' else 'Changing a password'} is "
                        "briefly unavailable (its rate limiter cannot be reached); retry shortly"
                    ),
                )
                return
            await self.app(scope, receive, send)
            return
        self._outage = False
        if not decision.allowed:
            await refuse(scope, send, decision, self.settings)
            return
        await self._app_with(decision, scope, receive, send)

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
            or not settings.operator_token
            or operator_token_ok(settings.operator_token, header(scope, b"authorization"))
        ):
            await self.app(scope, receive, send)
            return
        try:
            decision = await limiter.hit([operator_limit(scope, settings)])
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
            await refuse(scope, send, decision, settings)
            return
        await self.app(scope, receive, send)
