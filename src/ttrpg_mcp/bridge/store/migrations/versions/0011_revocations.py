"""Revocations: the ledger of withdrawn keys and accounts that every bridge node follows.

Revision ID: 0011_revocations
Revises: 0010_signing_keys
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_revocations"
down_revision = "0010_signing_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject_digest", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revocations")),
    )
    op.create_index(op.f("ix_revocations_created_at"), "revocations", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_revocations_created_at"), table_name="revocations")
    op.drop_table("revocations")
