"""Resident rules: invitations (single use, expiring, superseded by a newer one), accepting
one (a user with role `resident` bound to the tenant) and staff revoking access.

Tokens are `hvi_` + 32 random bytes (URL-safe base64); only their sha256 is stored, so a
database leak yields no usable token. Every way a token can fail (unknown, malformed,
expired, used, revoked, superseded) gives one answer, so a guesser learns nothing.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.passwords import hash_password
from haven.auth.residents import tenant_access
from haven.auth.service import Account, email_taken, normalize_email
from haven.db.base import utcnow
from haven.db.query import get_owned
from haven.errors import ConflictError, FieldError, InvalidInvitationError, ValidationError
from haven.models import Membership, Organization, Tenant, TenantInvitation, User
from haven.models.organization import RESIDENT
from haven.residents.schemas import AcceptIn, InvitationIn

TOKEN_PREFIX = "hvi_"  # noqa: S105 - the prefix of invitation tokens, not a secret
_TOKEN = re.compile(r"^hvi_[A-Za-z0-9_-]{43}$")


def now() -> datetime:
    """The current time for invitations (tests move it to see a token expire)."""
    return utcnow()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _taken() -> ConflictError:
    return ConflictError(
        "An account with this email already exists",
        errors=[FieldError("email", "is already registered")],
    )


async def resident_of(session: AsyncSession, tenant: Tenant) -> Membership | None:
    stmt = select(Membership).where(
        Membership.organization_id == tenant.organization_id,
        Membership.tenant_id == tenant.id,
        Membership.role == RESIDENT,
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def _revoke_open(session: AsyncSession, tenant_id: uuid.UUID, at: datetime) -> None:
    """Revoke the tenant's open invitations (through the ORM: audited, evented)."""
    stmt = select(TenantInvitation).where(
        TenantInvitation.tenant_id == tenant_id,
        TenantInvitation.accepted_at.is_(None),
        TenantInvitation.revoked_at.is_(None),
    )
    for invitation in (await session.execute(stmt)).scalars():
        invitation.revoked_at = at
    await session.flush()


async def invite(
    session: AsyncSession,
    organization_id: uuid.UUID,
    tenant_id: uuid.UUID,
    inviter_id: uuid.UUID,
    data: InvitationIn,
    *,
    ttl_days: int,
    grace_days: int,
) -> tuple[TenantInvitation, str]:
    """A new invitation and its token (the only time the token exists in clear)."""
    tenant = await get_owned(session, Tenant, organization_id, tenant_id)
    email = data.email or tenant.email
    if not email:
        raise ValidationError(
            "The tenant has no email: give one",
            errors=[FieldError("email", "is required when the tenant has none")],
        )
    email = normalize_email(email)
    if await resident_of(session, tenant) is not None:
        raise ConflictError("This tenant can already sign in; revoke their access first")
    if await email_taken(session, email):
        raise _taken()
    if not await tenant_access(session, organization_id, tenant.id, grace_days):
        raise ConflictError("This tenant has no current or upcoming lease to give access to")
    at = now()
    await _revoke_open(session, tenant.id, at)  # a newer invitation supersedes older ones
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    invitation = TenantInvitation(
        organization_id=organization_id,
        tenant_id=tenant.id,
        email=email,
        token_hash=token_hash(token),
        expires_at=at + timedelta(days=ttl_days),
        created_by_id=inviter_id,
    )
    session.add(invitation)
    await session.flush()
    return invitation, token


async def accept(session: AsyncSession, data: AcceptIn, *, grace_days: int) -> Account:
    """Create the resident's login from an open invitation and mark it used."""
    if not _TOKEN.fullmatch(data.token):
        raise InvalidInvitationError("This invitation is not valid; ask for a new one")
    stmt = (
        select(TenantInvitation)
        .where(TenantInvitation.token_hash == token_hash(data.token))
        .with_for_update()
    )
    invitation = (await session.execute(stmt)).scalar_one_or_none()
    at = now()
    if (
        invitation is None
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= at
    ):
        raise InvalidInvitationError(
            "This invitation is not valid (unknown, expired, already used or replaced); "
            "ask for a new one"
        )
    tenant = await get_owned(session, Tenant, invitation.organization_id, invitation.tenant_id)
    if await resident_of(session, tenant) is not None:
        raise ConflictError("This tenant can already sign in")
    if not await tenant_access(session, tenant.organization_id, tenant.id, grace_days):
        raise ConflictError("The tenant's lease has ended; access can no longer be given")
    if await email_taken(session, invitation.email):
        raise _taken()
    name = data.name.strip() if data.name else f"{tenant.first_name} {tenant.last_name}"
    user = User(email=invitation.email, name=name, password_hash=await hash_password(data.password))
    session.add(user)
    try:
        await session.flush()  # the unique email index settles a race with another instance
    except IntegrityError:
        raise _taken() from None
    membership = Membership(
        organization_id=tenant.organization_id, user_id=user.id, role=RESIDENT, tenant_id=tenant.id
    )
    session.add(membership)
    invitation.accepted_at = at
    invitation.user_id = user.id
    await session.flush()
    organization = await session.get(Organization, tenant.organization_id)
    assert organization is not None  # the tenant's organization, by its foreign key
    return Account(user, organization, membership)


async def revoke_access(
    session: AsyncSession, organization_id: uuid.UUID, tenant_id: uuid.UUID
) -> uuid.UUID | None:
    """Remove the tenant's login (if any) and revoke their open invitations; returns the
    removed user's id so their sessions can end. What they wrote keeps its tenant."""
    tenant = await get_owned(session, Tenant, organization_id, tenant_id)
    await _revoke_open(session, tenant.id, now())
    membership = await resident_of(session, tenant)
    if membership is None:
        return None
    user = await session.get(User, membership.user_id)
    await session.delete(membership)
    if user is not None:
        await session.delete(user)
    await session.flush()
    return membership.user_id
