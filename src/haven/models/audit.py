"""Audit events: one row per created, changed or deleted organization-owned row."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from haven.db.base import Base, IdMixin, UTCDateTime, utcnow


class AuditEvent(IdMixin, Base):
    """Append-only; written by haven.uow.recorder in the transaction of the change."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_org_at", "organization_id", "at", "id"),
        Index("ix_audit_events_org_entity_at", "organization_id", "entity_id", "at", "id"),
        Index("ix_audit_events_org_type_at", "organization_id", "entity_type", "at", "id"),
        Index("ix_audit_events_org_actor_at", "organization_id", "actor_id", "at", "id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # No foreign key: the record of who did something outlives the account.
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # A job acting on its own (e.g. "system:billing"); actor_id is then null.
    system_actor: Mapped[str | None] = mapped_column(String(64))
    # The API key a write came through (actor_id is then the key's creator); no foreign key.
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    instance_id: Mapped[str | None] = mapped_column(String(128))
    request_id: Mapped[str | None] = mapped_column(String(128))
    changes: Mapped[list[str]] = mapped_column(JSON, default=list)
