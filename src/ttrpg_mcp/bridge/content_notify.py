"""The content feed's signal on PostgreSQL: ``LISTEN`` for committed changes, poll seldom.

On PostgreSQL every statement that logs content changes fires ``NOTIFY ttrpg_content_changes``
(a trigger, content-store revision 0005), delivered when its transaction commits.
:class:`PostgresChangeListener` keeps one autocommit psycopg connection that ``LISTEN``\\ s, and
after each notification asks for the newest change id, so a change reaches the feed within a
round trip of its commit and an idle table costs nothing. Two things it does not trust
notifications for: it listens *before* it reads the newest id (a change committed in between is
seen by the read, or notified after it), and it reads again every :data:`SAFETY_POLL` seconds
even without a notification, in case one was lost with a dropped connection. A connection that
fails (the server restarted) is closed and opened again after :data:`RECONNECT_DELAY`; the feed
meanwhile simply waits, and resumes from its last id.

It satisfies :class:`ttrpg_mcp.bridge.content_feed.ChangeSignal`.
"""

from __future__ import annotations

from typing import cast

import anyio
import psycopg
import structlog
from sqlalchemy import make_url

from ttrpg_mcp.server.store.database import CONTENT_SCHEMA

__all__ = ["CHANNEL", "RECONNECT_DELAY", "SAFETY_POLL", "PostgresChangeListener", "psycopg_dsn"]

log = structlog.get_logger("ttrpg_mcp.bridge.content_feed")

CHANNEL = "ttrpg_content_changes"
# Without a notification, the newest id is still read this often: a lost notification (a
# connection dropped between commit and delivery) delays a change by at most this much.
SAFETY_POLL = 5.0
# After a failed connection, wait this long before the next attempt: a restarting server is
# not hammered, and a restart of a few seconds costs a few attempts.
RECONNECT_DELAY = 0.5
_CONNECT_TIMEOUT = 10


def psycopg_dsn(url: str) -> str:
    """A libpq connection string for psycopg from a SQLAlchemy URL (``postgresql+psycopg://``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresChangeListener:
    """A change signal that waits on ``LISTEN`` and reads ``max(id)`` after each notification."""

    def __init__(self, url: str, safety_poll: float = SAFETY_POLL) -> None:
        self._dsn = psycopg_dsn(url)
        self._safety_poll = safety_poll
        self._connection: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    async def _connect(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._connection is None or self._connection.closed:
            connection = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=_CONNECT_TIMEOUT
            )
            await connection.execute(f"LISTEN {CHANNEL}")
            self._connection = connection
        return self._connection

    async def _read_newest(self) -> int:
        connection = await self._connect()
        try:
            newest = f"SELECT max(id) FROM {CONTENT_SCHEMA}.content_changes"  # noqa: S608  # a constant
            cursor = await connection.execute(newest)
        except psycopg.errors.UndefinedTable:
            return 0  # not migrated yet: nothing to follow
        row = await cursor.fetchone()
        value = row[0] if row is not None else None
        return int(cast("int", value)) if value is not None else 0  # max(id) of an integer column

    async def newest(self) -> int:
        return await self._read_newest()

    async def wait_past(self, after: int) -> int:
        while True:
            try:
                newest = await self._read_newest()
                if newest > after:
                    return newest
                connection = await self._connect()
                async for _notify in connection.notifies(timeout=self._safety_poll, stop_after=1):
                    pass
            except psycopg.OperationalError as error:
                log.warning("content_listen_failed", error=str(error).strip().splitlines()[0:1])
                await self._drop()
                await anyio.sleep(RECONNECT_DELAY)

    async def _drop(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    def close(self) -> None:
        # Called from the feed's stop(), on the loop: closing the socket needs no round trip.
        if self._connection is not None:
            self._connection.pgconn.finish()
            self._connection = None
