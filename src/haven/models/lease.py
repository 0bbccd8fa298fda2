"""Leases, the tenants on them, the append-only rent ledger, and idempotency records."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from haven.db.base import Base, IdMixin, TimestampsMixin, UTCDateTime, VersionedMixin, utcnow

LEASE_STATUSES = ("draft", "active", "ended", "terminated")
LATE_FEE_KINDS = ("flat", "percent")
ENTRY_TYPES = ("charge", "payment", "credit", "reversal", "refund")
CHARGE_KINDS = ("rent", "deposit", "late_fee", "utility", "other")
# Kinds of recurring charges (billed monthly with the rent, prorated the same way).
RECURRING_KINDS = ("parking", "pet", "utility", "storage", "other")
PAYMENT_METHODS = ("cash", "check", "bank_transfer", "card", "other")


class Lease(IdMixin, TimestampsMixin, VersionedMixin, Base):
    """Who rents a unit, from when to when (end_date None = month-to-month), on which terms."""

    __tablename__ = "leases"
    __table_args__ = (
        Index("ix_leases_org_created", "organization_id", "created_at", "id"),
        Index("ix_leases_org_start", "organization_id", "start_date", "id"),
        Index("ix_leases_unit_status", "unit_id", "status"),
        Index("ix_leases_org_status", "organization_id", "status"),
        # The dashboard: the rent roll (index-only) and the leases expiring (a range).
        Index("ix_leases_org_status_rent", "organization_id", "status", "rent"),
        Index("ix_leases_org_status_end", "organization_id", "status", "end_date"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    rent: Mapped[int] = mapped_column(BigInteger)
    deposit: Mapped[int] = mapped_column(BigInteger, default=0)
    due_day: Mapped[int] = mapped_column(Integer, default=1)
    grace_days: Mapped[int] = mapped_column(Integer, default=0)
    # flat: minor units; percent: basis points of the rent (500 = 5 %).
    late_fee_kind: Mapped[str | None] = mapped_column(String(16))
    late_fee_amount: Mapped[int | None] = mapped_column(BigInteger)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    terminated_on: Mapped[date | None] = mapped_column(Date)
    # Post the deposit as a charge when the lease is activated.
    charge_deposit: Mapped[bool] = mapped_column(Boolean, default=False)
    # Rent rises by these basis points every so many months (generates rent changes).
    escalation_basis_points: Mapped[int | None] = mapped_column(Integer)
    escalation_every_months: Mapped[int | None] = mapped_column(Integer)
    # The lease this one renews: it activates when that one ends.
    renews_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leases.id", ondelete="SET NULL")
    )


class RentChange(IdMixin, Base):
    """The lease's rent from `effective_date` on (until the next change)."""

    __tablename__ = "rent_changes"
    __table_args__ = (
        UniqueConstraint("lease_id", "effective_date"),
        # The dashboard's rent roll: an organization's changes effective by a date, per lease.
        Index("ix_rent_changes_org_lease", "organization_id", "lease_id", "effective_date"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    lease_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leases.id", ondelete="CASCADE"))
    effective_date: Mapped[date] = mapped_column(Date)
    rent: Mapped[int] = mapped_column(BigInteger)
    # manual (POST rent-changes) or escalation (generated from the lease's escalation).
    source: Mapped[str] = mapped_column(String(16), default="manual")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecurringCharge(IdMixin, VersionedMixin, Base):
    """A monthly charge besides the rent (parking, pet, utilities), from start to end."""

    __tablename__ = "recurring_charges"
    __table_args__ = (Index("ix_recurring_charges_lease", "lease_id", "start_date"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    lease_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leases.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobRun(Base):
    """The last day a scheduled job completed, per job and scope (an organization or all)."""

    __tablename__ = "job_runs"
    __audit__ = False  # bookkeeping of the scheduler, not a change anyone made

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_date: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LeaseTenant(Base):
    """A tenant on a lease (a lease has one or more)."""

    __tablename__ = "lease_tenants"
    __table_args__ = (Index("ix_lease_tenants_tenant", "tenant_id"),)

    lease_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leases.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)


class LedgerEntry(IdMixin, Base):
    """One line of a lease's ledger. Never updated or deleted: corrections are reversals.

    `amount` is signed, as it moves the balance: charges positive, payments and
    credits negative, a reversal the negation of the entry it reverses.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_lease_created", "lease_id", "created_at", "id"),
        Index("ix_ledger_entries_org_type_date", "organization_id", "type", "date"),
        # An entry can be reversed once: a second reversal of it violates this.
        UniqueConstraint("reverses_id"),
        # Billing posts each (lease, kind, period) once, whichever instance runs it.
        UniqueConstraint("billing_key"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    lease_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leases.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str | None] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    # Due date of a charge, receipt date of a payment, posting date otherwise.
    date: Mapped[date] = mapped_column(Date)
    description: Mapped[str | None] = mapped_column(String(500))
    method: Mapped[str | None] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(200))
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_entries.id", ondelete="CASCADE")
    )
    billing_key: Mapped[str | None] = mapped_column(String(120))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LeaseBalance(Base):
    """A lease's ledger summed up, rewritten with every ledger write (haven.ledger.totals).

    What the dashboard adds up instead of reading every entry: the balance, the deposit
    held, and the due date of the oldest charge the FIFO allocation leaves unpaid (None
    when nothing is unpaid); none of them depends on the date they are read on.
    """

    __tablename__ = "lease_balances"
    __audit__ = False  # derived from the ledger, which is audited
    # The dashboard sums each over a range: the leases owing, holding a deposit, overdue.
    __table_args__ = (
        Index("ix_lease_balances_org_balance", "organization_id", "balance"),
        Index("ix_lease_balances_org_deposit", "organization_id", "deposit_held"),
        Index("ix_lease_balances_org_unpaid", "organization_id", "oldest_unpaid_on"),
    )

    lease_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leases.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    deposit_held: Mapped[int] = mapped_column(BigInteger, default=0)
    oldest_unpaid_on: Mapped[date | None] = mapped_column(Date)


class PaymentsByDay(Base):
    """What an organization collected per receipt date: its payments not reversed
    (a reversal takes the payment back out of the payment's own date). Kept with the
    ledger writes (haven.ledger.totals); the dashboard sums a month of it."""

    __tablename__ = "payments_by_day"
    __audit__ = False  # derived from the ledger, which is audited

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    on_date: Mapped[date] = mapped_column(Date, primary_key=True)
    collected: Mapped[int] = mapped_column(BigInteger, default=0)


class IdempotencyRecord(IdMixin, Base):
    """A POST's stored response, written in the same transaction as the POST's write."""

    __tablename__ = "idempotency_records"
    __audit__ = False  # bookkeeping of the request path, not a change anyone made
    __table_args__ = (
        UniqueConstraint("scope_hash"),
        Index("ix_idempotency_records_created", "created_at"),
    )

    scope_hash: Mapped[str] = mapped_column(String(64))
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(100))
    headers: Mapped[str] = mapped_column(Text, default="{}")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
