"""Change notifications on PostgreSQL: every commit that logs a change wakes the followers.

A trigger on ``content_changes`` sends ``NOTIFY ttrpg_content_changes`` once per statement that
inserts changes; PostgreSQL delivers it to the listeners only when the writing transaction
commits (never for a rollback), and folds repeats within one transaction into one, so a bridge
that ``LISTEN``\\ s learns of new changes without polling. Whoever writes (a bridge's pool child,
Claude Desktop's own server, an admin command) needs no code of its own for it. A no-op on
SQLite, whose followers poll the newest id.

Revision ID: 0005_change_notify
Revises: 0004_rules_search_postgres
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0005_change_notify"
down_revision = "0004_rules_search_postgres"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION content_changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_notify('ttrpg_content_changes', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER content_changes_notify AFTER INSERT ON content_changes "
        "FOR EACH STATEMENT EXECUTE FUNCTION content_changes_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS content_changes_notify ON content_changes")
    op.execute("DROP FUNCTION IF EXISTS content_changes_notify()")
