"""Rental owners, the shares in which they own properties, and what is paid out to them."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from haven.db.base import Base, IdMixin, TimestampsMixin, UTCDateTime, VersionedMixin, utcnow

OWNER_KINDS = ("person", "company")
# A property's management fee: a percent of the rent collected (basis points), or a flat
# amount per month (minor units).
MANAGEMENT_FEE_KINDS = ("percent", "flat")


class Owner(IdMixin, TimestampsMixin, VersionedMixin, Base):
    """A rental owner: a person or a company that owns shares of properties.

    Payout details are opaque references to the payment provider's records (a bank account
    token, a payee id); Haven never stores account numbers."""

    __tablename__ = "owners"
    __table_args__ = (
        Index("ix_owners_org_name", "organization_id", "name", "id"),
        Index("ix_owners_org_created", "organization_id", "created_at", "id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(500))
    payout_reference: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)


class PropertyOwnership(IdMixin, Base):
    """One owner's share of a property from `effective_from` on.

    The rows with the same (property, effective_from) form one ownership set whose shares
    sum to 10,000 basis points; it holds until the next set's `effective_from`."""

    __tablename__ = "property_ownerships"
    __table_args__ = (
        UniqueConstraint("property_id", "effective_from", "owner_id"),
        Index("ix_property_ownerships_owner", "owner_id", "effective_from"),
        Index("ix_property_ownerships_org_property", "organization_id", "property_id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("owners.id", ondelete="RESTRICT"))
    effective_from: Mapped[date] = mapped_column(Date)
    basis_points: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OwnerPayout(IdMixin, Base):
    """Money paid out to an owner (a distribution). Append-only; a mistake is reversed by
    a payout that names it in `reverses_id` with the negated amount."""

    __tablename__ = "owner_payouts"
    __table_args__ = (
        Index("ix_owner_payouts_owner_date", "owner_id", "paid_on", "id"),
        UniqueConstraint("reverses_id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("owners.id", ondelete="RESTRICT"))
    amount: Mapped[int] = mapped_column(BigInteger)
    paid_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str | None] = mapped_column(String(200))
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("owner_payouts.id", ondelete="RESTRICT")
    )
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
