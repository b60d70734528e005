"""Fixtures shared by every test: the async backend, a scratch data directory, the database.

The database is SQLite files in each test's data directory unless the suite runs against
PostgreSQL (``TTRPG_TEST_DATABASE_URL``, or ``--database postgres``; see ``tests/pg_databases.py``):
then every test gets a fresh PostgreSQL database in ``TTRPG_DATABASE_URL``, except the tests
marked ``sqlite``, which are about the SQLite files themselves and run on them always.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pg_databases import DEFAULT_SERVER, SERVER_ENV, fresh_database, server_url

# Tests of pure logic that never open a store: no database is made for them.
_NO_STORE = ("tests/dice/",)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=("sqlite", "postgres"),
        default=None,
        help=f"run the stores on SQLite (default) or on fresh PostgreSQL databases (${SERVER_ENV})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite: a test of the SQLite files; runs on SQLite in every configuration"
    )
    if config.getoption("--database") == "postgres" and not os.environ.get(SERVER_ENV):
        os.environ[SERVER_ENV] = DEFAULT_SERVER


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio, the loop uvicorn and the SDK use in production."""
    return "asyncio"


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
            if ours and definition.scope != "function" and name != "module_database_url":
                return True
    return False


@pytest.fixture(scope="module", autouse=True)
def module_database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A module's database, for the bridges its module-scoped fixtures start (set before them)."""
    saved = os.environ.get("TTRPG_DATABASE_URL")
    try:
        if _on_sqlite(request.node):
            os.environ.pop("TTRPG_DATABASE_URL", None)
            yield None
            return
        server = server_url()
        assert server is not None
        with fresh_database(server) as url:
            os.environ["TTRPG_DATABASE_URL"] = url
            yield url
    finally:
        if saved is None:
            os.environ.pop("TTRPG_DATABASE_URL", None)
        else:
            os.environ["TTRPG_DATABASE_URL"] = saved


@pytest.fixture(autouse=True)
def database_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """The test's ``TTRPG_DATABASE_URL``: a fresh PostgreSQL database, or None (SQLite files).

    Fixtures of a wider scope (a bridge shared by a module's tests) were set up before this one,
    on the module's database; what a test builds itself gets a database of its own.
    """
    server = server_url()
    if server is None or _on_sqlite(request.node):
        monkeypatch.delenv("TTRPG_DATABASE_URL", raising=False)
        yield None
        return
    shared = request.getfixturevalue("module_database_url")
    if shared is not None and _uses_module_fixtures(request.node):
        # A bridge the module's tests share already lives in the module's database; what the
        # test runs beside it (an admin command, say) must see the same one.
        monkeypatch.setenv("TTRPG_DATABASE_URL", shared)
        yield shared
        return
    with fresh_database(server) as url:
        monkeypatch.setenv("TTRPG_DATABASE_URL", url)
        yield url


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh, empty data directory for one test."""
    path = tmp_path / "data"
    path.mkdir()
    return path
