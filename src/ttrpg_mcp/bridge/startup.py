"""Checks before the bridge serves: each failure is one sentence naming the path or port.

A bridge that cannot start should say why in words an operator can act on, not in a traceback
found after migrations ran and children were spawned. :func:`prepare` runs the checks cheapest
and most likely first: the port (bound here and handed to uvicorn, so nobody can take it in
between), the open-files limit, the data directory, the lock that keeps a second bridge off the
same data directory, and each SQLite file the bridge and its MCP children will open.
"""

from __future__ import annotations

import contextlib
import errno
import resource
import socket
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url

from ttrpg_mcp.bridge.datadir_lock import DataDirBusyError, DataDirLock
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.config import resolve_data_dir
from ttrpg_mcp.server.store.database import CONTENT_DB_NAME

__all__ = ["MIN_OPEN_FILES", "Prepared", "StartupError", "bind_port", "prepare"]

# Below this many open files a bridge cannot hold a table's sockets, its pool and its stores.
MIN_OPEN_FILES = 1024


class StartupError(Exception):
    """A reason the bridge cannot start, as one sentence for the operator."""


@dataclass
class Prepared:
    """What the checks leave open for the server: its listening socket and the data-dir lock."""

    sock: socket.socket
    lock: DataDirLock
    data_dir: Path
    open_files: int

    def close(self) -> None:
        self.sock.close()
        self.lock.release()


def prepare(settings: BridgeSettings) -> Prepared:
    """Run every start-up check in order; :class:`StartupError` on the first that fails."""
    sock = bind_port(settings.host, settings.port)
    try:
        open_files = raise_open_files_limit()
        data_dir = check_data_dir(settings)
        # Nodes with both stores in PostgreSQL and events in Redis may be many (a shared lock).
        several_nodes = settings.redis_url is not None and isinstance(settings.content_store, str)
        lock = DataDirLock(data_dir, shared=several_nodes)
        try:
            lock.acquire(host=settings.host, port=int(sock.getsockname()[1]))
        except DataDirBusyError as exc:
            raise StartupError(str(exc)) from None
        try:
            for path in _sqlite_files(settings, data_dir):
                check_sqlite_file(path)
        except BaseException:
            lock.release()
            raise
    except BaseException:
        sock.close()
        raise
    return Prepared(sock, lock, data_dir, open_files)


def bind_port(host: str, port: int) -> socket.socket:
    """The listening socket for ``host:port``, bound now so a busy port is the first thing found."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is already in use by another program; "
                "stop it or start the bridge with another --port"
            ) from None
        if exc.errno == errno.EACCES:
            raise StartupError(
                f"port {port} on {host} needs privileges this process lacks; "
                "choose a port above 1023 with --port"
            ) from None
        raise StartupError(
            f"cannot listen on {host} port {port} ({exc.strerror}); check --host and --port"
        ) from None
    sock.set_inheritable(False)
    return sock


def raise_open_files_limit(minimum: int = MIN_OPEN_FILES) -> int:
    """Raise the soft open-files limit to the hard one; refuse a hard limit under ``minimum``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < minimum:
        raise StartupError(
            f"the hard limit on open files is {hard}, below the {minimum} the bridge needs; "
            f"raise it (ulimit -Hn {minimum * 4}, or LimitNOFILE= in a systemd unit)"
        )
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft


def check_data_dir(settings: BridgeSettings) -> Path:
    """The data directory, created if missing, known to be a writable directory."""
    try:
        path = resolve_data_dir(settings.data_dir)
    except FileExistsError as exc:
        raise StartupError(
            f"data directory {exc.filename} is a file, not a directory; "
            "move it aside or pass another --data-dir"
        ) from None
    except OSError as exc:
        raise StartupError(
            f"data directory {exc.filename or settings.data_dir} does not exist and cannot be created "
            f"({exc.strerror}); create it or pass another --data-dir"
        ) from None
    probe = path / f".write-check-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(
            f"data directory {path} is not writable ({exc.strerror}); fix its permissions or mount, "
            "or pass another --data-dir"
        ) from None
    return path


def check_sqlite_file(path: Path) -> None:
    """Refuse a file that exists and is not a readable SQLite database."""
    if not path.exists():
        return
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            connection.execute("PRAGMA schema_version").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise StartupError(
            f"{path} is not a usable SQLite database ({exc}); restore it from a backup, "
            "or move it aside to start with an empty one"
        ) from None


def _sqlite_files(settings: BridgeSettings, data_dir: Path) -> list[Path]:
    files = [data_dir / CONTENT_DB_NAME] if isinstance(settings.content_store, Path) else []
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        files.insert(0, Path(url.database).expanduser())
    return files
