"""Properties and their units."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from haven.db.base import Base, IdMixin, TimestampsMixin, VersionedMixin

PROPERTY_TYPES = ("residential", "commercial", "mixed")
UNIT_STATUSES = ("vacant", "occupied", "unavailable")


class Property(IdMixin, TimestampsMixin, VersionedMixin, Base):
    __tablename__ = "properties"
    __table_args__ = (
        Index("ix_properties_org_name", "organization_id", "name", "id"),
        Index("ix_properties_org_created", "organization_id", "created_at", "id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))
    address_line1: Mapped[str] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    year_built: Mapped[int | None] = mapped_column(Integer)
    # Maintained by the units service in the same transaction as each unit write.
    unit_count: Mapped[int] = mapped_column(Integer, default=0)
    # The manager's fee (haven.models.owner.MANAGEMENT_FEE_KINDS): percent = basis points of
    # the rent collected, flat = minor units per month; None = no fee.
    management_fee_kind: Mapped[str | None] = mapped_column(String(16))
    management_fee_amount: Mapped[int | None] = mapped_column(BigInteger)


class Unit(IdMixin, TimestampsMixin, VersionedMixin, Base):
    __tablename__ = "units"
    __table_args__ = (
        UniqueConstraint("property_id", "label"),
        Index("ix_units_org_property_label", "organization_id", "property_id", "label", "id"),
        Index("ix_units_org_label", "organization_id", "label", "id"),
        Index("ix_units_org_created", "organization_id", "created_at", "id"),
        Index("ix_units_org_market_rent", "organization_id", "market_rent", "id"),
        # The dashboard's units and occupied units: one index-only range.
        Index("ix_units_org_status", "organization_id", "status"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(50))
    bedrooms: Mapped[int] = mapped_column(Integer, default=0)
    bathrooms: Mapped[Decimal] = mapped_column(Numeric(4, 1), default=Decimal(1))
    area_sqft: Mapped[int | None] = mapped_column(Integer)
    # Minor units; BIGINT because Money allows amounts above 2**31 (PostgreSQL INTEGER is 32-bit).
    market_rent: Mapped[int] = mapped_column(BigInteger, default=0)
    # vacant/unavailable are set by people; occupied follows from an active lease.
    status: Mapped[str] = mapped_column(String(16), default="vacant")
