"""users.credential_epoch: a password change revokes every session stamped before it

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

Each session records the epoch its user had when it was created; the request gate
compares it with the current one (mirrored in Redis, read from here on a miss), so a
password change or reset ends older sessions on every instance, whatever became of
the per-user session index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("credential_epoch", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("credential_epoch")
