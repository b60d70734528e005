"""The change feed: every write to campaign content records a change; the tool rolls' log.

Revision ID: 0003_change_log
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_change_log"
down_revision = "0002_gm_secrets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "content_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("entity_kind", sa.String(length=20), nullable=False),
        sa.Column("entity_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(length=10), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("content_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_content_changes_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_content_changes_entity_id"), ["entity_id"], unique=False)
    op.create_table(
        "roll_log",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("expression", sa.String(length=500), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("visibility", sa.String(length=10), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("roll_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_roll_log_campaign_id"), ["campaign_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("roll_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_roll_log_campaign_id"))
    op.drop_table("roll_log")
    with op.batch_alter_table("content_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_content_changes_entity_id"))
        batch_op.drop_index(batch_op.f("ix_content_changes_campaign_id"))
    op.drop_table("content_changes")
