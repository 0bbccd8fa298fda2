"""Who is calling: the session behind the cookie or Bearer token, its role, and CSRF.

Routes declare `principal: Principal`; the dependency resolves the session
from Redis on every request (so a logout on any instance is seen at once),
checks it against its user's current membership, role and credential epoch
(haven.auth.authz: the role is never taken from the session), checks CSRF for
cookie-authenticated unsafe requests, and enforces the roles a handler lists
in `opt={"roles": ...}`.

A Bearer value starting with `hvn_` is an API key (haven.auth.apikeys.verify), never a
session: the principal then acts for the key's organization with the key's role (capped
by its creator's), names the key in `api_key_id`, and may not call handlers marked
`PEOPLE_ONLY` (sessions, passwords, members, API keys themselves). A key sent as the
session cookie is refused.

Residents (role `resident`, a tenant who signs in) are closed out by default: a handler
is open to them only when its `roles(...)` names RESIDENT (`opt=roles(*ANYONE, RESIDENT)`,
or `OPEN_TO_RESIDENTS` for a route open to every signed-in person); anywhere else a
resident gets the 404 of a missing resource, never 403. A handler open to residents must
scope what it reads to `principal.resident_tenant_id`. Every request of a resident also
checks their access is still open (haven.auth.residents): once it ended the session is
deleted and the answer is 401.
"""

from __future__ import annotations

import asyncio
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Request

from haven.auth import authz
from haven.auth.apikeys import keys as api_keys
from haven.auth.apikeys import verify as api_key_verify
from haven.auth.residents import resident_tenant, tenant_access
from haven.auth.sessions import SessionData, session_id_from_scope
from haven.errors import CsrfError, ForbiddenError, NotFoundError, NotSignedInError
from haven.models.organization import RESIDENT as RESIDENT  # `roles(*ANYONE, RESIDENT)`
from haven.services import Services, services_of
from haven.store.gate import prefetch_of

_KEY_CHECK = "api_key_check"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

OWNER = ("owner",)
MANAGERS = ("owner", "manager")
STAFF = ("owner", "manager", "staff")
ANYONE = ("owner", "manager", "staff", "viewer")


def roles(*allowed: str, people_only: bool = False) -> dict[str, Any]:
    """Handler `opt` that limits it to these roles: `@post("/", opt=roles(*MANAGERS))`;
    with `people_only`, API keys are refused (403) whatever their role."""
    opt: dict[str, Any] = {"roles": frozenset(allowed)}
    if people_only:
        opt["people_only"] = True
    return opt


# Handler `opt` for routes open to every signed-in person but not to API keys.
PEOPLE_ONLY: dict[str, Any] = {"people_only": True}
# The same, residents included (their own session, password and profile).
OPEN_TO_RESIDENTS: dict[str, Any] = roles(*ANYONE, RESIDENT, people_only=True)


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    organization_id: uuid.UUID
    role: str
    sid: str
    session: SessionData
    via_cookie: bool
    # Set when an API key, not a session, authenticated the request; user_id is then the
    # key's creator, sid is "" and session a stand-in naming only the user and organization.
    api_key_id: uuid.UUID | None = None
    # Set for a resident: the tenant they sign in for; what they read is scoped to it.
    resident_tenant_id: uuid.UUID | None = None

    @property
    def actor(self) -> str:
        """Who acts, for scoping per caller (Idempotency-Key): the key, else the user."""
        return f"key:{self.api_key_id}" if self.api_key_id is not None else str(self.user_id)


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    # The first Authorization header, from the raw ASGI headers as the edge reads it
    # (haven.auth.sessions.session_id_from_scope), without building Litestar's Headers.
    header = next(
        (value for name, value in request.scope["headers"] if name == b"authorization"), None
    )
    if not header:
        return None
    scheme, _, token = header.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def session_id_of(request: Request[Any, Any, Any], services: Services) -> tuple[str | None, bool]:
    """(sid, via_cookie), read as the edge reads it (haven.auth.sessions.session_id_from_scope)."""
    return session_id_from_scope(request.scope, services.settings)


def has_credentials(request: Request[Any, Any, Any], services: Services) -> bool:
    """Whether the request presents a session (cookie or token) or an API key."""
    token = bearer_token(request)
    if token is not None and api_keys.looks_like_key(token):
        return True
    return session_id_of(request, services)[0] is not None


def session_ids(data: SessionData) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The session's (user id, organization id), or None when it holds malformed ones."""
    try:
        return uuid.UUID(data.uid), uuid.UUID(data.oid)
    except ValueError:
        return None


