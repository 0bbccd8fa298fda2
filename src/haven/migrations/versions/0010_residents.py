"""residents: memberships.tenant_id, tenant invitations, who opened a maintenance request

Revision ID: 0010_residents
Revises: 0009_people
Create Date: 2026-11-27

A tenant invited by staff signs in with role `resident` (issue 16): the membership names
the tenant; invitations keep only their token's sha256; maintenance requests and comments
name the tenant when a resident wrote them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_residents"
down_revision = "0009_people"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tenant_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_memberships_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_memberships_tenant_id_tenants"),
            "tenants",
            ["tenant_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("maintenance_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by_tenant_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_maintenance_requests_created_by_tenant_id_tenants"),
            "tenants",
            ["created_by_tenant_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("maintenance_comments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("author_tenant_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_maintenance_comments_author_tenant_id_tenants"),
            "tenants",
            ["author_tenant_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "tenant_invitations",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_tenant_invitations_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_invitations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_tenant_invitations_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_tenant_invitations_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_tenant_invitations_token_hash")),
    )
    with op.batch_alter_table("tenant_invitations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tenant_invitations_tenant", ["tenant_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tenant_invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_tenant_invitations_tenant")
    op.drop_table("tenant_invitations")
    with op.batch_alter_table("maintenance_comments", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_maintenance_comments_author_tenant_id_tenants"), type_="foreignkey"
        )
        batch_op.drop_column("author_tenant_id")
    with op.batch_alter_table("maintenance_requests", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_maintenance_requests_created_by_tenant_id_tenants"), type_="foreignkey"
        )
        batch_op.drop_column("created_by_tenant_id")
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_memberships_tenant_id_tenants"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_memberships_tenant_id"))
        batch_op.drop_column("tenant_id")
