"""Invitations that let a tenant set a password and sign in as a resident."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from haven.db.base import Base, IdMixin, TimestampsMixin, UTCDateTime, VersionedMixin


class TenantInvitation(IdMixin, TimestampsMixin, VersionedMixin, Base):
    """One invitation; its token is shown once and only its sha256 is kept.

    Open while none of accepted_at, revoked_at is set and expires_at is ahead; a newer
    invitation of the same tenant revokes the open ones (superseded)."""

    __tablename__ = "tenant_invitations"
    __table_args__ = (Index("ix_tenant_invitations_tenant", "tenant_id", "created_at"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
