"""The content store and rules index on a real SQLite file, without the MCP layer."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from hypothesis import given, settings
from hypothesis import strategies as st

from ttrpg_mcp.server import campaigns, rules
from ttrpg_mcp.server.app import open_database
from ttrpg_mcp.server.errors import ContentError, InvalidInputError
from ttrpg_mcp.server.ingest import Section
from ttrpg_mcp.server.store.database import CONTENT_DB_NAME, Database


@pytest.mark.sqlite  # reads the SQLite files themselves
def test_opening_migrates_and_uses_write_ahead_logging(data_dir: Path) -> None:
    """A new data directory gets the full schema, WAL mode and the FTS5 table."""
    database = open_database(data_dir)
    database.close()
    connection = sqlite3.connect(data_dir / CONTENT_DB_NAME)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"campaigns", "characters", "rule_sections", "rule_sections_fts", "alembic_version"} <= tables
        assert "content_changes" in tables
        head = ScriptDirectory(
            str(resources.files("ttrpg_mcp.server.store") / "migrations")
        ).get_current_head()
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head
    finally:
        connection.close()


def test_reopening_does_not_reindex_an_unchanged_compendium(data_dir: Path) -> None:
    """The bundled compendium is indexed once; a second start finds it up to date."""
    open_database(data_dir).close()
    database = Database.open(data_dir)
    try:
        with database.write() as db:
            assert rules.ensure_compendium(db) is False
    finally:
        database.close()


def test_a_failed_write_rolls_back_completely(data_dir: Path) -> None:
    """An error in the middle of a unit of work leaves nothing half-written."""
    database = open_database(data_dir)
    try:

        def half_written() -> None:
            with database.write() as db:
                campaigns.create_campaign(db, name="Half")
                raise InvalidInputError("boom")

        with pytest.raises(InvalidInputError):
            half_written()
        with database.read() as db:
            assert campaigns.list_campaigns(db).campaigns == []
    finally:
        database.close()


def test_reimporting_a_source_replaces_its_sections_in_the_index(data_dir: Path) -> None:
    """Import twice with different text: only the new text is found."""
    database = open_database(data_dir)
    first = [Section(source="home", slug="a", title="Alpha", kind="rule", path="Alpha", body="quixotic rule")]
    second = [Section(source="home", slug="b", title="Beta", kind="rule", path="Beta", body="zenith rule")]
    try:
        with database.write() as db:
            rules.import_sections(db, first)
        with database.write() as db:
            rules.import_sections(db, second)
        with database.read() as db:
            assert rules.search(db, "quixotic").hits == []
            assert [h.title for h in rules.search(db, "zenith").hits] == ["Beta"]
            home = next(s for s in rules.list_sources(db).sources if s.slug == "home")
            assert home.section_count == 1
            assert home.kinds == {"rule": 1}
    finally:
        database.close()


def test_search_prefers_title_matches_and_stems_words(data_dir: Path) -> None:
    """BM25 weights the title; porter stemming finds 'grappling' from 'grapple'."""
    database = open_database(data_dir)
    sections = [
        Section(
            source="t",
            slug="x",
            title="Falling",
            kind="rule",
            path="",
            body="You land prone after grappling.",
        ),
        Section(source="t", slug="y", title="Grapple", kind="rule", path="", body="Seize a creature."),
    ]
    try:
        with database.write() as db:
            rules.import_sections(db, sections)
        with database.read() as db:
            hits = rules.search(db, "grapple", source="t").hits
            assert [h.title for h in hits] == ["Grapple", "Falling"]
            assert hits[0].score == 1.0  # relative to the best hit
            assert 0 < hits[1].score < hits[0].score
            assert "**" in hits[1].snippet
    finally:
        database.close()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One store with the compendium, shared by the examples of a property test."""
    database = open_database(tmp_path_factory.mktemp("indexed"))
    yield database
    database.close()


@settings(max_examples=150, deadline=None)
@given(query=st.text(max_size=80))
def test_search_never_fails_on_arbitrary_text(indexed: Database, query: str) -> None:
    """Any text is either searched or refused with a content error, never an SQL error."""
    with indexed.read() as db:
        try:
            results = rules.search(db, query)
        except ContentError:
            return
        assert results.total >= len(results.hits)
