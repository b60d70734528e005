"""The database behind the content store: connections, transactions and migrations.

The store is a SQLite file in the data directory by default, or a PostgreSQL database given by
URL (``TTRPG_DATABASE_URL``), shared with the bridge's own store and with every node. On
PostgreSQL the content tables live in their own schema, ``ttrpg_content`` (both stores have a
``campaigns`` table), which every connection has as its ``search_path``, and one engine reads
and writes; the rest of this paragraph is about SQLite.

Several processes share one database file: Claude Desktop's server, and every child of the
bridge's pool. SQLite handles that in WAL mode, with two rules this module enforces:

* Every connection sets ``journal_mode=WAL``, ``foreign_keys=ON`` and a ``busy_timeout`` so
  that a writer waits for another process's write instead of failing at once.
* Writes open their transaction with ``BEGIN IMMEDIATE``. A deferred transaction that reads
  first and writes later can fail with ``SQLITE_BUSY`` *without* waiting (the busy handler
  cannot help a lock upgrade), so writes take the write lock up front. Reads stay deferred
  and never block a writer. Hence two engines over one file: ``reader`` and ``writer``.

Migrations are Alembic's, run on open (``upgrade head``), so that a new release of the
server brings an old data directory up to date before it answers anything. On PostgreSQL the
history is kept in ``content_alembic_version``, apart from the bridge's, since both stores'
tables share one database (a SQLite file keeps Alembic's default name, as it always had).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from ttrpg_mcp.config import CONTENT_DB_NAME, content_location, normalize_database_url
from ttrpg_mcp.postgres import advisory_xact_lock, is_postgres
from ttrpg_mcp.server.store.changes import track_changes
from ttrpg_mcp.server.store.freshness import Freshness, PostgresFreshness
from ttrpg_mcp.sqlite import sqlite_engine

__all__ = ["CONTENT_DB_NAME", "CONTENT_SCHEMA", "Database", "content_location", "content_store_exists"]

# On PostgreSQL the content store's tables live in their own schema: both stores have a
# ``campaigns`` table (the content, and the bridge's table rooms), and share one database.
CONTENT_SCHEMA = "ttrpg_content"


def _psycopg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def content_store_exists(url: str) -> bool:
    """Whether a ``ttrpg-mcp`` has made (migrated) the content store in this PostgreSQL database."""
    with psycopg.connect(_psycopg_dsn(url), autocommit=True) as connection:
        row = connection.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (f"{CONTENT_SCHEMA}.content_alembic_version",)
        ).fetchone()
    return bool(row and row[0])


def _ensure_schema(url: str) -> None:
    """Create the content store's schema if it is not there yet (before any engine connects,
    so that SQLAlchemy finds it as the connection's current schema)."""
    with psycopg.connect(_psycopg_dsn(url), autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (CONTENT_SCHEMA,)).fetchone():
            return
        # Two processes may get here at once; the loser's statement fails on the catalog's key.
        with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateSchema):
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {CONTENT_SCHEMA}")


class Database:
    """The content database: a SQLite file (a reader and a writer engine) or a PostgreSQL URL."""

    def __init__(self, location: Path | str) -> None:
        """``location``: a SQLite file's path, or a SQLAlchemy URL (``postgresql://...``)."""
        self.path: Path | None = None
        if isinstance(location, Path):
            self.path = location
            url = f"sqlite+pysqlite:///{location}"
        else:
            url = normalize_database_url(location)
        self.dialect = make_url(url).get_backend_name()
        if self.dialect == "sqlite":
            self.path = self.path or Path(make_url(url).database or "")
            self.reader: Engine = sqlite_engine(url, begin="BEGIN")
            self.writer: Engine = sqlite_engine(url, begin="BEGIN IMMEDIATE")
            # Answers a hot path may reuse until any connection commits (see freshness).
            self.freshness: Freshness = Freshness(self.path)
        else:
            _ensure_schema(url)
            # pre_ping: a restarted server costs one reconnect, not a failed tool call.
            self.writer = create_engine(
                url, pool_pre_ping=True, connect_args={"options": f"-c search_path={CONTENT_SCHEMA}"}
            )
            self.reader = self.writer
            self.freshness = PostgresFreshness(self.writer)
        self._read_sessions = sessionmaker(self.reader, expire_on_commit=False)
        self._write_sessions = sessionmaker(self.writer, expire_on_commit=False)
        # Every write records its change in its own transaction: the feed the bridge follows.
        track_changes(self._write_sessions)

    def __repr__(self) -> str:  # a URL may hold a password
        return f"Database(dialect={self.dialect!r}, path={self.path!r})"

    @classmethod
    def open(cls, data_dir: Path, url: str | None = None) -> Database:
        """Open (creating if needed) the content database and migrate it (see :func:`content_location`)."""
        database = cls(content_location(data_dir, url))
        database.migrate()
        return database

    def migrate(self) -> None:
        """Bring the schema to the newest revision; a no-op when it is already there."""
        with resources.as_file(resources.files(__package__) / "migrations") as script_dir:
            config = Config()
            config.set_main_option("script_location", str(script_dir))
            with self.writer.begin() as connection:
                if is_postgres(connection):
                    # Nodes and MCP children starting together migrate one at a time.
                    advisory_xact_lock(connection, "ttrpg_content_migrations")
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
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()