async def authorized(
    services: Services, sid: str, session: bytes | None, mirror: bytes | None
) -> tuple[SessionData, str] | None:
    """(session, current role) for a session record and its user's authorization mirror as
    the gate read them; None when the session is gone, past its max age, or revoked (a
    removed member, an older credential epoch), in which case it is deleted."""
    data = await services.sessions.accept(sid, session)
    if data is None or (ids := session_ids(data)) is None:
        return None
    current = authz.parse(mirror)
    decision = authz.verdict(data, current)
    if decision == authz.RELOAD:
        current = await authz.load(services, ids[0], ids[1])
        decision = authz.verdict(data, current)
        if decision == authz.RELOAD:  # the session claims an epoch the database never had
            decision = authz.REVOKED
    if decision != authz.OK or not isinstance(current, authz.Authz):
        await services.sessions.revoke(sid, data)
        return None
    return data, current.role


async def key_principal(request: Request[Any, Any, Any], services: Services, key: str) -> Principal:
    """The principal of a request authenticated by an API key (checked once per request:
    each check counts against the key's rate limit)."""
    # The Idempotency-Key scope resolves the principal too, concurrently with the
    # dependency: both await one check.
    check = getattr(request.state, _KEY_CHECK, None)
    if not isinstance(check, asyncio.Future):
        check = asyncio.ensure_future(api_key_verify.resolve(services, key))
        setattr(request.state, _KEY_CHECK, check)
    identity: api_key_verify.KeyIdentity = await check
    opt = request.route_handler.opt
    if opt.get("people_only"):
        raise ForbiddenError("API keys cannot do this; sign in as a person")
    allowed = opt.get("roles")
    if allowed is not None and identity.role not in allowed:
        raise ForbiddenError(f"The {identity.role} role cannot do this")
    user, org = str(identity.creator_id), str(identity.organization_id)
    principal = Principal(
        user_id=identity.creator_id,
        organization_id=identity.organization_id,
        role=identity.role,
        sid="",
        session=SessionData(uid=user, oid=org, csrf="", pid="", created=0.0, seen=0.0),
        via_cookie=False,
        api_key_id=identity.api_key_id,
    )
    request.state.principal = principal  # the audit listener names the key from it
    return principal


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    sid: str | None
    services = services_of(request.app)
    token = bearer_token(request)
    if token is not None and api_keys.looks_like_key(token):
        return await key_principal(request, services, token)
    prefetch = prefetch_of(request.scope)
    if prefetch is not None:
        # The edge already read the session in its one round trip (haven.store.gate).
        sid, via_cookie = prefetch.sid, prefetch.via_cookie
        session, mirror = prefetch.session, prefetch.authz
    else:
        sid, via_cookie = session_id_of(request, services)
        if sid is None:
            raise NotSignedInError("Sign in first: send the haven_session cookie or a Bearer token")
        if via_cookie and api_keys.well_formed(sid):
            raise NotSignedInError("API keys are accepted only as `Authorization: Bearer <key>`")
        session, mirror = await services.sessions.lookup(sid)
    found = await authorized(services, sid, session, mirror) if sid is not None else None
    if found is None or sid is None:
        raise NotSignedInError("Your session has ended; sign in again")
    data, role = found
    ids = session_ids(data)
    if ids is None:
        raise NotSignedInError("Your session has ended; sign in again")
    allowed = request.route_handler.opt.get("roles")
    tenant_id = None
    if role == RESIDENT:  # before CSRF: a closed route is 404 to a resident, never a 403
        tenant_id = await resident_access(services, sid, data, ids[0], ids[1])
        if allowed is None or RESIDENT not in allowed:
            raise NotFoundError()  # closed to residents: as if nothing were there
    if via_cookie and request.method in UNSAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent.encode(), data.csrf.encode()):
            raise CsrfError(
                "Cookie-authenticated writes need the X-CSRF-Token header "
                "(the csrfToken from login, also in the haven_csrf cookie)"
            )
    if role != RESIDENT and allowed is not None and role not in allowed:
        raise ForbiddenError(f"The {role} role cannot do this")
    return Principal(
        user_id=ids[0],
        organization_id=ids[1],
        role=role,
        sid=sid,
        session=data,
        via_cookie=via_cookie,
        resident_tenant_id=tenant_id,
    )


async def resident_access(
    services: Services, sid: str, data: SessionData, user_id: uuid.UUID, org_id: uuid.UUID
) -> uuid.UUID:
    """The resident's tenant while their access is open; else every session of theirs
    ends and the answer is 401 (haven.auth.residents)."""
    async with services.sessionmaker(bind=services.read_engine) as db:
        tenant_id = await resident_tenant(db, user_id, org_id)
        grace = services.settings.resident_grace_days
        if tenant_id is not None and await tenant_access(db, org_id, tenant_id, grace):
            return tenant_id
    await services.sessions.revoke(sid, data)
    await services.sessions.revoke_all(str(user_id))
    raise NotSignedInError("Your access has ended; ask your property manager")
