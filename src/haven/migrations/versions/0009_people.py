"""owners, ownership shares, payouts, management fees, vendors, work orders, bills

Revision ID: 0009_people
Revises: 0008_apikeys
Create Date: 2026-11-27

The people around a property (issue 16): rental owners and their effective-dated
shares of properties, payouts to them, each property's management fee, vendors, the
work orders maintenance requests spawn, and vendor bills with their payments.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_people"
down_revision = "0008_apikeys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owners",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("address", sa.String(length=500), nullable=True),
        sa.Column("payout_reference", sa.String(length=200), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_owners_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_owners")),
    )
    with op.batch_alter_table("owners", schema=None) as batch_op:
        batch_op.create_index(
            "ix_owners_org_created", ["organization_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_owners_org_name", ["organization_id", "name", "id"], unique=False)

    op.create_table(
        "vendors",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("trade", sa.String(length=32), nullable=False),
        sa.Column("contact_name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("insurance_expires_on", sa.Date(), nullable=True),
        sa.Column("payout_reference", sa.String(length=200), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_vendors_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vendors")),
    )
    with op.batch_alter_table("vendors", schema=None) as batch_op:
        batch_op.create_index(
            "ix_vendors_org_created", ["organization_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_vendors_org_name", ["organization_id", "name", "id"], unique=False
        )

    op.create_table(
        "owner_payouts",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("reverses_id", sa.Uuid(), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_owner_payouts_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_owner_payouts_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["owners.id"],
            name=op.f("fk_owner_payouts_owner_id_owners"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["owner_payouts.id"],
            name=op.f("fk_owner_payouts_reverses_id_owner_payouts"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_owner_payouts")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_owner_payouts_reverses_id")),
    )
    with op.batch_alter_table("owner_payouts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_owner_payouts_owner_date", ["owner_id", "paid_on", "id"], unique=False
        )

    op.create_table(
        "property_ownerships",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("property_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("basis_points", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_property_ownerships_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["owners.id"],
            name=op.f("fk_property_ownerships_owner_id_owners"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_property_ownerships_property_id_properties"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_property_ownerships")),
        sa.UniqueConstraint(
            "property_id",
            "effective_from",
            "owner_id",
            name=op.f("uq_property_ownerships_property_id_effective_from_owner_id"),
        ),
    )
    with op.batch_alter_table("property_ownerships", schema=None) as batch_op:
        batch_op.create_index(
            "ix_property_ownerships_org_property", ["organization_id", "property_id"], unique=False
        )
        batch_op.create_index(
            "ix_property_ownerships_owner", ["owner_id", "effective_from"], unique=False
        )

    op.create_table(
        "work_orders",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("property_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=True),
        sa.Column("vendor_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("estimate", sa.BigInteger(), nullable=True),
        sa.Column("scheduled_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scheduled_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_work_orders_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_work_orders_property_id_properties"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["maintenance_requests.id"],
            name=op.f("fk_work_orders_request_id_maintenance_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_work_orders_unit_id_units"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"],
            ["vendors.id"],
            name=op.f("fk_work_orders_vendor_id_vendors"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_orders")),
    )
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_work_orders_org_created", ["organization_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_work_orders_request", ["request_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_work_orders_vendor", ["vendor_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "bills",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("vendor_id", sa.Uuid(), nullable=False),
        sa.Column("property_id", sa.Uuid(), nullable=False),
        sa.Column("work_order_id", sa.Uuid(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount_paid", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_bills_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_bills_property_id_properties"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"],
            ["vendors.id"],
            name=op.f("fk_bills_vendor_id_vendors"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["work_order_id"],
            ["work_orders.id"],
            name=op.f("fk_bills_work_order_id_work_orders"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bills")),
    )
    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bills_org_created", ["organization_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_bills_org_due", ["organization_id", "due_on", "id"], unique=False)
        batch_op.create_index(
            "ix_bills_property_issued", ["property_id", "issued_on"], unique=False
        )
        batch_op.create_index("ix_bills_vendor", ["vendor_id", "issued_on"], unique=False)
        batch_op.create_index("ix_bills_work_order", ["work_order_id"], unique=False)

    op.create_table(
        "bill_payments",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.Column("property_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("reverses_id", sa.Uuid(), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bill_id"],
            ["bills.id"],
            name=op.f("fk_bill_payments_bill_id_bills"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_bill_payments_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_bill_payments_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_bill_payments_property_id_properties"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["bill_payments.id"],
            name=op.f("fk_bill_payments_reverses_id_bill_payments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_payments")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_bill_payments_reverses_id")),
    )
    with op.batch_alter_table("bill_payments", schema=None) as batch_op:
        batch_op.create_index("ix_bill_payments_bill", ["bill_id", "paid_on", "id"], unique=False)
        batch_op.create_index(
            "ix_bill_payments_org_property_paid",
            ["organization_id", "property_id", "paid_on"],
            unique=False,
        )

    with op.batch_alter_table("properties", schema=None) as batch_op:
        batch_op.add_column(sa.Column("management_fee_kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("management_fee_amount", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("properties", schema=None) as batch_op:
        batch_op.drop_column("management_fee_amount")
        batch_op.drop_column("management_fee_kind")

    with op.batch_alter_table("bill_payments", schema=None) as batch_op:
        batch_op.drop_index("ix_bill_payments_org_property_paid")
        batch_op.drop_index("ix_bill_payments_bill")

    op.drop_table("bill_payments")
    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.drop_index("ix_bills_work_order")
        batch_op.drop_index("ix_bills_vendor")
        batch_op.drop_index("ix_bills_property_issued")
        batch_op.drop_index("ix_bills_org_due")
        batch_op.drop_index("ix_bills_org_created")

    op.drop_table("bills")
    with op.batch_alter_table("work_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_work_orders_vendor")
        batch_op.drop_index("ix_work_orders_request")
        batch_op.drop_index("ix_work_orders_org_created")

    op.drop_table("work_orders")
    with op.batch_alter_table("property_ownerships", schema=None) as batch_op:
        batch_op.drop_index("ix_property_ownerships_owner")
        batch_op.drop_index("ix_property_ownerships_org_property")

    op.drop_table("property_ownerships")
    with op.batch_alter_table("owner_payouts", schema=None) as batch_op:
        batch_op.drop_index("ix_owner_payouts_owner_date")

    op.drop_table("owner_payouts")
    with op.batch_alter_table("vendors", schema=None) as batch_op:
        batch_op.drop_index("ix_vendors_org_name")
        batch_op.drop_index("ix_vendors_org_created")

    op.drop_table("vendors")
    with op.batch_alter_table("owners", schema=None) as batch_op:
        batch_op.drop_index("ix_owners_org_name")
        batch_op.drop_index("ix_owners_org_created")

    op.drop_table("owners")
