"""One bridge per data directory: an OS file lock held for the life of the process.

Two bridges on one data directory would each keep their own rooms, presence and live fan-out,
so players on one would never see events from the other. Until several nodes share a backplane,
the second refuses to start. The lock is ``flock`` on ``bridge.lock`` in the data directory: the
kernel frees it when the process ends, however it ends (``kill -9`` included), so a stale file
never blocks a restart. The file also records the holder's pid, host and port, for the refusal
message. MCP children never inherit the descriptor (Python opens it close-on-exec), and two
``ttrpg-mcp`` processes on one content store stay allowed: this lock is the bridge's alone.

Several nodes are the exception: with both stores in PostgreSQL and campaign events in Redis,
nothing a node keeps in the data directory splits the table, so such nodes take the lock
*shared* (``LOCK_SH``): any number of them run side by side, while a self-contained bridge
(which needs it exclusive) still refuses to start next to them, and they next to it.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LOCK_FILE_NAME", "DataDirBusyError", "DataDirLock"]

LOCK_FILE_NAME = "bridge.lock"


@dataclass(frozen=True)
class DataDirBusyError(Exception):
    """Another live process holds the data directory; who, as far as its lock file says."""

    data_dir: Path
    holder: dict[str, Any]

    def __str__(self) -> str:
        pid = self.holder.get("pid", "unknown")
        where = self.holder.get("port", "unknown")
        if not self.holder:
            return (
                f"data directory {self.data_dir} is in use by other ttrpg-bridge nodes (or a single one); "
                "a node joins others only with both database_url (PostgreSQL) and redis_url set, "
                "and a self-contained bridge only when no node runs there"
            )
        return (
            f"data directory {self.data_dir} is in use by another ttrpg-bridge (pid {pid}, port {where}); "
            "stop that one first or start this one with another --data-dir"
        )


class DataDirLock:
    """The exclusive lock on one data directory; :meth:`acquire` once, held until :meth:`release`."""

    def __init__(self, data_dir: Path, *, shared: bool = False) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE_NAME
        self.shared = shared  # one of several nodes on a shared database and Redis
        self._fd: int | None = None

    def acquire(self, *, host: str, port: int) -> None:
        """Take the lock and record who holds it; :class:`DataDirBusyError` if someone does."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise DataDirBusyError(self.data_dir, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)  # shared holders are many: they leave it empty, naming none
        if not self.shared:
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": host, "port": port}).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (the process's exit does the same)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        value = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
