"""Sign-up, sign-in and the session that follows; no HTTP here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.passwords import hash_password, verify_password
from haven.auth.residents import tenant_access
from haven.auth.schemas import LoginIn, RegisterIn
from haven.errors import (
    ConflictError,
    FieldError,
    InvalidCredentialsError,
    NotFoundError,
    WrongPasswordError,
)
from haven.models import Membership, Organization, User
from haven.models.organization import RESIDENT


@dataclass(frozen=True, slots=True)
class Account:
    user: User
    organization: Organization
    membership: Membership

    @property
    def role(self) -> str:
        return self.membership.role


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def email_taken(session: AsyncSession, email: str) -> bool:
    stmt = select(User.id).where(User.email == normalize_email(email))
    return (await session.execute(stmt)).first() is not None


async def register(session: AsyncSession, data: RegisterIn) -> Account:
    if await email_taken(session, data.email):
        raise ConflictError(
            "An account with this email already exists",
            errors=[FieldError("email", "is already registered")],
        )
    organization = Organization(name=data.organization_name.strip(), currency="USD", timezone="UTC")
    user = User(
        email=normalize_email(data.email),
        name=data.name.strip(),
        password_hash=await hash_password(data.password),
    )
    try:
        # The email check above races with a registration on another instance; the
        # unique index decides, and the loser hears 409 like a sequential duplicate.
        session.add_all([organization, user])
        await session.flush()
        membership = Membership(organization_id=organization.id, user_id=user.id, role="owner")
        session.add(membership)
        await session.flush()
    except IntegrityError:
        raise ConflictError(
            "An account with this email already exists",
            errors=[FieldError("email", "is already registered")],
        ) from None
    return Account(user, organization, membership)


async def account_of(session: AsyncSession, user_id: uuid.UUID) -> Account | None:
    stmt = (
        select(User, Organization, Membership)
        .join(Membership, Membership.user_id == User.id)
        .join(Organization, Organization.id == Membership.organization_id)
        .where(User.id == user_id)
    )
    row = (await session.execute(stmt)).first()
    return Account(row[0], row[1], row[2]) if row else None


async def authenticate(
    session: AsyncSession, data: LoginIn, *, resident_grace_days: int = 30
) -> Account:
    """The account for these credentials; a resident whose access has ended (their last
    lease's end plus the grace days, haven.auth.residents) hears the same as a wrong
    password, so an address reveals nothing about a tenancy."""
    stmt = (
        select(User, Organization, Membership)
        .join(Membership, Membership.user_id == User.id)
        .join(Organization, Organization.id == Membership.organization_id)
        .where(User.email == normalize_email(data.email))
    )
    row = (await session.execute(stmt)).first()
    ok = await verify_password(row[0].password_hash if row else None, data.password)
    if row is None or not ok:
        raise InvalidCredentialsError("Wrong email or password")
    membership: Membership = row[2]
    if membership.role == RESIDENT and (
        membership.tenant_id is None
        or not await tenant_access(
            session, membership.organization_id, membership.tenant_id, resident_grace_days
        )
    ):
        raise InvalidCredentialsError("Wrong email or password")
    return Account(row[0], row[1], row[2])


async def credentials_of(
    session: AsyncSession, user_id: uuid.UUID, organization_id: uuid.UUID
) -> tuple[int, int, str] | None:
    """(credential epoch, membership version, role), or None when not a member."""
    stmt = (
        select(User.credential_epoch, Membership.version, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(User.id == user_id, Membership.organization_id == organization_id)
    )
    row = (await session.execute(stmt)).first()
    return (int(row[0]), int(row[1]), str(row[2])) if row else None


async def change_password(
    session: AsyncSession, user_id: uuid.UUID, current: str, new: str
) -> Account:
    """Check the current password, set the new one and bump the credential epoch."""
    account = await account_of(session, user_id)
    if account is None:
        raise NotFoundError("This account no longer exists")
    if not await verify_password(account.user.password_hash, current):
        raise WrongPasswordError("The current password is wrong; nothing was changed")
    await set_password(session, account.user, new)
    return account


async def set_password(session: AsyncSession, user: User, new: str) -> None:
    """A new password ends every session stamped with the old credential epoch."""
    user.password_hash = await hash_password(new)
    user.credential_epoch += 1
    await session.flush()
