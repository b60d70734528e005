"""SQLite engines as both stores use them: WAL, foreign keys, and a chosen BEGIN.

Several processes share each database file (the bridge, its pool of MCP children, Claude
Desktop's server, admin commands), so every connection runs in WAL mode with a busy timeout,
and each store keeps two engines: readers that ``BEGIN`` (deferred, no lock until needed) and
writers that ``BEGIN IMMEDIATE`` (take the write lock at the start, so two writers queue instead
of deadlocking on a lock upgrade).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event

__all__ = ["BUSY_TIMEOUT_MS", "sqlite_engine"]

# How long a connection waits for another's write lock before giving up. Writes are short (a
# tool call, a login, an event append); 15 s covers a bulk import or an admin command running
# in another process.
BUSY_TIMEOUT_MS = 15_000


def _configure(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level: the "begin" listener emits BEGIN itself, which is the
    # documented way to choose SQLite's transaction mode from SQLAlchemy.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; fsyncs at checkpoints
    # Deleted and rewritten rows are zeroed in their pages, not left behind: a deleted account
    # leaves no copy for someone who reads the file. FAST: only where that costs no extra I/O
    # (ON, which also wipes freed overflow pages, halves the write rate of large canvas strokes).
    cursor.execute("PRAGMA secure_delete=FAST")
    cursor.close()


def sqlite_engine(url: str, *, begin: str) -> Engine:
    """An engine on a SQLite URL whose transactions start with ``begin``."""
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _configure)

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine
