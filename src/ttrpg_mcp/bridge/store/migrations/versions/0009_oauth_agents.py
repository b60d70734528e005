"""OAuth for remote MCP clients: registered clients, pending consents, grants, codes and tokens.

Codes and tokens are kept as their SHA-256 only, as are client secrets and the ids of pending
consent requests: a copy of the store lets nobody act as an agent.

Revision ID: 0009_oauth_agents
Revises: 0008_secrets_hashed
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_oauth_agents"
down_revision = "0008_secrets_hashed"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("client_name", sa.String(length=200), nullable=True),
        sa.Column("secret_hash", sa.String(length=64), nullable=True),
        sa.Column("metadata_json", sa.JSON(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_oauth_clients")),
    )
    op.create_table(
        "oauth_pending_requests",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("redirect_uri_explicit", sa.Boolean(), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=2000), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("resource", sa.String(length=2000), nullable=True),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth_clients.client_id"],
            name=op.f("fk_oauth_pending_requests_client_id_oauth_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_oauth_pending_requests")),
    )
    with op.batch_alter_table("oauth_pending_requests") as batch:
        batch.create_index(batch.f("ix_oauth_pending_requests_client_id"), ["client_id"], unique=False)
        batch.create_index(batch.f("ix_oauth_pending_requests_expires_at"), ["expires_at"], unique=False)
    op.create_table(
        "agent_grants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("resource", sa.String(length=2000), nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("revoked_at", _WHEN, nullable=True),
        sa.Column("revoked_by", sa.String(length=32), nullable=True),
        sa.CheckConstraint("role IN ('gm', 'player', 'spectator')", name=op.f("ck_agent_grants_role")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_agent_grants_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth_clients.client_id"],
            name=op.f("fk_agent_grants_client_id_oauth_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by"], ["users.id"], name=op.f("fk_agent_grants_revoked_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_agent_grants_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_grants")),
    )
    with op.batch_alter_table("agent_grants") as batch:
        for column in ("campaign_id", "client_id", "user_id"):
            batch.create_index(batch.f(f"ix_agent_grants_{column}"), [column], unique=False)
    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=32), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("redirect_uri_explicit", sa.Boolean(), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("used_at", _WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["agent_grants.id"],
            name=op.f("fk_oauth_codes_grant_id_agent_grants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_oauth_codes")),
    )
    with op.batch_alter_table("oauth_codes") as batch:
        batch.create_index(batch.f("ix_oauth_codes_grant_id"), ["grant_id"], unique=False)
        batch.create_index(batch.f("ix_oauth_codes_expires_at"), ["expires_at"], unique=False)
    op.create_table(
        "oauth_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("issued_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("used_at", _WHEN, nullable=True),
        sa.CheckConstraint("kind IN ('access', 'refresh')", name=op.f("ck_oauth_tokens_kind")),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["agent_grants.id"],
            name=op.f("fk_oauth_tokens_grant_id_agent_grants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_oauth_tokens")),
    )
    with op.batch_alter_table("oauth_tokens") as batch:
        batch.create_index(batch.f("ix_oauth_tokens_grant_id"), ["grant_id"], unique=False)
        batch.create_index(batch.f("ix_oauth_tokens_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    for table in ("oauth_tokens", "oauth_codes", "agent_grants", "oauth_pending_requests", "oauth_clients"):
        op.drop_table(table)
