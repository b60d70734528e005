"""The initiative moved to the content store: forget the bridge's old copy in shared states.

The table's tracker is now the combat of the campaign's running play session in the MCP
content store (one tracker for the table and for Claude). An order kept in a shared state
document from before would be a second, stale copy, so the initiative keys go back to their
empty defaults; the rest of each document (notes, custom) is untouched.

Revision ID: 0006_initiative
Revises: 0005_admin_users
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_initiative"
down_revision = "0005_admin_users"
branch_labels = None
depends_on = None

_STATES = sa.table(
    "shared_states",
    sa.column("campaign_id", sa.String()),
    sa.column("document", sa.JSON()),
)
_EMPTY = {"initiative_order": [], "active_turn": 0, "round_number": 1}


def upgrade() -> None:
    connection = op.get_bind()
    for campaign_id, document in connection.execute(sa.select(_STATES.c.campaign_id, _STATES.c.document)):
        if not isinstance(document, dict) or all(document.get(key) == value for key, value in _EMPTY.items()):
            continue
        connection.execute(
            _STATES.update().where(_STATES.c.campaign_id == campaign_id).values(document=document | _EMPTY)
        )


def downgrade() -> None:
    """Nothing to restore: the combat lives in the content store."""
