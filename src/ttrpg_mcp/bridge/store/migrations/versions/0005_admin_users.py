"""Administrators: a flag on accounts; the oldest existing account becomes the administrator.

An install that predates the flag gets the administrator a fresh install would have had: its
first account.

Revision ID: 0005_admin_users
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_admin_users"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false()))
    users = sa.table("users", sa.column("id", sa.String), sa.column("created_at"), sa.column("is_admin"))
    first = op.get_bind().execute(sa.select(users.c.id).order_by(users.c.created_at, users.c.id).limit(1))
    first_id = first.scalar()
    if first_id is not None:
        op.execute(users.update().where(users.c.id == first_id).values(is_admin=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("is_admin")
