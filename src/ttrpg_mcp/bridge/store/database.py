"""The bridge's database: engines, units of work, migrations, and a way to use them from asyncio.

:class:`BridgeStore` takes any SQLAlchemy URL. SQLite (the default, a file in the data
directory) and PostgreSQL (``postgresql+psycopg://...``, for several bridge nodes) are the
two it is written for.

On SQLite every connection runs in WAL mode with foreign keys on and a ``busy_timeout``, and
there are two engines over the file, as in the MCP server's content store: units of work that
write open with ``BEGIN IMMEDIATE`` so they take the write lock up front (a deferred transaction
that reads, then writes, can fail with ``SQLITE_BUSY`` without waiting), while read-only units
stay deferred and never block a writer. On PostgreSQL one engine does both.

The bridge is asyncio; the database driver is not. :meth:`BridgeStore.run` runs one unit of work
in a worker thread, at most :data:`MAX_CONCURRENT_UNITS` at a time, so the event loop never waits
on the database. Cancelling ``run`` is safe: the worker finishes its unit of work (committed or
rolled back, never half-applied) before the cancellation reaches the caller.

A unit of work that fails because of the storage itself (disk full, I/O error, read-only file
system, a lock held too long; see :mod:`ttrpg_mcp.storage_faults`) raises a ``BridgeError``
``storage_unavailable`` instead, so every route and message answers with that code. The store
remembers a failed write until a write succeeds again; :meth:`BridgeStore.writable` probes it,
which lets readiness turn 503 and come back by itself once space returns.

Migrations are Alembic's (``bridge/store/migrations``), run by :meth:`BridgeStore.migrate` at
start, so a new release brings an old database up to date before it serves anyone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread
from alembic import command
from alembic.config import Config
from sqlalchemy import CursorResult, Result, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.postgres import advisory_xact_lock, is_postgres
from ttrpg_mcp.sqlite import sqlite_engine
from ttrpg_mcp.storage_faults import STORAGE_UNAVAILABLE, storage_failure

__all__ = ["MAX_CONCURRENT_UNITS", "BridgeStore", "affected_rows"]

T = TypeVar("T")

# Units of work running at once in worker threads. Below SQLAlchemy's default pool size plus
# overflow (5 + 10), so a worker never waits for a pooled connection; SQLite serialises writes
# anyway, and for PostgreSQL eight concurrent statements per node is plenty for a game table.
MAX_CONCURRENT_UNITS = 8


def affected_rows(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched (``Session.execute`` types it as a plain Result)."""
    return cast("CursorResult[Any]", result).rowcount


class BridgeStore:
    """The bridge's database: migrate it, open units of work on it, close it.

    Create it anywhere (no connection is made until first use); call :meth:`migrate` once
    before serving and :meth:`close` on the way out.
    """

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            database = parsed.database or ""
            if database in ("", ":memory:") or database.startswith("file:"):
                # Every pooled connection to an in-memory database would see its own empty one.
                raise ValueError("the bridge store needs a SQLite file, not an in-memory database")
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._writer = sqlite_engine(url, begin="BEGIN IMMEDIATE")
            self._reader = sqlite_engine(url, begin="BEGIN")
        else:
            # pre_ping: a PostgreSQL server restart should cost one retry, not a failed request.
            self._writer = create_engine(url, pool_pre_ping=True)
            self._reader = self._writer
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._reader, expire_on_commit=False)
        self._limiter = anyio.CapacityLimiter(MAX_CONCURRENT_UNITS)
        # Why the last write failed for lack of storage; None once a write succeeds again.
        self.write_failure: str | None = None

    def __repr__(self) -> str:  # the URL may hold a password
        return f"BridgeStore(dialect={self.dialect!r})"

    def migrate(self) -> None:
        """Bring the schema to the newest revision; a no-op when it is already there."""
        with resources.as_file(resources.files(__package__) / "migrations") as script_dir:
            config = Config()
            config.set_main_option("script_location", str(script_dir))
            with self._writer.begin() as connection:
                if is_postgres(connection):
                    # Nodes and MCP children starting together migrate one at a time.
                    advisory_xact_lock(connection, "ttrpg_bridge_migrations")
                config.attributes["connection"] = connection
                command.upgrade(config, "head")

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises.

        ``readonly`` units are always rolled back and, on SQLite, take no write lock. A unit
        that must keep a write even though it goes on to raise (revoking a token family, say)
        calls ``session.commit()`` itself before raising.
        """
        factory = self._read_sessions if readonly else self._write_sessions
        with factory() as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            # A read-only unit just closes: closing ends its transaction, whereas rollback()
            # would expire the objects the caller is about to read.
            if not readonly:
                session.commit()

    async def run(self, fn: Callable[[Session], T], *, readonly: bool = False) -> T:
        """Run ``fn`` as one unit of work in a worker thread and return its result.

        ORM objects in the result are detached but keep their loaded attributes.
        """

        def unit() -> T:
            with self.session(readonly=readonly) as session:
                return fn(session)

        try:
            result = await anyio.to_thread.run_sync(unit, limiter=self._limiter)
        except Exception as exc:
            error = self._translate(exc, readonly=readonly)
            if error is None:
                raise
            raise error from exc
        if not readonly:
            self.write_failure = None
        return result

    def _translate(self, exc: Exception, *, readonly: bool) -> BridgeError | None:
        reason = storage_failure(exc)
        if reason is None:
            return None
        if not readonly:
            self.write_failure = reason
        return BridgeError(
            STORAGE_UNAVAILABLE,
            f"the bridge's store cannot {'read' if readonly else 'save'} now ({reason}); "
            "nothing was changed, retry shortly",
            {"reason": reason},
        )

    async def writable(self) -> str | None:
        """None when writes work; else why not. Probes with a tiny write only after a failure."""
        if self.write_failure is None:
            return None

        def probe(session: Session) -> None:
            if self.dialect == "sqlite":
                # Rewrites the header's user_version with its own value: a real write through
                # the journal that changes nothing.
                version = session.execute(text("PRAGMA user_version")).scalar_one()
                session.execute(text(f"PRAGMA user_version = {int(version)}"))
            else:
                session.execute(text("SELECT 1"))

        try:
            await self.run(probe)
        except BridgeError as error:
            if error.code != STORAGE_UNAVAILABLE:
                raise
        return self.write_failure

    async def ping(self) -> None:
        """Raise if the database does not answer; for readiness checks."""
        await self.run(lambda session: session.execute(text("SELECT 1")).scalar_one(), readonly=True)

    def close(self) -> None:
        """Close every pooled connection; call it once, at shutdown."""
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()
