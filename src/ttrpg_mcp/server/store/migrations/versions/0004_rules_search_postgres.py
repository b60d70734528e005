"""Rules search on PostgreSQL: a weighted tsvector column on the sections and a GIN index on it.

SQLite searches through the FTS5 table of the initial revision; PostgreSQL has no FTS5, so
there the sections carry their own search vector, computed by the database (a stored generated
column: every insert and update is searchable at once, as with the FTS5 triggers) with the
title weighted A, the heading trail B and the body C, and the English stemmer so that
"grappling" finds "grapple". A no-op on SQLite.

Revision ID: 0004_rules_search_postgres
Revises: 0003_change_log
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0004_rules_search_postgres"
down_revision = "0003_change_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE rule_sections ADD COLUMN search tsvector GENERATED ALWAYS AS ("
        "setweight(to_tsvector('english', title), 'A') || "
        "setweight(to_tsvector('english', path), 'B') || "
        "setweight(to_tsvector('english', body), 'C')) STORED"
    )
    op.execute("CREATE INDEX ix_rule_sections_search ON rule_sections USING gin (search)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_rule_sections_search")
    op.execute("ALTER TABLE rule_sections DROP COLUMN IF EXISTS search")
