"""dashagg: lease_balances and payments_by_day, the ledger's totals kept with its writes

Revision ID: 0011_dashagg
Revises: 0010_residents
Create Date: 2026-11-28

The dashboard adds these up instead of reading every ledger entry (issue 19). They are
backfilled here from the existing ledger by the same function the write path uses
(haven.ledger.totals.backfill: haven.ledger.aging's pure functions, leases in batches).
Also an index for the rent roll: rent changes by organization and lease.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_dashagg"
down_revision = "0010_residents"
branch_labels = None
depends_on = None


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
    op.create_index("ix_lease_balances_org", "lease_balances", ["organization_id"], unique=False)
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
    op.create_index(
        "ix_rent_changes_org_lease",
        "rent_changes",
        ["organization_id", "lease_id", "effective_date"],
        unique=False,
    )
    from haven.ledger.totals import backfill

    backfill(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_rent_changes_org_lease", table_name="rent_changes")
    op.drop_table("payments_by_day")
    op.drop_index("ix_lease_balances_org", table_name="lease_balances")
    op.drop_table("lease_balances")
