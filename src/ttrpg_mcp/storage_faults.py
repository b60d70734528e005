"""Which database errors mean "the storage cannot serve now", shared by both programs.

A full disk, an I/O error, a read-only file system, a file that cannot be opened, a lock held
too long or a database server that went away are not bugs in a request: the same request
succeeds once the storage is back. Both stores report them as ``storage_unavailable`` (the
bridge's store to its clients, the MCP server's content store as a tool error carrying that
code) instead of an opaque internal error, and the bridge's readiness follows them.
"""

from __future__ import annotations

import psycopg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

__all__ = ["STORAGE_UNAVAILABLE", "storage_failure"]

STORAGE_UNAVAILABLE = "storage_unavailable"

# SQLite result codes (primary names; extended ones such as SQLITE_IOERR_WRITE share the prefix)
# that describe the storage rather than the statement.
_SQLITE_STORAGE_CODES = (
    "SQLITE_FULL",
    "SQLITE_IOERR",
    "SQLITE_READONLY",
    "SQLITE_CANTOPEN",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_NOMEM",
    "SQLITE_PROTOCOL",
    "SQLITE_NOLFS",
)


def storage_failure(exc: BaseException) -> str | None:
    """A short reason when ``exc`` says the storage is unavailable, else None (a real bug).

    On PostgreSQL that is psycopg's ``OperationalError`` family (server unreachable, shut down,
    connection lost; SQLAlchemy wraps it as its own ``OperationalError``), a connection that
    SQLAlchemy found dead, or an ``InterfaceError`` on a connection closed under it.
    """
    if isinstance(exc, psycopg.OperationalError):  # raised by psycopg itself, not wrapped
        return _first_line(exc)
    if isinstance(exc, DBAPIError) and (exc.connection_invalidated or isinstance(exc, InterfaceError)):
        return _first_line(exc.orig)
    if not isinstance(exc, OperationalError):
        return None
    original = exc.orig
    name = getattr(original, "sqlite_errorname", None)
    if isinstance(name, str) and not name.startswith(_SQLITE_STORAGE_CODES):
        return None  # no such table, syntax error...: a bug, not the storage
    return _first_line(original)


def _first_line(error: BaseException | None) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
