"""The bridge's store on the run's database (a real SQLite file, or PostgreSQL): migrations, units of
work, timestamps, threads; the tests of the SQLite file itself run on SQLite always.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import anyio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge.store import Base, BridgeStore, RefreshToken, User, utcnow

# In-process SQLite: every wait here is a local file lock, bounded by busy_timeout.
TEST_TIMEOUT = 10.0


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def store(data_dir: Path) -> Iterator[BridgeStore]:
    """A migrated store in the scratch data directory."""
    store = BridgeStore(bridge_store_url(data_dir))
    store.migrate()
    yield store
    store.close()


_NOT_A_HASH = "not-an-argon2-hash"


def _user(name: str = "alice") -> User:
    return User(
        id=f"usr_{name}", name=name, name_key=name.lower(), display_name=name, password_hash=_NOT_A_HASH
    )


@pytest.mark.sqlite  # the SQLite file itself
def test_migrate_creates_the_tables_and_the_parent_directory(data_dir: Path) -> None:
    """A store in a directory that does not exist yet gets it, the schema, WAL and its own version table."""
    path = data_dir / "nested" / "bridge.db"
    store = BridgeStore(_url(path))
    try:
        store.migrate()
    finally:
        store.close()
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"users", "refresh_tokens", "registration_invites", "bridge_alembic_version"} <= tables
        assert "alembic_version" not in tables
        scripts = ScriptDirectory(str(resources.files("ttrpg_mcp.bridge.store") / "migrations"))
        head = scripts.get_current_head()
        assert connection.execute("SELECT version_num FROM bridge_alembic_version").fetchone()[0] == head
    finally:
        connection.close()


@pytest.mark.sqlite  # the SQLite file itself
def test_the_old_initiative_copy_in_a_shared_state_is_cleared_by_the_migration(tmp_path: Path) -> None:
    """0005: the order kept by the bridge before the one tracker goes; notes stay."""
    from importlib import resources

    from alembic import command
    from alembic.config import Config

    from ttrpg_mcp.bridge.store import database as store_database

    path = tmp_path / "bridge.db"
    store = BridgeStore(_url(path))
    try:
        with resources.as_file(resources.files(store_database.__package__) / "migrations") as scripts:
            config = Config()
            config.set_main_option("script_location", str(scripts))
            with store._writer.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "0004")
        old = {"initiative_order": [{"id": "a", "name": "Orc", "initiative": 9}], "active_turn": 0}
        raw = sqlite3.connect(path)
        with raw:
            raw.execute(
                "INSERT INTO campaigns (id, name, created_at, archived, epoch, last_seq) "
                "VALUES ('camp_1', 'C', '2026-01-01', 0, 'ep', 0)"
            )
            raw.execute(
                "INSERT INTO shared_states (campaign_id, document, version, last_update, history) "
                "VALUES ('camp_1', ?, 3, '2026-01-01', '[]')",
                (json.dumps(old | {"round_number": 4, "shared_notes": "keep me"}),),
            )
        raw.close()
        store.migrate()
    finally:
        store.close()
    raw = sqlite3.connect(path)
    try:
        (document,) = raw.execute("SELECT document FROM shared_states").fetchone()
    finally:
        raw.close()
    assert json.loads(document) == {
        "initiative_order": [],
        "active_turn": 0,
        "round_number": 1,
        "shared_notes": "keep me",
    }


def test_migrating_again_is_a_no_op_that_keeps_the_data(store: BridgeStore) -> None:
    """A second migrate, as on every start, leaves the schema and the rows alone."""
    with store.session() as db:
        db.add(_user())
    store.migrate()
    with store.session(readonly=True) as db:
        assert db.scalars(select(User.name)).all() == ["alice"]


def test_the_models_match_the_migrations(store: BridgeStore, data_dir: Path) -> None:
    """Alembic finds nothing to autogenerate: models and migration scripts describe one schema."""
    engine = create_engine(bridge_store_url(data_dir))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "version_table": "bridge_alembic_version"}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_a_unit_of_work_commits_on_success_and_rolls_back_on_error(store: BridgeStore) -> None:
    """What a failing unit of work wrote is gone; what a successful one wrote stays."""
    with store.session() as db:
        db.add(_user("kept"))

    def half_written() -> None:
        with store.session() as db:
            db.add(_user("lost"))
            db.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        half_written()
    with store.session(readonly=True) as db:
        assert db.scalars(select(User.name)).all() == ["kept"]


def test_a_readonly_unit_of_work_writes_nothing(store: BridgeStore) -> None:
    """Changes made in a read-only unit of work are discarded, not committed."""
    with store.session(readonly=True) as db:
        db.add(_user())
        db.flush()
    with store.session(readonly=True) as db:
        assert db.scalars(select(User)).all() == []


def test_objects_stay_readable_after_their_unit_of_work(store: BridgeStore) -> None:
    """Results leave a unit of work detached but with their attributes loaded."""
    with store.session() as db:
        db.add(_user())
    with store.session(readonly=True) as db:
        user = db.scalars(select(User)).one()
    assert user.display_name == "alice"


def test_timestamps_come_back_aware_and_in_utc(store: BridgeStore) -> None:
    """SQLite has no time zones, yet a stored datetime reads back as the same instant in UTC."""
    moment = datetime(2030, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with store.session() as db:
        db.add(_user())
        db.flush()
        db.add(
            RefreshToken(jti="j1", user_id="usr_alice", family_id="f", issued_at=moment, expires_at=moment)
        )
    with store.session(readonly=True) as db:
        token = db.get(RefreshToken, "j1")
    assert token is not None
    assert token.issued_at == moment
    assert token.issued_at.tzinfo == UTC


def test_naive_datetimes_are_refused(store: BridgeStore) -> None:
    """A naive datetime is ambiguous, so storing one fails instead of guessing its zone."""
    with store.session() as db:
        db.add(_user())
    naive = RefreshToken(
        jti="j1", user_id="usr_alice", family_id="f", issued_at=datetime(2030, 1, 1), expires_at=utcnow()
    )

    def store_naive() -> None:
        with store.session() as db:
            db.add(naive)

    with pytest.raises(StatementError, match="naive"):
        store_naive()


def test_foreign_keys_are_enforced(store: BridgeStore) -> None:
    """A refresh token for a user that does not exist is refused by the database itself."""
    with pytest.raises(IntegrityError), store.session() as db:
        db.add(
            RefreshToken(
                jti="j1", user_id="usr_nobody", family_id="f", issued_at=utcnow(), expires_at=utcnow()
            )
        )


@pytest.mark.sqlite  # the SQLite file itself
def test_an_in_memory_database_is_refused() -> None:
    """Pooled connections to :memory: would each see a different empty database."""
    with pytest.raises(ValueError, match="in-memory"):
        BridgeStore("sqlite://")


@pytest.mark.anyio
async def test_run_does_the_work_in_a_worker_thread(store: BridgeStore) -> None:
    """run() returns the unit of work's result, computed off the event loop's thread."""
    loop_thread = threading.get_ident()

    def work(db: Session) -> int:
        db.add(_user())
        return threading.get_ident()

    with anyio.fail_after(TEST_TIMEOUT):
        worker_thread = await store.run(work)
        names = await store.run(lambda db: db.scalars(select(User.name)).all(), readonly=True)
        await store.ping()
    assert worker_thread != loop_thread
    assert names == ["alice"]
