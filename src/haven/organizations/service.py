"""Organization settings and membership rules."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import date
from typing import NamedTuple

from msgspec import UNSET
from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from haven.auth.passwords import hash_password
from haven.auth.service import normalize_email, set_password
from haven.clock import today_in_zone
from haven.db.base import utcnow
from haven.db.reader import Reader
from haven.errors import ConflictError, FieldError, NotFoundError, ValidationError
from haven.models import Membership, Organization, User
from haven.models.organization import RESIDENT
from haven.organizations.schemas import MemberIn, MemberPatch, OrganizationPatch
from haven.uow import add_new


async def get_organization(session: AsyncSession, organization_id: uuid.UUID) -> Organization:
    """The organization, or 404 (for a caller: its session outlived its organization)."""
    org = await session.get(Organization, organization_id)
    if org is None:
        raise NotFoundError("No such organization")
    return org


def today_in(org: Organization) -> date:
    """Today's date where the organization is (its timezone), so due dates age locally."""
    return today_in_zone(org.timezone)


class _Zone(NamedTuple):
    timezone: str


_ZONE = select(Organization.timezone).where(Organization.id == bindparam("organization_id"))


async def today_of(reader: Reader, organization_id: uuid.UUID) -> date:
    """`today_in` the organization, read through the Reader (a write's check read, before
    its transaction), or 404 like `get_organization`."""
    row = await reader.first(_ZONE, {"organization_id": organization_id}, _Zone)
    if row is None:
        raise NotFoundError("No such organization")
    return today_in_zone(row.timezone)


async def update_organization(
    session: AsyncSession, org: Organization, data: OrganizationPatch
) -> Organization:
    if data.timezone is not UNSET:
        try:
            zoneinfo.ZoneInfo(data.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValidationError(
                errors=[FieldError("timezone", "is not an IANA time zone, e.g. Europe/Berlin")]
            ) from None
        org.timezone = data.timezone
    if data.name is not UNSET:
        org.name = data.name.strip()
    if data.currency is not UNSET:
        org.currency = data.currency
    await session.flush()
    return org


MemberRow = tuple[User, Membership]


async def list_members(session: AsyncSession, organization_id: uuid.UUID) -> list[MemberRow]:
    stmt = (
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organization_id == organization_id)
        .order_by(User.created_at, User.id)
    )
    return [(u, m) for u, m in (await session.execute(stmt)).all()]


async def get_member(
    session: AsyncSession, organization_id: uuid.UUID, user_id: uuid.UUID
) -> MemberRow:
    stmt = (
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organization_id == organization_id, User.id == user_id)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFoundError(f"No member with id {user_id}")
    return row[0], row[1]


class _EmailTaken(NamedTuple):
    taken: bool


_EMAIL_TAKEN = select(exists().where(User.email == bindparam("email")).label("taken"))


def _email_taken() -> ConflictError:
    return ConflictError(
        "An account with this email already exists",
        errors=[FieldError("email", "is already registered")],
    )


async def add_member(
    session: AsyncSession, reader: Reader, organization_id: uuid.UUID, data: MemberIn
) -> MemberRow:
    """A new user and their membership. The email is checked through `reader` (no lock: an
    account with it committed meanwhile fails the unique email index at the commit, which
    answers the same 409 as this check, with nothing written); both rows are added with
    `add_new`, written together with the commit's statement (haven.uow.recorder)."""
    email = normalize_email(data.email)
    (found,) = await reader.rows(_EMAIL_TAKEN, {"email": email}, _EmailTaken)  # no FROM
    if found.taken:
        raise _email_taken()
    user = User(
        email=email, name=data.name.strip(), password_hash=await hash_password(data.password)
    )
    add_new(session, user, taken=_email_taken())  # fills in its id, for the membership
    membership = Membership(organization_id=organization_id, user_id=user.id, role=data.role)
    add_new(session, membership)
    return user, membership


async def _owner_count(session: AsyncSession, organization_id: uuid.UUID) -> int:
    stmt = select(func.count()).where(
        Membership.organization_id == organization_id, Membership.role == "owner"
    )
    return int((await session.execute(stmt)).scalar_one())


async def update_member(
    session: AsyncSession, organization_id: uuid.UUID, row: MemberRow, data: MemberPatch
) -> MemberRow:
    user, membership = row
    if data.role is not UNSET and membership.role == RESIDENT:
        # A resident's access follows their tenancy (haven.residents); never a staff role.
        raise ConflictError("A resident cannot be given a staff role; invite staff as members")
    if data.role is not UNSET and data.role != membership.role:
        if membership.role == "owner" and await _owner_count(session, organization_id) <= 1:
            raise ConflictError("An organization needs at least one owner")
        membership.role = data.role
        # A member's version is the user row's: touch it so a role change moves it too.
        user.updated_at = utcnow()
    if data.name is not UNSET:
        user.name = data.name.strip()
    if data.password is not UNSET:
        await set_password(session, user, data.password)
    await session.flush()
    return user, membership


async def reset_password(session: AsyncSession, row: MemberRow, password: str) -> MemberRow:
    """An owner sets a member's password: every session the member has ends."""
    await set_password(session, row[0], password)
    return row


async def remove_member(session: AsyncSession, organization_id: uuid.UUID, row: MemberRow) -> None:
    user, membership = row
    if membership.role == "owner" and await _owner_count(session, organization_id) <= 1:
        raise ConflictError("An organization needs at least one owner")
    await session.delete(user)
    await session.flush()
