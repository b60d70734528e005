"""Campaign rooms: campaigns, memberships, invites, shared state, canvas, dice log, event log.

Only portable types and named constraints (see ``models.NAMING_CONVENTION``), so this runs
the same on SQLite and PostgreSQL. Every campaign table cascades from ``campaigns``: deleting a
campaign's row removes its whole table with it; rows that point at a user keep existing, with
the user set to null, when that user is deleted (except memberships, which go with the user).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ROLE_CHECK = "role IN ('gm', 'player', 'spectator')"


def _campaign_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["campaign_id"], ["campaigns.id"], name=op.f(f"fk_{table}_campaign_id_campaigns"), ondelete="CASCADE"
    )


def _user_fk(table: str, column: str, ondelete: str = "SET NULL") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["users.id"], name=op.f(f"fk_{table}_{column}_users"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("epoch", sa.String(length=32), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("canvas_cleared_at", sa.DateTime(timezone=True), nullable=True),
        _user_fk("campaigns", "created_by"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_table(
        "memberships",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_ROLE_CHECK, name=op.f("ck_memberships_role")),
        _campaign_fk("memberships"),
        _user_fk("memberships", "user_id", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id", "user_id", name=op.f("pk_memberships")),
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memberships_user_id"), ["user_id"], unique=False)
    op.create_table(
        "campaign_invites",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uses_left", sa.Integer(), nullable=False),
        sa.CheckConstraint(_ROLE_CHECK, name=op.f("ck_campaign_invites_role")),
        _campaign_fk("campaign_invites"),
        _user_fk("campaign_invites", "created_by"),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_campaign_invites")),
    )
    with op.batch_alter_table("campaign_invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_invites_campaign_id"), ["campaign_id"], unique=False)
    op.create_table(
        "shared_states",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        _campaign_fk("shared_states"),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_shared_states")),
    )
    op.create_table(
        "canvas_strokes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("stroke", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        _campaign_fk("canvas_strokes"),
        _user_fk("canvas_strokes", "user_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canvas_strokes")),
        sa.UniqueConstraint("campaign_id", "ordinal", name="uq_canvas_strokes_campaign_id_ordinal"),
    )
    op.create_table(
        "dice_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("player_name", sa.String(length=100), nullable=False),
        sa.Column("expression", sa.String(length=500), nullable=False),
        sa.Column("purpose", sa.String(length=500), nullable=True),
        sa.Column("visibility", sa.String(length=8), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "visibility IN ('public', 'gm', 'blind', 'self')", name=op.f("ck_dice_log_visibility")
        ),
        _campaign_fk("dice_log"),
        _user_fk("dice_log", "user_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dice_log")),
    )
    with op.batch_alter_table("dice_log", schema=None) as batch_op:
        batch_op.create_index("ix_dice_log_campaign_id_id", ["campaign_id", "id"], unique=False)
    op.create_table(
        "campaign_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("audience", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _campaign_fk("campaign_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_events")),
        sa.UniqueConstraint("campaign_id", "seq", name="uq_campaign_events_campaign_id_seq"),
    )


def downgrade() -> None:
    op.drop_table("campaign_events")
    with op.batch_alter_table("dice_log", schema=None) as batch_op:
        batch_op.drop_index("ix_dice_log_campaign_id_id")
    op.drop_table("dice_log")
    op.drop_table("canvas_strokes")
    op.drop_table("shared_states")
    with op.batch_alter_table("campaign_invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_invites_campaign_id"))
    op.drop_table("campaign_invites")
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memberships_user_id"))
    op.drop_table("memberships")
    op.drop_table("campaigns")
