"""GM secrets: note visibility and author, NPC secrets, GM notes, secret world-state keys.

Notes written before this revision become GM-only: nothing said who could read them, and a
note that stays secret by mistake is shared with one call, while one read by mistake cannot be
taken back.

Revision ID: 0002_gm_secrets
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_gm_secrets"
down_revision = "0001"
branch_labels = None
depends_on = None

_EMPTY_LIST = sa.text("'[]'")


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("secret_keys", sa.JSON(), nullable=False, server_default=_EMPTY_LIST))
    with op.batch_alter_table("characters") as batch:
        batch.add_column(sa.Column("gm_notes", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("npcs") as batch:
        batch.add_column(sa.Column("secrets", sa.JSON(), nullable=False, server_default=_EMPTY_LIST))
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("gm_notes", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("notes") as batch:
        batch.add_column(sa.Column("visibility", sa.String(length=100), nullable=False, server_default="gm"))
        batch.add_column(sa.Column("author", sa.String(length=100), nullable=False, server_default=""))
    with op.batch_alter_table("rule_sources") as batch:
        batch.add_column(sa.Column("gm_only", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    for table, columns in (
        ("rule_sources", ("gm_only",)),
        ("notes", ("author", "visibility")),
        ("items", ("gm_notes",)),
        ("npcs", ("secrets",)),
        ("characters", ("gm_notes",)),
        ("campaigns", ("secret_keys",)),
    ):
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column)
