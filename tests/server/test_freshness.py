"""Answers remembered until the database file changes, whoever changes it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ttrpg_mcp.server.store.freshness import Freshness


def _reader(path: Path, reads: list[int]) -> int:
    with sqlite3.connect(path) as connection:
        reads.append(1)
        return int(connection.execute("SELECT count(*) FROM t").fetchone()[0])


def test_an_answer_is_reused_until_another_connection_commits(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with sqlite3.connect(path) as writer:
        writer.execute("CREATE TABLE t (x)")
    freshness = Freshness(path)
    reads: list[int] = []
    assert freshness.remember("count", lambda: _reader(path, reads)) == 0
    assert freshness.remember("count", lambda: _reader(path, reads)) == 0
    assert len(reads) == 1  # the second answer came from memory

    writer = sqlite3.connect(path)  # another connection (as another process would be)
    writer.execute("INSERT INTO t VALUES (1)")
    writer.commit()
    assert freshness.remember("count", lambda: _reader(path, reads)) == 1
    assert len(reads) == 2
    writer.close()
    freshness.close()


def test_a_rolled_back_write_keeps_the_answer(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with sqlite3.connect(path) as writer:
        writer.execute("CREATE TABLE t (x)")
    freshness = Freshness(path)
    reads: list[int] = []
    freshness.remember("count", lambda: _reader(path, reads))
    writer = sqlite3.connect(path)
    writer.execute("INSERT INTO t VALUES (1)")
    writer.rollback()
    writer.close()
    assert freshness.remember("count", lambda: _reader(path, reads)) == 0
    assert len(reads) == 1
    freshness.close()
