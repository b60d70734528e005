"""Group commit: units that arrive together share one transaction; each fails alone.

A room commits its campaign's events this way: the last test has many players change the
table at once and checks that each event is stored once, numbered without gaps, and neither
sent nor acknowledged before it can be read back from the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from pg_databases import bridge_store_url
from ttrpg_mcp.bridge import campaigns
from ttrpg_mcp.bridge.auth.service import AuthenticatedUser
from ttrpg_mcp.bridge.rooms import Rooms
from ttrpg_mcp.bridge.session import BridgeSession
from ttrpg_mcp.bridge.settings import load_settings
from ttrpg_mcp.bridge.store import BridgeStore, CampaignEvent, User
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


CAMPAIGN = "camp_0123456789ab"
SENDERS = 20
CHANGES_EACH = 5
_NOT_A_HASH = "not-an-argon2-hash"


def _readable(store: BridgeStore, seq: int) -> bool:
    """Whether another connection can read the campaign's event ``seq`` now (it is committed)."""
    with store.session(readonly=True) as db:
        found = campaigns.events_since(db, CAMPAIGN, seq - 1, limit=1)
    return bool(found) and found[0].seq == seq


async def test_a_room_commits_concurrent_changes_together_each_sent_and_answered_after_commit(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BridgeStore(bridge_store_url(data_dir))
    store.migrate()
    with store.session() as db:
        db.add(User(id="usr_gm", name="gm", name_key="gm", display_name="Gm", password_hash=_NOT_A_HASH))
        db.flush()
        campaigns.create_campaign(db, CAMPAIGN, "Ashes", "usr_gm")
    writes = 0
    plain_run = store.run

    async def counting_run(fn: Callable[[Session], Any], *, readonly: bool = False) -> Any:
        nonlocal writes
        writes += 0 if readonly else 1
        return await plain_run(fn, readonly=readonly)

    monkeypatch.setattr(store, "run", counting_run)
    sent: list[tuple[int, bool]] = []  # (seq, readable from the store when it was sent)

    async def send(message: dict[str, Any]) -> None:
        if message.get("type") == "presence_update" and "seq" in message:
            sent.append((message["seq"], _readable(store, message["seq"])))

    user = AuthenticatedUser("usr_gm", "gm", "Gm", int(time.time()) + 3600)
    rooms = Rooms(store, load_settings(data_dir=data_dir))
    answered: list[tuple[int, int, bool]] = []  # (sender, seq, readable when answered)

    async def sender(index: int) -> None:
        for n in range(CHANGES_EACH):
            seq = await rooms.publish(CAMPAIGN, "presence_update", {"sender": index, "n": n})
            answered.append((index, seq, _readable(store, seq)))

    with anyio.fail_after(60):
        await rooms.join(BridgeSession("websocket", send, user=user), CAMPAIGN)
        first = writes
        await asyncio.gather(*(sender(i) for i in range(SENDERS)))
    total = SENDERS * CHANGES_EACH
    seqs = sorted(seq for _, seq, _ in answered)
    assert seqs == list(range(seqs[0], seqs[0] + total))  # each once, no gaps
    assert all(readable for _, _, readable in answered)  # answered only once committed
    with store.session(readonly=True) as db:
        stored = db.scalar(
            select(func.count()).select_from(CampaignEvent).where(CampaignEvent.type == "presence_update")
        )
    assert stored == total  # stored once each
    for index in range(SENDERS):  # each sender's changes in the order it made them
        own = [seq for who, seq, _ in answered if who == index]
        assert own == sorted(own)
    assert [seq for seq, _ in sent] == seqs  # every seat got every event, in seq order
    assert all(readable for _, readable in sent)  # and none before its commit
    assert writes - first < total  # changes that arrived together shared transactions
    store.close()
