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

Migrating both stores costs a second or more per database, paid by every test that starts a
bridge; the suite's own databases are therefore copies of a migrated TEMPLATE database (``CREATE
DATABASE ... TEMPLATE``, a file copy), made once per set of migration scripts and kept on the
server under a name derived from their contents, so that a changed script gets a new template and
later runs reuse it. Tests about migrating into PostgreSQL ask for an empty database instead.
The suite's databases come from a :class:`DatabaseSupply`, which makes the next one (and drops the
last one) in the background while a test runs.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import psycopg
import redis
from sqlalchemy import make_url

__all__ = [
    "DEFAULT_REDIS",
    "DEFAULT_SERVER",
    "REDIS_ENV",
    "SERVER_ENV",
    "DatabaseSupply",
    "bridge_store_url",
    "check_services",
    "fresh_database",
    "migrated_template",
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


def check_services() -> None:
    """Fail at once, in one sentence, when the PostgreSQL or Redis the run was given does not answer.

    A run asked for them; without this each test would fail on its own with a connection error.
    """
    server = server_url()
    if server is not None:
        try:
            with psycopg.connect(_dsn(server), connect_timeout=10):
                pass
        except psycopg.OperationalError as error:
            raise RuntimeError(f"${SERVER_ENV}: PostgreSQL at {server} does not answer ({error})") from error
    url = os.environ.get(REDIS_ENV)
    if url:
        try:
            with redis.Redis.from_url(url, socket_connect_timeout=10) as client:
                client.ping()
        except redis.RedisError as error:
            raise RuntimeError(f"${REDIS_ENV}: Redis at {url} does not answer ({error})") from error


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _database_url(server: str, name: str) -> str:
    """The SQLAlchemy URL (psycopg 3) of database ``name`` on ``server``."""
    return (
        make_url(server)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )


def _migrations_digest() -> str:
    """A digest of both stores' migration scripts: the template's name changes with any of them."""
    digest = hashlib.sha256()
    for package in ("ttrpg_mcp.bridge.store", "ttrpg_mcp.server.store"):
        with resources.as_file(resources.files(package) / "migrations") as folder:
            for script in sorted(folder.rglob("*.py")):
                digest.update(script.relative_to(folder).as_posix().encode())
                digest.update(script.read_bytes())
    return digest.hexdigest()[:16]


def _migrate_both_stores(url: str) -> None:
    """Bring the bridge's and the content store's schemas in ``url`` to their newest revisions."""
    from ttrpg_mcp.bridge.store import BridgeStore
    from ttrpg_mcp.server.store.database import Database

    bridge = BridgeStore(url)
    try:
        bridge.migrate()
    finally:
        bridge.close()
    with tempfile.TemporaryDirectory() as unused_data_dir:
        Database.open(Path(unused_data_dir), url).close()


def migrated_template(server: str) -> str:
    """The name of the migrated template database on ``server``, made first if it is missing.

    Runs that start together (several pytest processes on one server) take turns under an
    advisory lock; the template is built under a scratch name and renamed when complete, so an
    interrupted build never leaves a half-migrated template behind.
    """
    name = f"ttrpg_template_{_migrations_digest()}"
    with psycopg.connect(_dsn(server), autocommit=True) as admin:
        admin.execute("SELECT pg_advisory_lock(hashtext('ttrpg_test_template'))")
        try:
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return name
            scratch = f"ttrpg_building_{uuid.uuid4().hex[:16]}"
            admin.execute(f'CREATE DATABASE "{scratch}"')
            try:
                _migrate_both_stores(_database_url(server, scratch))
                admin.execute(f'ALTER DATABASE "{scratch}" RENAME TO "{name}"')
            except BaseException:
                admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
                raise
            admin.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true')
            return name
        finally:
            admin.execute("SELECT pg_advisory_unlock(hashtext('ttrpg_test_template'))")


def _create(server: str, template: str | None) -> str:
    """CREATE DATABASE under a new name, empty or as a copy of ``template``; the name."""
    name = f"ttrpg_test_{uuid.uuid4().hex[:16]}"
    source = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(_dsn(server), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"{source}')
    return name


def _drop(server: str, name: str) -> None:
    """Drop a test's database (ending what is still connected) and its Redis keys."""
    with psycopg.connect(_dsn(server), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _drop_redis_keys(f"{name}:")


@contextmanager
def fresh_database(server: str = DEFAULT_SERVER, *, template: str | None = None) -> Iterator[str]:
    """A new database on ``server`` for the block, empty or a copy of ``template``; its URL."""
    name = _create(server, template)
    try:
        yield _database_url(server, name)
    finally:
        _drop(server, name)


class DatabaseSupply:
    """Copies of the template, one made ahead while the current test runs, dropped behind it.

    ``CREATE DATABASE`` and ``DROP DATABASE`` wait on the server's disk flushes, a second or so
    each on a busy machine; done in one worker thread during the tests, they overlap with the
    tests' own work instead of adding to it. A failure in the worker surfaces at the next
    :meth:`database` or at :meth:`close`, never silently.
    """

    def __init__(self, server: str, template: str) -> None:
        self._server = server
        self._template = template
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases")
        self._next: Future[str] | None = None
        self._drops: list[Future[None]] = []

    def _prepare(self) -> None:
        self._next = self._worker.submit(_create, self._server, self._template)

    @contextmanager
    def database(self) -> Iterator[str]:
        """A fresh copy of the template for the block; its URL. Dropped after it, in the background."""
        pending, self._next = self._next or self._worker.submit(_create, self._server, self._template), None
        name = pending.result()
        self._prepare()
        try:
            yield _database_url(self._server, name)
        finally:
            self._drops.append(self._worker.submit(_drop, self._server, name))
            for done in [drop for drop in self._drops if drop.done()]:
                self._drops.remove(done)
                done.result()

    def close(self) -> None:
        """Drop the database made ahead and wait for every drop; raise the first failure."""
        if self._next is not None:
            self._drops.append(self._worker.submit(_drop, self._server, self._next.result()))
            self._next = None
        self._worker.shutdown(wait=True)
        for drop in self._drops:
            drop.result()


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
