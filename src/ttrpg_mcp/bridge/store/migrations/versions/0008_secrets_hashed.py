"""Secrets at rest: invite codes kept as their SHA-256, and API keys (hash only).

Existing invite codes are hashed in place, so the codes people already hold keep working while
the store no longer holds anything that would let a copy of it seat or register anyone.

Revision ID: 0008_secrets_hashed
Revises: 0007_feed_cursor
Create Date: 2026-11-30
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0008_secrets_hashed"
down_revision = "0007_feed_cursor"
branch_labels = None
depends_on = None

_INVITE_TABLES = ("campaign_invites", "registration_invites")


def _digest(code: str) -> str:
    # The same function as bridge/auth/digests.py, frozen here as migrations must be.
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def upgrade() -> None:
    bind = op.get_bind()
    for name in _INVITE_TABLES:
        table = sa.table(name, sa.column("code", sa.String))
        for (code,) in bind.execute(sa.select(table.c.code)).all():
            bind.execute(table.update().where(table.c.code == code).values(code=_digest(code)))
        with op.batch_alter_table(name) as batch:
            batch.alter_column("code", new_column_name="code_hash", existing_type=sa.String(64))
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.create_index(batch.f("ix_api_keys_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    # Hashes cannot be turned back into codes: outstanding invites are dropped.
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index(batch.f("ix_api_keys_user_id"))
    op.drop_table("api_keys")
    for name in _INVITE_TABLES:
        op.execute(sa.table(name).delete())
        with op.batch_alter_table(name) as batch:
            batch.alter_column("code_hash", new_column_name="code", existing_type=sa.String(64))
