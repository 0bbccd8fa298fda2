"""/api/v1/tenants/{id}/invitations, /api/v1/invitations/accept, /api/v1/tenants/{id}/access."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, delete, post
from litestar.di import Provide
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from haven.accounts.routes import signed_in
from haven.auth import authz
from haven.auth.principal import MANAGERS, STAFF, Principal, roles
from haven.auth.schemas import LoginOut
from haven.residents import service
from haven.residents.schemas import AcceptIn, InvitationIn, InvitationOut
from haven.services import Services
from haven.uow import after_commit
from haven.uow.http import provide_anonymous_db
from haven.web import NO_STORE


class TenantAccessController(Controller):
    path = "/tenants/{tenant_id:uuid}"
    tags = ["residents"]

    @post("/invitations", status_code=HTTP_201_CREATED, opt=roles(*STAFF))
    async def invite(
        self,
        services: Services,
        db: AsyncSession,
        principal: Principal,
        tenant_id: uuid.UUID,
        data: InvitationIn,
    ) -> Response[InvitationOut]:
        """Invite the tenant to sign in as a resident: a single-use token, shown only here,
        valid INVITATION_TTL_DAYS; it replaces any open invitation of the tenant."""
        settings = services.settings
        invitation, token = await service.invite(
            db,
            principal.organization_id,
            tenant_id,
            principal.user_id,
            data,
            ttl_days=settings.invitation_ttl_days,
            grace_days=settings.resident_grace_days,
        )
        body = InvitationOut(
            id=invitation.id,
            tenant_id=invitation.tenant_id,
            email=invitation.email,
            token=token,
            expires_at=invitation.expires_at,
            created_at=invitation.created_at,
        )
        return Response(body, status_code=HTTP_201_CREATED, headers=NO_STORE)

    @delete("/access", status_code=HTTP_204_NO_CONTENT, opt=roles(*MANAGERS))
    async def revoke(
        self, services: Services, db: AsyncSession, principal: Principal, tenant_id: uuid.UUID
    ) -> None:
        """End the tenant's resident access now: their login is removed, every session of
        theirs ends at once on every instance, open invitations are revoked."""
        user_id = await service.revoke_access(db, principal.organization_id, tenant_id)
        if user_id is not None:
            after_commit(
                db, await authz.propagate(services, str(user_id), authz.REMOVED, end_sessions=True)
            )


class InvitationsController(Controller):
    path = "/invitations"
    tags = ["residents"]

    @post(
        "/accept",
        status_code=HTTP_201_CREATED,
        dependencies={"db": Provide(provide_anonymous_db)},
    )
    async def accept(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        db: AsyncSession,
        data: AcceptIn,
    ) -> Response[LoginOut]:
        """Accept an invitation: set a password and sign in as the tenant's resident."""
        account = await service.accept(db, data, grace_days=services.settings.resident_grace_days)
        return await signed_in(request, services, account, HTTP_201_CREATED)
