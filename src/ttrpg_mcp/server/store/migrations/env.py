"""Alembic environment: runs on the connection that ``Database.migrate`` hands in.

On PostgreSQL the version table is ``content_alembic_version``: the content store shares its
database with the bridge's store (``bridge_alembic_version``), two histories side by side. A
SQLite file keeps Alembic's default name, which every existing data directory already has.
"""

from __future__ import annotations

from alembic import context

from ttrpg_mcp.server.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by running the alembic CLI by hand
    raise RuntimeError("run migrations through ttrpg_mcp.server.store.database.Database.migrate()")

VERSION_TABLE = "alembic_version" if connection.dialect.name == "sqlite" else "content_alembic_version"

# render_as_batch: SQLite cannot ALTER most things in place; batch mode rebuilds the table.
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
