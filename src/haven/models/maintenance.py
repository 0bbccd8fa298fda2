"""Maintenance requests and the comments on them."""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from haven.db.base import Base, IdMixin, TimestampsMixin, VersionedMixin

PRIORITIES = ("low", "normal", "high", "emergency")
STATUSES = ("open", "in_progress", "on_hold", "resolved", "closed", "cancelled")


class MaintenanceRequest(IdMixin, TimestampsMixin, VersionedMixin, Base):
    __tablename__ = "maintenance_requests"
    __table_args__ = (
        Index("ix_maintenance_requests_org_created", "organization_id", "created_at", "id"),
        Index("ix_maintenance_requests_org_updated", "organization_id", "updated_at", "id"),
        Index("ix_maintenance_requests_org_title", "organization_id", "title", "id"),
        Index(
            "ix_maintenance_requests_org_status_created",
            "organization_id",
            "status",
            "created_at",
            "id",
        ),
        Index(
            "ix_maintenance_requests_org_priority_created",
            "organization_id",
            "priority",
            "created_at",
            "id",
        ),
        Index(
            "ix_maintenance_requests_org_property_created",
            "organization_id",
            "property_id",
            "created_at",
            "id",
        ),
        Index("ix_maintenance_requests_unit_created", "unit_id", "created_at", "id"),
        Index(
            "ix_maintenance_requests_org_assignee_created",
            "organization_id",
            "assignee_id",
            "created_at",
            "id",
        ),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    # A request outlives the unit it was about: deleting the unit keeps the history.
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    # Changed only through the transition endpoint (see maintenance.service.TRANSITIONS).
    status: Mapped[str] = mapped_column(String(16), default="open")
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # Set when a resident opened it: the tenant they sign in for (kept if their login goes).
    created_by_tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="SET NULL")
    )
    # Minor units; BIGINT because Money allows amounts above 2**31.
    cost_estimate: Mapped[int | None] = mapped_column(BigInteger)
    cost_actual: Mapped[int | None] = mapped_column(BigInteger)


class MaintenanceComment(IdMixin, TimestampsMixin, VersionedMixin, Base):
    __tablename__ = "maintenance_comments"
    __table_args__ = (
        Index("ix_maintenance_comments_request_created", "request_id", "created_at", "id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("maintenance_requests.id", ondelete="CASCADE")
    )
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Set when a resident wrote it: the tenant they sign in for.
    author_tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="SET NULL")
    )
    body: Mapped[str] = mapped_column(Text)
