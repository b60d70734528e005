"""Alembic environment: runs on the connection that ``BridgeStore.migrate`` hands in.

The version table has its own name, ``bridge_alembic_version``, so that the bridge can share a
PostgreSQL database (and its ``public`` schema) with other applications' Alembic histories.
"""

from __future__ import annotations

from alembic import context

from ttrpg_mcp.bridge.store.models import Base

VERSION_TABLE = "bridge_alembic_version"

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by running the alembic CLI by hand
    raise RuntimeError("run migrations through ttrpg_mcp.bridge.store.BridgeStore.migrate()")

# render_as_batch: SQLite cannot ALTER most things in place; batch mode rebuilds the table.
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
