"""Organizations and the people who sign in to them."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from haven.db.base import Base, IdMixin, TimestampsMixin, VersionedMixin

ROLES = ("owner", "manager", "staff", "viewer")  # staff roles, most powerful first
# A tenant who signs in to see what is theirs (haven.auth.residents); never a staff role.
RESIDENT = "resident"
MEMBER_ROLES = (*ROLES, RESIDENT)


class Organization(IdMixin, TimestampsMixin, VersionedMixin, Base):
    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")


class User(IdMixin, TimestampsMixin, VersionedMixin, Base):
    """A person who can sign in. Emails are stored lower-cased and are unique."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    # Bumped by every password change: a session stamped with an older epoch is revoked.
    credential_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Membership(IdMixin, TimestampsMixin, VersionedMixin, Base):
    """A user's role in an organization. A user belongs to exactly one organization."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    # Set exactly for role "resident": the tenant whose leases the member may see.
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
