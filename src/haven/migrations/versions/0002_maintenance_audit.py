"""maintenance requests, comments, audit events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("instance_id", sa.String(length=128), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_audit_events_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_org_actor_at",
            ["organization_id", "actor_id", "at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_audit_events_org_at", ["organization_id", "at", "id"], unique=False
        )
        # entityId alone is the common filter (ids are unique across types); entityType alone too.
        batch_op.create_index(
            "ix_audit_events_org_entity_at",
            ["organization_id", "entity_id", "at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_audit_events_org_type_at",
            ["organization_id", "entity_type", "at", "id"],
            unique=False,
        )

    op.create_table(
        "maintenance_requests",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("property_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("cost_estimate", sa.BigInteger(), nullable=True),
        sa.Column("cost_actual", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["users.id"],
            name=op.f("fk_maintenance_requests_assignee_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_maintenance_requests_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_maintenance_requests_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_maintenance_requests_property_id_properties"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_maintenance_requests_unit_id_units"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_requests")),
    )
    with op.batch_alter_table("maintenance_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_maintenance_requests_org_assignee_created",
            ["organization_id", "assignee_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_maintenance_requests_org_created",
            ["organization_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_maintenance_requests_org_priority_created",
            ["organization_id", "priority", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_maintenance_requests_org_property_created",
            ["organization_id", "property_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_maintenance_requests_org_status_created",
            ["organization_id", "status", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_maintenance_requests_org_title", ["organization_id", "title", "id"], unique=False
        )
        batch_op.create_index(
            "ix_maintenance_requests_org_updated",
            ["organization_id", "updated_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_maintenance_requests_unit_created", ["unit_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "maintenance_comments",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_maintenance_comments_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_maintenance_comments_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["maintenance_requests.id"],
            name=op.f("fk_maintenance_comments_request_id_maintenance_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_comments")),
    )
    with op.batch_alter_table("maintenance_comments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_maintenance_comments_request_created",
            ["request_id", "created_at", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("maintenance_comments", schema=None) as batch_op:
        batch_op.drop_index("ix_maintenance_comments_request_created")

    op.drop_table("maintenance_comments")
    with op.batch_alter_table("maintenance_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_maintenance_requests_unit_created")
        batch_op.drop_index("ix_maintenance_requests_org_updated")
        batch_op.drop_index("ix_maintenance_requests_org_title")
        batch_op.drop_index("ix_maintenance_requests_org_status_created")
        batch_op.drop_index("ix_maintenance_requests_org_property_created")
        batch_op.drop_index("ix_maintenance_requests_org_priority_created")
        batch_op.drop_index("ix_maintenance_requests_org_created")
        batch_op.drop_index("ix_maintenance_requests_org_assignee_created")

    op.drop_table("maintenance_requests")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_org_type_at")
        batch_op.drop_index("ix_audit_events_org_entity_at")
        batch_op.drop_index("ix_audit_events_org_at")
        batch_op.drop_index("ix_audit_events_org_actor_at")

    op.drop_table("audit_events")
