"""Fixtures shared by every test: the async backend, a scratch data directory, the database.

The database is SQLite files in each test's data directory unless the suite runs against
PostgreSQL (``TTRPG_TEST_DATABASE_URL``, or ``--database postgres``; see ``tests/pg_databases.py``):
then every test gets a fresh PostgreSQL database in ``TTRPG_DATABASE_URL`` (a copy of a migrated
template: both stores' schemas are there already), except the tests
marked ``sqlite``, which are about the SQLite files themselves and run on them always. With
``TTRPG_TEST_REDIS_URL`` too (``--redis``), those tests also get ``TTRPG_REDIS_URL`` and a key
prefix of their own: every bridge runs as one node of several (PostgreSQL and Redis).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pg_databases import (
    DEFAULT_REDIS,
    DEFAULT_SERVER,
    REDIS_ENV,
    SERVER_ENV,
    DatabaseSupply,
    check_services,
    migrated_template,
    redis_settings,
    server_url,
)

# Tests of pure logic that open no store and no backplane: no database is made for them, and
# they run the same in every configuration.
_NO_STORE = (
    "tests/dice/",
    "tests/test_tool_arguments.py",
    "tests/server/test_hit_points.py",
    "tests/server/test_ingest.py",
    "tests/server/test_secrecy.py",
    "tests/bridge/test_auth_passwords.py",
    "tests/bridge/test_canvas.py",
    "tests/bridge/test_fault_limits.py",
    "tests/bridge/test_frames.py",
    "tests/bridge/test_initiative.py",
    "tests/bridge/test_limits.py",
    "tests/bridge/test_mcp_event_store.py",
    "tests/bridge/test_permissions.py",
    "tests/bridge/test_protocol.py",
    "tests/bridge/test_server_messages.py",
    "tests/bridge/test_state.py",
)
# What a test's store and Redis come from; set per module and per test, never inherited.
_STORE_ENV = ("TTRPG_DATABASE_URL", "TTRPG_REDIS_URL", "TTRPG_REDIS_KEY_PREFIX")
# The wider-scoped fixtures that hand out databases, as opposed to those that start bridges on one.
_STORE_FIXTURES = ("module_database_url", "database_supply")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=("sqlite", "postgres"),
        default=None,
        help=f"run the stores on SQLite (default) or on fresh PostgreSQL databases (${SERVER_ENV})",
    )
    parser.addoption(
        "--redis",
        action="store_true",
        help=f"with PostgreSQL, bridges also use Redis (${REDIS_ENV}, default {DEFAULT_REDIS})",
    )
    parser.addoption(
        "--only-store-dependent",
        action="store_true",
        help="with PostgreSQL, leave out the tests that run on SQLite or on no store in every "
        "configuration (pure logic, and those marked sqlite): what a SQLite run already covered",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite: a test of the SQLite files; runs on SQLite in every configuration"
    )
    if config.getoption("--database") == "postgres" and not os.environ.get(SERVER_ENV):
        os.environ[SERVER_ENV] = DEFAULT_SERVER
    if config.getoption("--redis") and not os.environ.get(REDIS_ENV):
        os.environ[REDIS_ENV] = DEFAULT_REDIS
    if os.environ.get(REDIS_ENV) and not server_url():
        raise pytest.UsageError(f"${REDIS_ENV} needs ${SERVER_ENV} too: Redis runs beside PostgreSQL")
    try:
        check_services()
    except RuntimeError as error:
        # Asked for and missing is an error of the whole run, never a skip.
        raise pytest.UsageError(str(error)) from error


@pytest.fixture(scope="session")
def database_supply() -> Iterator[DatabaseSupply]:
    """The run's PostgreSQL databases: copies of the migrated template, made ahead of each test."""
    server = server_url()
    assert server is not None
    supply = DatabaseSupply(server, migrated_template(server))
    try:
        yield supply
    finally:
        supply.close()


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio, the loop uvicorn and the SDK use in production."""
    return "asyncio"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--only-store-dependent``: deselect what a run on SQLite has already run unchanged.

    ``make test`` runs the suite twice, on SQLite and then on PostgreSQL + Redis; the second pass
    needs only the tests whose store or backplane differs between the two. A test that opens no
    store (``_NO_STORE``) or always opens SQLite (marked ``sqlite``) would only repeat itself.
    """
    if not config.getoption("--only-store-dependent"):
        return
    if server_url() is None:
        raise pytest.UsageError("--only-store-dependent needs --database postgres (or $" + SERVER_ENV + ")")
    kept = [item for item in items if not _on_sqlite(item)]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if _on_sqlite(item)])
        items[:] = kept


def _on_sqlite(node: pytest.Item | pytest.Collector) -> bool:
    where = Path(str(node.path)).as_posix()
    return (
        server_url() is None
        or any(part in where for part in _NO_STORE)
        or bool(node.get_closest_marker("sqlite"))
    )


def _uses_module_fixtures(item: pytest.Item) -> bool:
    """Whether the test uses a fixture of this suite that outlives it (a module's bridge)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    for name in info.names_closure:
        definitions = info.name2fixturedefs.get(name) or ()
        for definition in definitions[-1:]:
            module = getattr(definition.func, "__module__", "")
            ours = module.startswith("test_") or module == "conftest"
            if ours and definition.scope != "function" and name not in _STORE_FIXTURES:
                return True
    return False


@pytest.fixture(scope="module", autouse=True)
def module_database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A module's database, for the bridges its module-scoped fixtures start (set before them)."""
    saved = {name: os.environ.get(name) for name in _STORE_ENV}
    try:
        for name in _STORE_ENV:
            os.environ.pop(name, None)
        if _on_sqlite(request.node):
            yield None
            return
        supply: DatabaseSupply = request.getfixturevalue("database_supply")
        with supply.database() as url:
            os.environ.update({"TTRPG_DATABASE_URL": url} | redis_settings(url))
            yield url
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _use_store(monkeypatch: pytest.MonkeyPatch, url: str | None) -> None:
    """Point the test's environment at ``url`` (and its Redis keys), or at SQLite files for None."""
    for name in _STORE_ENV:
        monkeypatch.delenv(name, raising=False)
    if url is not None:
        for name, value in ({"TTRPG_DATABASE_URL": url} | redis_settings(url)).items():
            monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def database_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """The test's ``TTRPG_DATABASE_URL``: a fresh PostgreSQL database, or None (SQLite files).

    Fixtures of a wider scope (a bridge shared by a module's tests) were set up before this one,
    on the module's database; what a test builds itself gets a database of its own.
    """
    server = server_url()
    if server is None or _on_sqlite(request.node):
        _use_store(monkeypatch, None)
        yield None
        return
    shared = request.getfixturevalue("module_database_url")
    if shared is not None and _uses_module_fixtures(request.node):
        # A bridge the module's tests share already lives in the module's database; what the
        # test runs beside it (an admin command, say) must see the same one.
        _use_store(monkeypatch, shared)
        yield shared
        return
    supply: DatabaseSupply = request.getfixturevalue("database_supply")
    with supply.database() as url:
        _use_store(monkeypatch, url)
        yield url


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh, empty data directory for one test."""
    path = tmp_path / "data"
    path.mkdir()
    return path
