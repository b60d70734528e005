"""Several bridge nodes for end-to-end tests: one PostgreSQL database, one Redis of their own.

Each test gets a fresh database on the machine's PostgreSQL (127.0.0.1:5432, trust auth) and its
own ``redis-server`` on a free port (no persistence), so a test may restart or stop that Redis
without touching anyone else's. The nodes share the signing key by configuration.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from bridge_process import free_port

from pg_databases import DEFAULT_SERVER, fresh_database, server_url

__all__ = ["RedisServer", "cluster_env", "postgres_database", "redis_server"]

_START_TIMEOUT = 20.0
_POLL = 0.05


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database for one test (on the suite's PostgreSQL server); its URL."""
    with fresh_database(server_url() or DEFAULT_SERVER) as url:
        yield url


@dataclass
class RedisServer:
    """A ``redis-server`` of the test's own, which the test may stop and start again."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        with (self.folder / f"redis-{self.port}.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            with contextlib.suppress(redis.ConnectionError):
                # Ours, not another server that took the port first (ours then exits on bind).
                if client.ping() and client.info("server")["process_id"] == self.process.pid:
                    return
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"redis-server on port {self.port} did not start")
            time.sleep(_POLL)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(_START_TIMEOUT)
        self.process = None


@contextmanager
def redis_server(folder: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def cluster_env(database_url: str, redis_url: str) -> dict[str, str]:
    """What every node of one cluster is started with: the shared store, Redis and signing key."""
    return {
        "TTRPG_DATABASE_URL": database_url,
        "TTRPG_REDIS_URL": redis_url,
        "TTRPG_JWT_SECRET": secrets.token_hex(32),
    }
