"""/api/v1/auth: register, login, logout, me, token renewal, and the caller's own sessions.

Every route but register and login needs a person's session: API keys are refused (403).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.di import Provide
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth import authz, service, tokens
from haven.auth.authz import Authz
from haven.auth.principal import OPEN_TO_RESIDENTS, Principal, session_id_of
from haven.auth.schemas import (
    LoginIn,
    LoginOut,
    MeOut,
    OrganizationOut,
    PasswordChangeIn,
    RegisterIn,
    TokenOut,
    UserOut,
)
from haven.auth.sessions import SessionInfo
from haven.errors import NotFoundError, NotSignedInError
from haven.models import Organization, User
from haven.services import Services
from haven.uow import after_commit
from haven.uow.http import provide_anonymous_db
from haven.web import NO_STORE, client_ip, request_is_https

CSRF_COOKIE = "haven_csrf"


def authz_of(account: service.Account) -> Authz:
    return Authz(account.user.credential_epoch, account.membership.version, account.role)


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email, name=user.name, created_at=user.created_at)


def organization_out(org: Organization) -> OrganizationOut:
    return OrganizationOut(
        id=org.id,
        name=org.name,
        currency=org.currency,
        timezone=org.timezone,
        version=org.version,
        created_at=org.created_at,
        updated_at=org.updated_at,
    )


async def _signed_in(
    request: Request[Any, Any, Any], services: Services, account: service.Account, status_code: int
) -> Response[LoginOut]:
    """Open a fresh session (rotating any the caller presented) and answer with its tokens."""
    settings = services.settings
    old_sid, via_cookie = session_id_of(request, services)
    if old_sid is not None and via_cookie:
        await services.sessions.revoke(old_sid)
    user_id = str(account.user.id)
    sid, data = await services.sessions.create(
        user_id=user_id,
        organization_id=str(account.organization.id),
        epoch=account.user.credential_epoch,
        agent=request.headers.get("user-agent", ""),
        ip=client_ip(request, settings),
    )
    await services.sessions.publish_authz(user_id, authz_of(account).encode())
    # The token and the cookies last as long as the session can (its absolute lifetime);
    # the session's sliding TTL, checked on every request, ends it sooner when idle.
    lifetime = settings.session_max_age
    token, exp = tokens.issue(
        settings.secret_key,
        sid=sid,
        user_id=user_id,
        ttl=lifetime,
        not_after=services.sessions.expires_at(data),
    )
    body = LoginOut(
        user=user_out(account.user),
        organization=organization_out(account.organization),
        role=account.role,
        access_token=token,
        token_type="Bearer",  # noqa: S106 - the OAuth token type, not a secret
        expires_at=datetime.fromtimestamp(exp, UTC),
        csrf_token=data.csrf,
    )
    # Behind a TLS load balancer the cookies are Secure in every environment.
    secure = settings.is_production or request_is_https(request, settings)
    cookies = [
        Cookie(
            key=settings.session_cookie_name,
            value=sid,
            httponly=True,
            samesite="lax",
            secure=secure,
            path="/",
            max_age=lifetime,
        ),
        Cookie(
            key=CSRF_COOKIE,
            value=data.csrf,
            httponly=False,
            samesite="lax",
            secure=secure,
            path="/",
            max_age=lifetime,
        ),
    ]
    return Response(body, status_code=status_code, cookies=cookies, headers=NO_STORE)


signed_in = _signed_in  # accepting an invitation signs the new resident in the same way


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post(
        "/register",
        status_code=HTTP_201_CREATED,
        dependencies={"db": Provide(provide_anonymous_db)},
    )
    async def register(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        db: AsyncSession,
        data: RegisterIn,
    ) -> Response[LoginOut]:
        """Create an organization and its owner, and sign the owner in."""
        account = await service.register(db, data)
        return await _signed_in(request, services, account, HTTP_201_CREATED)

    @post("/login", status_code=HTTP_200_OK, dependencies={"db": Provide(provide_anonymous_db)})
    async def login(
        self, request: Request[Any, Any, Any], services: Services, db: AsyncSession, data: LoginIn
    ) -> Response[LoginOut]:
        """Sign in with email and password: a new session cookie, CSRF token and bearer token."""
        account = await service.authenticate(
            db, data, resident_grace_days=services.settings.resident_grace_days
        )
        return await _signed_in(request, services, account, HTTP_200_OK)

    @post("/logout", status_code=HTTP_204_NO_CONTENT, opt=OPEN_TO_RESIDENTS)
    async def logout(self, services: Services, principal: Principal) -> Response[None]:
        """End this session on every instance at once."""
        await services.sessions.revoke(principal.sid, principal.session)
        settings = services.settings
        response: Response[None] = Response(None, status_code=HTTP_204_NO_CONTENT)
        response.delete_cookie(settings.session_cookie_name, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    @post("/token", status_code=HTTP_200_OK, opt=OPEN_TO_RESIDENTS)
    async def token(self, services: Services, principal: Principal) -> Response[TokenOut]:
        """A fresh Bearer token for this session (sent as a Bearer token or the session
        cookie with X-CSRF-Token). It lasts until the session's absolute end
        (SESSION_MAX_AGE after sign-in); after that, sign in again. Machines use API keys."""
        settings = services.settings
        token, exp = tokens.issue(
            settings.secret_key,
            sid=principal.sid,
            user_id=str(principal.user_id),
            ttl=settings.session_max_age,
            not_after=services.sessions.expires_at(principal.session),
        )
        body = TokenOut(
            access_token=token,
            token_type="Bearer",  # noqa: S106 - the OAuth token type, not a secret
            expires_at=datetime.fromtimestamp(exp, UTC),
        )
        return Response(body, headers=NO_STORE)

    @post("/password", status_code=HTTP_204_NO_CONTENT, opt=OPEN_TO_RESIDENTS)
    async def change_password(
        self, services: Services, db: AsyncSession, principal: Principal, data: PasswordChangeIn
    ) -> None:
        """Change your password: every other session of yours ends, this one stays."""
        account = await service.change_password(
            db, principal.user_id, data.current_password, data.new_password
        )
        publish_after = await authz.propagate(
            services,
            str(principal.user_id),
            authz_of(account),
            end_sessions=True,
            keep_sid=principal.sid,
        )
        after_commit(db, publish_after)

    @get("/me", opt=OPEN_TO_RESIDENTS)
    async def me(self, db: AsyncSession, principal: Principal) -> Response[MeOut]:
        """The signed-in user, their organization and role, and the session's CSRF token."""
        account = await service.account_of(db, principal.user_id)
        if account is None:
            raise NotSignedInError("This account no longer exists")
        body = MeOut(
            user=user_out(account.user),
            organization=organization_out(account.organization),
            role=principal.role,
            csrf_token=principal.session.csrf,
        )
        return Response(body, headers=NO_STORE)

    @get("/sessions", opt=OPEN_TO_RESIDENTS)
    async def sessions(self, services: Services, principal: Principal) -> Response[dict[str, Any]]:
        """The caller's own live sessions, newest first."""
        items: list[SessionInfo] = await services.sessions.list_for_user(
            str(principal.user_id), principal.session.pid
        )
        return Response({"items": items, "nextCursor": None}, headers=NO_STORE)

    @delete("/sessions/{session_id:str}", status_code=HTTP_204_NO_CONTENT, opt=OPEN_TO_RESIDENTS)
    async def revoke_session(
        self,
        services: Services,
        principal: Principal,
        session_id: str = Parameter(max_length=64),
    ) -> None:
        """Revoke one of the caller's own sessions (sign out another device)."""
        if not await services.sessions.revoke_public(str(principal.user_id), session_id):
            raise NotFoundError("No such session")
