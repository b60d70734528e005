"""PostgreSQL specifics both stores share: the psycopg driver's errors and advisory locks.

On SQLite a writer takes the whole file's lock (``BEGIN IMMEDIATE``), which quietly serialises
a few things the code relies on: two processes migrating one database at once, and change-log
ids committed in the order they were given. PostgreSQL runs writers side by side, so those few
places take a transaction-scoped advisory lock by name instead; it is released by the commit or
rollback that ends the transaction, so a crashed writer never leaves it held.
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

__all__ = ["advisory_xact_lock", "is_postgres"]


def is_postgres(bind: Connection | Session) -> bool:
    """Whether ``bind`` talks to PostgreSQL."""
    dialect = bind.dialect if isinstance(bind, Connection) else bind.get_bind().dialect
    return dialect.name == "postgresql"


def advisory_xact_lock(bind: Connection | Session, name: str) -> None:
    """Wait for, then hold until the transaction ends, the advisory lock called ``name``."""
    # On the session's connection itself: a Session.execute here could autoflush mid-flush.
    connection = bind if isinstance(bind, Connection) else bind.connection()
    connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
