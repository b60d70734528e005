"""Whether the MCP content store can save, as readiness sees it.

The MCP children write ``content.db``; the bridge only relays their answers. When a child's
write fails for lack of storage (disk full, read-only file system, the database locked too
long) the tool answers ``storage_unavailable: ...`` and the bridge relays that code; the node is
then not fit to take play traffic, so ``/readyz`` must say so, as it does for the bridge's own
store. :class:`ContentStoreHealth` remembers the failure from the tool answer and, while it is
remembered, probes the file with a harmless write of its own (the header's ``user_version``
rewritten with its own value, through the WAL, behind ``BEGIN IMMEDIATE``), so readiness comes
back by itself once space returns or the lock is released, with no client having to write first.

The probe runs only while a failure is remembered and only when readiness is asked, so a
healthy node never writes for it. It runs in the bridge's process, not in a child: a fault that
only the children see (a resource limit put on them alone) clears at the probe and is set
again by the next failing tool answer.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import anyio.to_thread

from ttrpg_mcp.storage_faults import STORAGE_UNAVAILABLE

__all__ = ["PROBE_BUSY_TIMEOUT", "ContentStoreHealth"]

# A readiness probe must answer quickly: waiting this long for another writer's lock is enough
# to tell "busy for a moment" from "held".
PROBE_BUSY_TIMEOUT = 0.5

_FAILURE = re.compile(rf"{STORAGE_UNAVAILABLE}: .*\((?P<reason>[^()]*)\)\s*$")


class ContentStoreHealth:
    """The last content-store write failure a tool reported, until a write succeeds again."""

    def __init__(self, path: Path | None) -> None:
        # None: the content store lives in the shared PostgreSQL database, which the bridge's own
        # store check already probes; a failure is then forgotten at the next tool call that works.
        self.path = path
        self.write_failure: str | None = None

    def observe(self, result: dict[str, Any]) -> None:
        """Look at one ``tools/call`` result: a ``storage_unavailable`` error is remembered."""
        if not result.get("isError"):
            if self.path is None:
                self.write_failure = None
            return
        for part in result.get("content") or []:
            text = part.get("text") if isinstance(part, dict) else None
            if isinstance(text, str) and STORAGE_UNAVAILABLE in text:
                match = _FAILURE.search(text.strip())
                self.write_failure = match.group("reason") if match else text.strip()
                return

    async def writable(self) -> str | None:
        """None when content writes work; else why not. Probes only after a failure."""
        if self.write_failure is None or self.path is None:
            return self.write_failure
        try:
            await anyio.to_thread.run_sync(self._probe)
        except sqlite3.Error as error:
            self.write_failure = str(error) or type(error).__name__
        except OSError as error:  # a reached file-size limit, an unopenable directory
            self.write_failure = error.strerror or type(error).__name__
        else:
            self.write_failure = None
        return self.write_failure

    def _probe(self) -> None:
        assert self.path is not None
        # mode=rw: a probe must never create a missing file.
        uri = f"{self.path.resolve().as_uri()}?mode=rw"
        connection = sqlite3.connect(uri, uri=True, timeout=PROBE_BUSY_TIMEOUT, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            version = int(connection.execute("PRAGMA user_version").fetchone()[0])
            connection.execute(f"PRAGMA user_version = {version}")
            connection.execute("COMMIT")
        finally:
            connection.close()
