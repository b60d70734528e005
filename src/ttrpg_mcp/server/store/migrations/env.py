"""Alembic environment: runs on the connection that ``Database.migrate`` hands in."""

from __future__ import annotations

from alembic import context

from ttrpg_mcp.server.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by running the alembic CLI by hand
    raise RuntimeError("run migrations through ttrpg_mcp.server.store.database.Database.migrate()")

# render_as_batch: SQLite cannot ALTER most things in place; batch mode rebuilds the table.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
