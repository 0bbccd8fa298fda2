"""Vendors, the work orders they are given, and the bills they send."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from haven.db.base import Base, IdMixin, TimestampsMixin, UTCDateTime, VersionedMixin, utcnow

TRADES = (
    "general",
    "plumbing",
    "electrical",
    "hvac",
    "appliance",
    "roofing",
    "landscaping",
    "cleaning",
    "pest_control",
    "painting",
    "locksmith",
    "other",
)
WORK_ORDER_STATUSES = ("requested", "scheduled", "done", "invoiced", "cancelled")
BILL_STATUSES = ("open", "paid", "void")
BILL_PAYMENT_METHODS = ("check", "bank_transfer", "card", "cash", "other")


class Vendor(IdMixin, TimestampsMixin, VersionedMixin, Base):
    """A business that does work on properties. A vendor whose insurance has lapsed (or was
    never recorded) cannot be assigned work."""

    __tablename__ = "vendors"
    __table_args__ = (
        Index("ix_vendors_org_name", "organization_id", "name", "id"),
        Index("ix_vendors_org_created", "organization_id", "created_at", "id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    trade: Mapped[str] = mapped_column(String(32))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    insurance_expires_on: Mapped[date | None] = mapped_column(Date)
    payout_reference: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)


class WorkOrder(IdMixin, TimestampsMixin, VersionedMixin, Base):
    """Work a maintenance request spawned, assigned to a vendor."""

    __tablename__ = "work_orders"
    __table_args__ = (
        Index("ix_work_orders_org_created", "organization_id", "created_at", "id"),
        Index("ix_work_orders_request", "request_id", "created_at", "id"),
        Index("ix_work_orders_vendor", "vendor_id", "created_at", "id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("maintenance_requests.id", ondelete="CASCADE")
    )
    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("vendors.id", ondelete="RESTRICT")
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    # Changed only through the work order's transitions.
    status: Mapped[str] = mapped_column(String(16), default="requested")
    estimate: Mapped[int | None] = mapped_column(BigInteger)
    scheduled_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scheduled_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Bill(IdMixin, TimestampsMixin, VersionedMixin, Base):
    """A vendor's bill: an expense of a property, open until paid in full (or voided)."""

    __tablename__ = "bills"
    __table_args__ = (
        Index("ix_bills_org_created", "organization_id", "created_at", "id"),
        Index("ix_bills_org_due", "organization_id", "due_on", "id"),
        Index("ix_bills_property_issued", "property_id", "issued_on"),
        Index("ix_bills_vendor", "vendor_id", "issued_on"),
        Index("ix_bills_work_order", "work_order_id"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    vendor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vendors.id", ondelete="RESTRICT"))
    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="RESTRICT"))
    work_order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("work_orders.id", ondelete="SET NULL")
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    issued_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    description: Mapped[str | None] = mapped_column(String(500))
    # The vendor's invoice number.
    reference: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open")
    # Maintained with every payment in the same transaction: the sum of its payments.
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)


class BillPayment(IdMixin, Base):
    """A payment of a bill: the movement of money out. Append-only, like the rent ledger;
    a mistake is undone by a payment that names it in `reverses_id` with the negated amount."""

    __tablename__ = "bill_payments"
    __table_args__ = (
        Index("ix_bill_payments_bill", "bill_id", "paid_on", "id"),
        Index("ix_bill_payments_org_property_paid", "organization_id", "property_id", "paid_on"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    bill_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bills.id", ondelete="RESTRICT"))
    # Copied from the bill so expense reports need no join.
    property_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("properties.id", ondelete="RESTRICT"))
    amount: Mapped[int] = mapped_column(BigInteger)
    paid_on: Mapped[date] = mapped_column(Date)
    method: Mapped[str | None] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(200))
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("bill_payments.id", ondelete="RESTRICT"), unique=True
    )
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
