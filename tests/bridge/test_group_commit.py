"""Group commit: units that arrive together share one transaction; each fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge.store import BridgeStore
from ttrpg_mcp.bridge.store.group_commit import GroupCommit

# A scratch table ordered by SQLite's rowid; on PostgreSQL group commit runs under every bridge test.
pytestmark = [pytest.mark.anyio, pytest.mark.sqlite]


@pytest.fixture
def store(tmp_path: Path) -> BridgeStore:
    store = BridgeStore(bridge_store_url(tmp_path))
    with store.session() as db:
        db.execute(text("CREATE TABLE t (x INTEGER)"))
    return store


def _insert(value: int) -> Callable[[Session], int]:
    def unit(db: Session) -> int:
        db.execute(text("INSERT INTO t VALUES (:x)"), {"x": value})
        if value < 0:
            raise ValueError("negative")
        return value

    return unit


def _stored(store: BridgeStore) -> list[int]:
    with store.session(readonly=True) as db:
        return [row[0] for row in db.execute(text("SELECT x FROM t ORDER BY rowid"))]


async def test_units_queued_together_share_a_transaction_and_run_after_in_order(store: BridgeStore) -> None:
    transactions = 0
    delivered: list[tuple[int, list[int]]] = []

    async def run(fn: Callable[[Session], Any]) -> Any:
        nonlocal transactions
        transactions += 1
        return await store.run(fn)

    group = GroupCommit(run)

    async def after(value: int) -> None:
        delivered.append((value, _stored(store)))  # what is stored when it is sent

    results = await asyncio.gather(*(group(_insert(i), after) for i in range(10)))
    assert results == list(range(10))
    assert _stored(store) == list(range(10))
    assert [value for value, _ in delivered] == list(range(10))  # in queue order
    assert all(value in stored for value, stored in delivered)  # stored before sent
    assert transactions < 10  # the first runs alone, the nine queued meanwhile share one
    store.close()


async def test_a_failing_unit_fails_only_its_caller(store: BridgeStore) -> None:
    group = GroupCommit(store.run)
    outcomes = await asyncio.gather(*(group(_insert(i)) for i in (1, 2, -3, 4)), return_exceptions=True)
    assert outcomes[:2] == [1, 2]
    assert outcomes[3] == 4
    assert isinstance(outcomes[2], ValueError)
    assert _stored(store) == [1, 2, 4]  # the failed unit's insert was undone, nobody else's
    alone = await asyncio.gather(group(_insert(-5)), return_exceptions=True)
    assert isinstance(alone[0], ValueError)
    assert _stored(store) == [1, 2, 4]
    store.close()
