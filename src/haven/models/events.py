"""The event outbox, its per-organization counter, and webhook subscriptions and deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from haven.db.base import Base, IdMixin, TimestampsMixin, UTCDateTime, VersionedMixin, utcnow


class Event(IdMixin, Base):
    """One domain change, written by haven.uow.recorder in the transaction of the change.

    `position` is the event's place in its organization's feed: gap-free and in
    commit order (see docs/events.md for why).
    """

    __tablename__ = "events"
    __audit__ = False
    __table_args__ = (
        UniqueConstraint("organization_id", "position"),
        Index("ix_events_occurred_at", "occurred_at"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventCounter(Base):
    """The last position handed out per organization; its row lock orders the feed."""

    __tablename__ = "event_counters"
    __audit__ = False

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    # Every event at or below this position has been purged (retention).
    purged_through: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookSubscription(IdMixin, TimestampsMixin, VersionedMixin, Base):
    """Where to send an organization's events, and how far delivery has got.

    The delivery columns are written by haven.webhooks.worker with plain UPDATEs
    (no ORM flush), so they bump no version and leave no audit or event rows.
    """

    __tablename__ = "webhook_subscriptions"
    __events__ = False  # changing a subscription is audited, not fed back to the subscribers
    __table_args__ = (
        Index("ix_webhook_subscriptions_org_created", "organization_id", "created_at", "id"),
        Index("ix_webhook_subscriptions_due", "next_attempt_at"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    url: Mapped[str] = mapped_column(String(2048))
    types: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(128))
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Named so the audit trail shows a rotation (it hides every column named like a secret).
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # active | failing | paused
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Delivery state (worker-owned).
    delivered_position: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    claim_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookDelivery(IdMixin, Base):
    """One attempt to deliver an event to a subscription, or a queued redelivery.

    status: succeeded | failed | pending (a redelivery waiting for a worker) | sending.
    """

    __tablename__ = "webhook_deliveries"
    __audit__ = False
    __table_args__ = (
        Index("ix_webhook_deliveries_sub_at", "subscription_id", "at", "id"),
        Index("ix_webhook_deliveries_status", "status"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_type: Mapped[str] = mapped_column(String(64))
    event_position: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    redelivery: Mapped[bool] = mapped_column(default=False)
    response_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    instance_id: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
