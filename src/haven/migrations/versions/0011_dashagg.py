"""dashagg: lease_balances and payments_by_day, the ledger's totals kept with its writes

Revision ID: 0011_dashagg
Revises: 0010_residents
Create Date: 2026-11-28

The dashboard adds these up instead of reading every ledger entry (issue 19). They are
backfilled here from the existing ledger by the same function the write path uses
(haven.ledger.totals.backfill: haven.ledger.aging's pure functions, leases in batches).
Also the indexes the dashboard's other aggregates run on (rent roll, expiring leases, units).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_dashagg"
down_revision = "0010_residents"
branch_labels = None
depends_on = None


# The dashboard's aggregates over indexes (index-only or a narrow range each).
INDEXES = (
    (
        "ix_rent_changes_org_lease",
        "rent_changes",
        ["organization_id", "lease_id", "effective_date"],
    ),
    ("ix_leases_org_status_rent", "leases", ["organization_id", "status", "rent"]),
    ("ix_leases_org_status_end", "leases", ["organization_id", "status", "end_date"]),
    ("ix_units_org_status", "units", ["organization_id", "status"]),
)


def upgrade() -> None:
    op.create_table(
        "lease_balances",
        sa.Column("lease_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("deposit_held", sa.BigInteger(), nullable=False),
        sa.Column("oldest_unpaid_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["lease_id"],
            ["leases.id"],
            name=op.f("fk_lease_balances_lease_id_leases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_lease_balances_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("lease_id", name=op.f("pk_lease_balances")),
    )
    for name, column in (
        ("ix_lease_balances_org_balance", "balance"),
        ("ix_lease_balances_org_deposit", "deposit_held"),
        ("ix_lease_balances_org_unpaid", "oldest_unpaid_on"),
    ):
        op.create_index(name, "lease_balances", ["organization_id", column], unique=False)
    op.create_table(
        "payments_by_day",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("collected", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_payments_by_day_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "on_date", name=op.f("pk_payments_by_day")),
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    from haven.ledger.totals import backfill

    backfill(op.get_bind())


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("payments_by_day")
    op.drop_table("lease_balances")
