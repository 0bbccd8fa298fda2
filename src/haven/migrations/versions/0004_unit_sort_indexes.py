"""indexes for the unit list's createdAt and marketRent orders

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

GET /api/v1/units sorts by label, createdAt or marketRent within an organization;
only label had an index, so the other two orders read and sorted every unit of the
organization for each page.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_units_org_created", "units", ["organization_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_units_org_market_rent", "units", ["organization_id", "market_rent", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_units_org_market_rent", table_name="units")
    op.drop_index("ix_units_org_created", table_name="units")
