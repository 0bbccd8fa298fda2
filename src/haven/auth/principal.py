"""Who is calling: the session behind the cookie or Bearer token, its role, and CSRF.

Routes declare `principal: Principal`; the dependency resolves the session
from Redis on every request (so a logout on any instance is seen at once),
checks it against its user's current membership, role and credential epoch
(haven.auth.authz: the role is never taken from the session), checks CSRF for
cookie-authenticated unsafe requests, and enforces the roles a handler lists
in `opt={"roles": ...}`.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import State

from haven.auth import authz, tokens
from haven.auth.sessions import SessionData
from haven.errors import CsrfError, ForbiddenError, NotSignedInError
from haven.store.gate import prefetch_of

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

OWNER = ("owner",)
MANAGERS = ("owner", "manager")
STAFF = ("owner", "manager", "staff")
ANYONE = ("owner", "manager", "staff", "viewer")


def roles(*allowed: str) -> dict[str, Any]:
    """Handler `opt` that limits it to these roles: `@post("/", opt=roles(*MANAGERS))`."""
    return {"roles": frozenset(allowed)}


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    organization_id: uuid.UUID
    role: str
    sid: str
    session: SessionData
    via_cookie: bool


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def session_id_of(request: Request[Any, Any, Any], state: State) -> tuple[str | None, bool]:
    """(sid, via_cookie). A Bearer header wins over a cookie when both are sent."""
    token = bearer_token(request)
    if token is not None:
        return tokens.session_id(state.settings.secret_key, token), False
    sid = request.cookies.get(state.settings.session_cookie_name)
    if sid and len(sid) <= 128:
        return sid, True
    return None, True


def session_ids(data: SessionData) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The session's (user id, organization id), or None when it holds malformed ones."""
    try:
        return uuid.UUID(data.uid), uuid.UUID(data.oid)
    except ValueError:
        return None


async def authorized(
    state: State, sid: str, session: bytes | None, mirror: bytes | None
) -> tuple[SessionData, str] | None:
    """(session, current role) for a session record and its user's authorization mirror as
    the gate read them; None when the session is gone, past its max age, or revoked (a
    removed member, an older credential epoch), in which case it is deleted."""
    data = await state.sessions.accept(sid, session)
    if data is None or (ids := session_ids(data)) is None:
        return None
    current = authz.parse(mirror)
    decision = authz.verdict(data, current)
    if decision == authz.RELOAD:
        current = await authz.load(state, ids[0], ids[1])
        decision = authz.verdict(data, current)
        if decision == authz.RELOAD:  # the session claims an epoch the database never had
            decision = authz.REVOKED
    if decision != authz.OK or not isinstance(current, authz.Authz):
        await state.sessions.revoke(sid, data)
        return None
    return data, current.role


async def provide_principal(request: Request[Any, Any, Any], state: State) -> Principal:
    sid: str | None
    prefetch = prefetch_of(request.scope)
    if prefetch is not None:
        # The edge already read the session in its one round trip (haven.store.gate).
        sid, via_cookie = prefetch.sid, prefetch.via_cookie
        session, mirror = prefetch.session, prefetch.authz
    else:
        sid, via_cookie = session_id_of(request, state)
        if sid is None:
            raise NotSignedInError("Sign in first: send the haven_session cookie or a Bearer token")
        session, mirror = await state.sessions.lookup(sid)
    found = await authorized(state, sid, session, mirror) if sid is not None else None
    if found is None or sid is None:
        raise NotSignedInError("Your session has ended; sign in again")
    data, role = found
    if via_cookie and request.method in UNSAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent.encode(), data.csrf.encode()):
            raise CsrfError(
                "Cookie-authenticated writes need the X-CSRF-Token header "
                "(the csrfToken from login, also in the haven_csrf cookie)"
            )
    allowed = request.route_handler.opt.get("roles")
    if allowed is not None and role not in allowed:
        raise ForbiddenError(f"The {role} role cannot do this")
    ids = session_ids(data)
    if ids is None:
        raise NotSignedInError("Your session has ended; sign in again")
    return Principal(
        user_id=ids[0],
        organization_id=ids[1],
        role=role,
        sid=sid,
        session=data,
        via_cookie=via_cookie,
    )
