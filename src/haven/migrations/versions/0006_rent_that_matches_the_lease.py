"""rent changes, recurring charges, renewals, deposits, scheduler runs, system actors

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

Issue 14: billing follows the lease. Rent changes and recurring charges are rows
of their own; a lease can renew another, charge its deposit on activation and
escalate its rent; the scheduler remembers the last day each job completed; an
audit event can name a system actor (the billing job) instead of a user.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("charge_deposit", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("escalation_basis_points", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("escalation_every_months", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("renews_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_leases_renews_id_leases"),
            "leases",
            ["renews_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.alter_column("charge_deposit", server_default=None)

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("system_actor", sa.String(length=64), nullable=True))

    op.create_table(
        "rent_changes",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("lease_id", sa.Uuid(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("rent", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lease_id"],
            ["leases.id"],
            name=op.f("fk_rent_changes_lease_id_leases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_rent_changes_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rent_changes")),
        sa.UniqueConstraint(
            "lease_id", "effective_date", name=op.f("uq_rent_changes_lease_id_effective_date")
        ),
    )
    op.create_table(
        "recurring_charges",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("lease_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lease_id"],
            ["leases.id"],
            name=op.f("fk_recurring_charges_lease_id_leases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_recurring_charges_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recurring_charges")),
    )
    with op.batch_alter_table("recurring_charges", schema=None) as batch_op:
        batch_op.create_index(
            "ix_recurring_charges_lease", ["lease_id", "start_date"], unique=False
        )
    op.create_table(
        "job_runs",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("last_date", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_runs")),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
    with op.batch_alter_table("recurring_charges", schema=None) as batch_op:
        batch_op.drop_index("ix_recurring_charges_lease")
    op.drop_table("recurring_charges")
    op.drop_table("rent_changes")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("system_actor")
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_leases_renews_id_leases"), type_="foreignkey")
        batch_op.drop_column("renews_id")
        batch_op.drop_column("escalation_every_months")
        batch_op.drop_column("escalation_basis_points")
        batch_op.drop_column("charge_deposit")
