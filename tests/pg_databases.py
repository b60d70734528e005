"""Fresh PostgreSQL databases for tests: one per test, made from the test server and dropped after.

The suite runs on SQLite files by default. With ``TTRPG_TEST_DATABASE_URL`` set to a PostgreSQL
server (``postgresql://postgres@127.0.0.1:5432/test``; or ``pytest --database postgres``), every
test that may build a store gets its own database, ``CREATE DATABASE`` on that server, named in
``TTRPG_DATABASE_URL`` for the test (both stores, in-process bridges, spawned bridges and their
MCP children all read it), and dropped at the end whatever became of the test.

With ``TTRPG_TEST_REDIS_URL`` also set (``pytest --redis``), those tests run the several-nodes
configuration: ``TTRPG_REDIS_URL`` names that Redis and ``TTRPG_REDIS_KEY_PREFIX`` the test's own
keys (named after its database), so tests never meet each other's events, presence or rate
limits in a Redis other runs share, and nothing has to be flushed: the test's keys go with its
database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis
from sqlalchemy import make_url

__all__ = [
    "DEFAULT_REDIS",
    "DEFAULT_SERVER",
    "REDIS_ENV",
    "SERVER_ENV",
    "bridge_store_url",
    "fresh_database",
    "redis_settings",
    "server_url",
]

SERVER_ENV = "TTRPG_TEST_DATABASE_URL"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_ENV = "TTRPG_TEST_REDIS_URL"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def server_url() -> str | None:
    """The PostgreSQL server the suite runs against, or None for SQLite."""
    return os.environ.get(SERVER_ENV) or None


def redis_settings(database_url: str) -> dict[str, str]:
    """``TTRPG_REDIS_*`` for a test on ``database_url``: the suite's Redis, keys of its own; or none."""
    redis = os.environ.get(REDIS_ENV)
    if not redis:
        return {}
    database = make_url(database_url).database
    return {"TTRPG_REDIS_URL": redis, "TTRPG_REDIS_KEY_PREFIX": f"{database}:"}


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_database(server: str = DEFAULT_SERVER) -> Iterator[str]:
    """A new, empty database on ``server`` for the block; its SQLAlchemy URL (psycopg 3)."""
    name = f"ttrpg_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_dsn(server), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(server)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(_dsn(server), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _drop_redis_keys(f"{name}:")


def _drop_redis_keys(prefix: str) -> None:
    """Remove the keys a test's bridges left under its prefix (streams keep no TTL)."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        return
    with redis.Redis.from_url(url) as client:
        stale = list(client.scan_iter(match=f"{prefix}*", count=500))
        if stale:
            client.unlink(*stale)


def bridge_store_url(data_dir: Path) -> str:
    """The URL a test's bridge store opens: the test's PostgreSQL database, or bridge.db in ``data_dir``."""
    return os.environ.get("TTRPG_DATABASE_URL") or f"sqlite:///{data_dir / 'bridge.db'}"
