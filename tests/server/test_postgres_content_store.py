"""The content store on a real PostgreSQL database: migrations, rules search, change order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select, text

from pg_databases import DEFAULT_SERVER, fresh_database, server_url
from ttrpg_mcp.bridge.store import BridgeStore
from ttrpg_mcp.config import normalize_database_url
from ttrpg_mcp.server import campaigns, entities, rules
from ttrpg_mcp.server.app import open_database
from ttrpg_mcp.server.store.database import Database
from ttrpg_mcp.server.store.models import ContentChange


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, whichever database the rest of the suite runs on."""
    with fresh_database(server_url() or DEFAULT_SERVER) as url:
        yield url


@pytest.fixture
def content(postgres_url: str, data_dir: Path) -> Iterator[Database]:
    database = open_database_at(postgres_url, data_dir)
    try:
        yield database
    finally:
        database.close()


def open_database_at(url: str, data_dir: Path) -> Database:
    database = Database.open(data_dir, url)
    with database.write() as db:
        rules.ensure_compendium(db)
    return database


def test_a_bare_postgresql_url_means_psycopg_3() -> None:
    """postgresql:// and postgres:// are read as postgresql+psycopg://; other URLs are kept."""
    assert normalize_database_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_database_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_database_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_the_content_store_migrates_into_postgresql_with_its_own_version_table(
    content: Database, data_dir: Path
) -> None:
    """Tables, the search column and the notify trigger exist; no SQLite file was made."""
    assert content.dialect == "postgresql"
    with content.read() as db:
        version = db.scalar(text("SELECT version_num FROM content_alembic_version"))
        columns = set(
            db.scalars(
                text(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'rule_sections' "
                    "AND table_schema = 'ttrpg_content'"
                )
            )
        )
        triggers = set(db.scalars(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))
    assert version == "0005_change_notify"
    assert "search" in columns
    assert "content_changes_notify" in triggers
    assert not (data_dir / "content.db").exists()


def test_both_stores_share_one_database_with_two_histories(postgres_url: str, data_dir: Path) -> None:
    """The bridge's tables in public, the content's in ttrpg_content: each its own campaigns."""
    bridge = BridgeStore(postgres_url)
    try:
        bridge.migrate()
        content = open_database_at(postgres_url, data_dir)
        content.close()
        bridge.migrate()  # a second start: nothing to do
        with bridge.session(readonly=True) as db:
            histories = dict(
                db.execute(
                    text(
                        "SELECT table_schema, table_name FROM information_schema.tables "
                        "WHERE table_name LIKE '%alembic_version'"
                    )
                ).all()
            )
            homes = set(
                db.scalars(
                    text("SELECT table_schema FROM information_schema.tables WHERE table_name = 'campaigns'")
                )
            )
    finally:
        bridge.close()
    assert histories == {"public": "bridge_alembic_version", "ttrpg_content": "content_alembic_version"}
    assert homes == {"public", "ttrpg_content"}


def test_ttrpg_mcp_reads_the_database_url_from_the_environment(
    postgres_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_database (what the ttrpg-mcp command calls) follows TTRPG_DATABASE_URL."""
    monkeypatch.setenv("TTRPG_DATABASE_URL", postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    database = open_database(data_dir)
    try:
        assert database.dialect == "postgresql"
        with database.write() as db:
            campaigns.create_campaign(db, name="Shared")
    finally:
        database.close()
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as connection:
        names = [row[0] for row in connection.execute("SELECT name FROM ttrpg_content.campaigns")]
    assert names == ["Shared"]


def test_rules_search_on_postgresql_finds_what_fts5_finds(content: Database, data_dir: Path) -> None:
    """Same matches, shape and score scale as FTS5, a best hit among FTS5's best, ** snippets, AND then OR."""
    sqlite_dir = data_dir / "sqlite"
    sqlite_dir.mkdir()
    local = open_database_at_sqlite(sqlite_dir)
    try:
        for query in ("grappling", "prone condition", "fireball damage"):
            with content.read() as db:
                on_postgres = rules.search(db, query, limit=5)
            with local.read() as db:
                on_sqlite = rules.search(db, query, limit=5)
            assert on_postgres.hits, query
            assert on_postgres.hits[0].section in {hit.section for hit in on_sqlite.hits[:3]}, query
            assert on_postgres.total == on_sqlite.total, query
            assert set(on_postgres.model_dump()) == set(on_sqlite.model_dump())
            for results in (on_postgres, on_sqlite):  # one scale on both engines
                scores = [hit.score for hit in results.hits]
                assert scores[0] == 1.0, query
                assert all(0 <= score <= 1.0 for score in scores), (query, scores)
                assert scores == sorted(scores, reverse=True)
        with content.read() as db:
            grapple = rules.search(db, "grappling")
            assert "**" in grapple.hits[0].snippet
            anyword = rules.search(db, "zzzunknown grapple")  # no section has both: any word then
            assert anyword.hits
            assert anyword.hits[0].title.startswith("Grappl")
            tricky = rules.search(db, "'\"; DROP TABLE rule_sections; -- prone & | !")
            assert tricky.hits
            spells = rules.search(db, "fire", kind="spell")
            assert spells.hits
            assert all(hit.kind == "spell" for hit in spells.hits)
    finally:
        local.close()


def open_database_at_sqlite(data_dir: Path) -> Database:
    database = Database(data_dir / "content.db")
    database.migrate()
    with database.write() as db:
        rules.ensure_compendium(db)
    return database


def test_change_ids_commit_in_the_order_they_were_given(content: Database) -> None:
    """A writer that took a change id waits: a follower never sees a later id before an earlier."""
    with content.write() as db:
        campaign_id = campaigns.create_campaign(db, name="Order").id
    first_holds = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def slow_writer() -> None:
        try:
            with content.write() as db:
                entities.create_character(db, campaign_id, name="Slow", hp_max=5)
                db.flush()  # its change row (and id) exists, uncommitted
                first_holds.set()
                release.wait(30)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert first_holds.wait(30)
    second_done = threading.Event()

    def fast_writer() -> None:
        with content.write() as db:
            entities.create_character(db, campaign_id, name="Fast", hp_max=5)
        second_done.set()

    fast = threading.Thread(target=fast_writer)
    fast.start()
    # The second writer waits at its change for the first one's commit (an advisory lock)...
    deadline = time.monotonic() + 30
    while not _advisory_waiters(content):
        assert time.monotonic() < deadline, "the second writer never waited for the first"
        time.sleep(0.01)
    # ...so a follower still sees nothing past the campaign: no later id before an earlier one.
    with content.read() as db:
        seen = list(
            db.scalars(select(ContentChange.entity_kind).where(ContentChange.campaign_id == campaign_id))
        )
    assert seen == ["campaign"]
    assert not second_done.is_set()
    release.set()
    thread.join(30)
    fast.join(30)
    assert not errors
    with content.read() as db:
        ids = list(db.scalars(select(ContentChange.id).order_by(ContentChange.id)))
    assert len(ids) == 3
    with content.read() as db:
        names = list(
            db.scalars(
                text(
                    "SELECT name FROM characters c JOIN content_changes x ON x.entity_id = c.id ORDER BY x.id"
                )
            )
        )
    assert names == ["Slow", "Fast"]


def _advisory_waiters(database: Database) -> int:
    with database.read() as db:
        return int(
            db.scalar(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")) or 0
        )
