"""Request replies: the dedupe record that answers a resent request instead of redoing it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_replies",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("reply", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_request_replies_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "request_id", name=op.f("pk_request_replies")),
    )
    with op.batch_alter_table("request_replies", schema=None) as batch_op:
        batch_op.create_index("ix_request_replies_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("request_replies", schema=None) as batch_op:
        batch_op.drop_index("ix_request_replies_created_at")
    op.drop_table("request_replies")
