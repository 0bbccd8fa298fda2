"""Tenants: the people who rent units."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from haven.db.base import Base, IdMixin, TimestampsMixin, VersionedMixin


class Tenant(IdMixin, TimestampsMixin, VersionedMixin, Base):
    __tablename__ = "tenants"
    __table_args__ = (
        Index("ix_tenants_org_last_name", "organization_id", "last_name", "id"),
        Index("ix_tenants_org_created", "organization_id", "created_at", "id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    notes: Mapped[str | None] = mapped_column(Text)
