"""API keys: credentials for integrations, bound to an organization and a role."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from haven.db.base import Base, IdMixin, UTCDateTime, utcnow


class ApiKey(IdMixin, Base):
    """Only sha256(key) is stored; `prefix` is the part shown in lists (docs/api-keys.md).

    `last_used_at` is written at most once a minute per key, outside any request's
    transaction, so it never shows up in the audit trail."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_org_created", "organization_id", "created_at", "id"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # No foreign key: the key outlives nothing it should not, and the record of who made it
    # outlives the account (a removed creator's keys are refused: haven.auth.apikeys.verify).
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
