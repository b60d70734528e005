"""The SQLite file behind the content store: connections, transactions and migrations.

Several processes share one database file: Claude Desktop's server, and every child of the
bridge's pool. SQLite handles that in WAL mode, with two rules this module enforces:

* Every connection sets ``journal_mode=WAL``, ``foreign_keys=ON`` and a ``busy_timeout`` so
  that a writer waits for another process's write instead of failing at once.
* Writes open their transaction with ``BEGIN IMMEDIATE``. A deferred transaction that reads
  first and writes later can fail with ``SQLITE_BUSY`` *without* waiting (the busy handler
  cannot help a lock upgrade), so writes take the write lock up front. Reads stay deferred
  and never block a writer. Hence two engines over one file: ``reader`` and ``writer``.

Migrations are Alembic's, run on open (``upgrade head``), so that a new release of the
server brings an old data directory up to date before it answers anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session, sessionmaker

from ttrpg_mcp.server.store.changes import track_changes
from ttrpg_mcp.server.store.freshness import Freshness
from ttrpg_mcp.sqlite import sqlite_engine

__all__ = ["CONTENT_DB_NAME", "Database"]

CONTENT_DB_NAME = "content.db"


class Database:
    """The content database: a reader and a writer engine over one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reader = sqlite_engine(f"sqlite+pysqlite:///{path}", begin="BEGIN")
        self.writer = sqlite_engine(f"sqlite+pysqlite:///{path}", begin="BEGIN IMMEDIATE")
        self._read_sessions = sessionmaker(self.reader, expire_on_commit=False)
        self._write_sessions = sessionmaker(self.writer, expire_on_commit=False)
        # Every write records its change in its own transaction: the feed the bridge follows.
        track_changes(self._write_sessions)
        # Answers a hot path may reuse until any connection commits (see freshness).
        self.freshness = Freshness(path)

    @classmethod
    def open(cls, data_dir: Path) -> Database:
        """Open (creating if needed) the content database in ``data_dir`` and migrate it."""
        database = cls(data_dir / CONTENT_DB_NAME)
        database.migrate()
        return database

    def migrate(self) -> None:
        """Bring the schema to the newest revision; a no-op when it is already there."""
        with resources.as_file(resources.files(__package__) / "migrations") as script_dir:
            config = Config()
            config.set_main_option("script_location", str(script_dir))
            with self.writer.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work (deferred transaction, rolled back at the end)."""
        with self._read_sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A unit of work that commits on success and rolls back on any error."""
        with self._write_sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.freshness.close()
        self.reader.dispose()
        self.writer.dispose()
