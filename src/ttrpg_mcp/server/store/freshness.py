"""Answers read from memory until the database file changes: no transaction on the hot path.

Several processes write the content database (the bridge's pool children, Claude Desktop's own
server, admin commands), so a value read once may go stale at any time. SQLite counts that for
us: ``PRAGMA data_version`` on a connection changes whenever *another* connection commits to
the file, from this process or any other. :class:`Freshness` keeps one such connection that
never writes, so every commit anywhere moves its number, and :meth:`Freshness.remember` reuses a
read's answer for as long as the number stands still. Checking costs a pragma on an idle
connection (microseconds); the read it saves costs a transaction and a query.

PostgreSQL has no per-database commit counter, but its snapshot says the same thing:
``pg_current_snapshot()`` (``xmin:xmax:in-progress ids``) moves whenever any transaction that
wrote starts or ends, so :class:`PostgresFreshness` uses its text as the number. It moves for
writes to other databases of the server too; that only costs a read, never a stale answer. A
check is one round trip on a pooled connection instead of a pragma, still far cheaper than the
read it saves.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import text

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["Freshness", "PostgresFreshness"]

T = TypeVar("T")


class Freshness:
    """The SQLite file's change counter, and answers remembered while it holds."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None  # opened on first use, after migration
        self._lock = threading.Lock()  # tools run in worker threads; one connection, one user
        self._remembered: dict[str, tuple[object, Any]] = {}

    def version(self) -> object:
        """A number that changes whenever any other connection has committed to the file."""
        with self._lock:
            if self._connection is None:
                self._connection = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            row = self._connection.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def remember(self, key: str, read: Callable[[], T]) -> T:
        """``read()``'s answer, read again only when the file changed since it was last read.

        The number is taken before reading, so a commit that lands during the read moves it and
        the next call reads again: a remembered answer is never older than its number.
        """
        version = self.version()
        held = self._remembered.get(key)
        if held is not None and held[0] == version:
            return held[1]  # type: ignore[no-any-return]
        value = read()
        self._remembered[key] = (version, value)
        return value

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class PostgresFreshness(Freshness):
    """The same remembering on PostgreSQL, with the server's snapshot as the change counter."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(Path())
        self._engine = engine

    def version(self) -> object:
        """The current snapshot: it differs once any writing transaction began or ended."""
        with self._engine.connect() as connection:
            return str(connection.execute(text("SELECT pg_current_snapshot()")).scalar_one())

    def close(self) -> None:
        self._remembered.clear()
