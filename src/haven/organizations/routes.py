"""/api/v1/organization and /api/v1/members (owner only)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import UNSET
from sqlalchemy.ext.asyncio import AsyncSession

from haven.accounts.routes import organization_out
from haven.auth import authz
from haven.auth.principal import OWNER, Principal, roles
from haven.auth.schemas import OrganizationOut
from haven.db.reader import Reader
from haven.errors import ConflictError
from haven.organizations import service
from haven.organizations.schemas import (
    MemberIn,
    MemberOut,
    MemberPatch,
    OrganizationPatch,
    PasswordResetIn,
)
from haven.schemas import ListOf
from haven.services import Services
from haven.uow import after_commit
from haven.web import NO_STORE, check_version, with_etag


def member_out(row: service.MemberRow) -> MemberOut:
    user, membership = row
    return MemberOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=membership.role,
        version=user.version,
        created_at=user.created_at,
    )


class OrganizationController(Controller):
    path = "/organization"
    tags = ["organization"]

    @get("/")
    async def show(
        self, request: Request[Any, Any, Any], db: AsyncSession, principal: Principal
    ) -> Response[OrganizationOut]:
        """The caller's organization: name, currency and time zone."""
        org = await service.get_organization(db, principal.organization_id)
        return with_etag(request, organization_out(org), org.version)

    @patch("/", opt=roles(*OWNER))
    async def update(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        data: OrganizationPatch,
    ) -> Response[OrganizationOut]:
        """Change the organization's name, currency or time zone (owner only)."""
        org = await service.get_organization(db, principal.organization_id)
        check_version(org, request.headers.get("if-match"))
        org = await service.update_organization(db, org, data)
        return with_etag(request, organization_out(org), org.version)


class MembersController(Controller):
    path = "/members"
    tags = ["members"]
    opt = roles(*OWNER, people_only=True)  # API keys never manage members

    @get("/")
    async def list_members(
        self, db: AsyncSession, principal: Principal
    ) -> Response[ListOf[MemberOut]]:
        """Everyone who can sign in to the organization, with their role."""
        rows = await service.list_members(db, principal.organization_id)
        return Response(ListOf([member_out(r) for r in rows], None), headers=NO_STORE)

    @post("/", status_code=HTTP_201_CREATED)
    async def add(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        reader: Reader,
        principal: Principal,
        data: MemberIn,
    ) -> Response[MemberOut]:
        """Add a member with a role and an initial password."""
        row = await service.add_member(db, reader, principal.organization_id, data)
        return with_etag(request, member_out(row), row[0].version, HTTP_201_CREATED)

    @get("/{member_id:uuid}")
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        member_id: uuid.UUID,
    ) -> Response[MemberOut]:
        """One member."""
        row = await service.get_member(db, principal.organization_id, member_id)
        return with_etag(request, member_out(row), row[0].version)

    @patch("/{member_id:uuid}")
    async def update(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        db: AsyncSession,
        principal: Principal,
        member_id: uuid.UUID,
        data: MemberPatch,
    ) -> Response[MemberOut]:
        """Rename a member, change their role (applies to their live sessions) or password."""
        if data.password is not UNSET and member_id == principal.user_id:
            # Your own password needs the current one (and its rate limit): a stolen session
            # must not be able to set it here and lock the owner out.
            raise ConflictError(
                "Change your own password with POST /api/v1/auth/password (current one needed)"
            )
        row = await service.get_member(db, principal.organization_id, member_id)
        check_version(row[0], request.headers.get("if-match"))
        row = await service.update_member(db, principal.organization_id, row, data)
        # Published whatever changed: the mirror's compare-and-set ignores a stale value.
        await publish(db, services, principal, row, password_changed=data.password is not UNSET)
        return with_etag(request, member_out(row), row[0].version)

    @post("/{member_id:uuid}/password", status_code=HTTP_204_NO_CONTENT)
    async def reset_password(
        self,
        services: Services,
        db: AsyncSession,
        principal: Principal,
        member_id: uuid.UUID,
        data: PasswordResetIn,
    ) -> None:
        """Set a member's password; all their sessions end at once on every instance."""
        if member_id == principal.user_id:
            raise ConflictError("Change your own password with POST /api/v1/auth/password")
        row = await service.get_member(db, principal.organization_id, member_id)
        row = await service.reset_password(db, row, data.new_password)
        await publish(db, services, principal, row, password_changed=True)

    @delete("/{member_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def remove(
        self, services: Services, db: AsyncSession, principal: Principal, member_id: uuid.UUID
    ) -> None:
        """Remove a member; their sessions end at once on every instance."""
        if member_id == principal.user_id:
            raise ConflictError("You cannot remove yourself; ask another owner")
        row = await service.get_member(db, principal.organization_id, member_id)
        await service.remove_member(db, principal.organization_id, row)
        after_commit(
            db, await authz.propagate(services, str(member_id), authz.REMOVED, end_sessions=True)
        )


async def publish(
    db: AsyncSession,
    services: Services,
    principal: Principal,
    row: service.MemberRow,
    *,
    password_changed: bool,
) -> None:
    """Mirror the member's state on every instance once committed; on a password change end
    their sessions (all of them, or all but the caller's own when they changed their own)."""
    user, membership = row
    publish_after = await authz.propagate(
        services,
        str(user.id),
        authz.Authz(user.credential_epoch, membership.version, membership.role),
        end_sessions=password_changed,
        keep_sid=principal.sid if user.id == principal.user_id else None,
    )
    after_commit(db, publish_after)
