"""A group-committed batch of table changes writes its rows with a bounded number of statements.

Twenty players rolling at once share one transaction (test_group_commit); here, that
transaction must also not cost a statement per table per roll: the rolls, their events,
stored replies and audit entries go in with one statement per table, the ``seq`` range with
one update, and a roll needs no savepoint. A change that fails still fails alone. Runs on
SQLite and, in the PostgreSQL pass, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from seeded_store import CAMPAIGN, seeded_store
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge import audit, campaigns, requests
from ttrpg_mcp.bridge.auth.service import AuthenticatedUser
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.rooms import Rooms
from ttrpg_mcp.bridge.session import BridgeSession
from ttrpg_mcp.bridge.settings import load_settings
from ttrpg_mcp.bridge.store import (
    AuditEntry,
    BridgeStore,
    Campaign,
    CampaignEvent,
    DiceLogEntry,
    RequestReply,
)

pytestmark = pytest.mark.anyio

ROLLS = 60  # more than the dice log keeps: the batch trims it


@pytest.fixture
def store(data_dir: Path) -> Iterator[BridgeStore]:
    """A migrated store where gm runs one campaign, alone."""
    store = seeded_store(data_dir, players=())
    yield store
    store.close()


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every statement sent to any database while the test runs (an executemany counts once)."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    event.listen(Engine, "before_cursor_execute", count)
    yield seen
    event.remove(Engine, "before_cursor_execute", count)


def _roll(n: int, visibility: str = "public") -> Callable[[Session], dict[str, Any]]:
    def work(db: Session) -> dict[str, Any]:
        payload = {"expression": "1d20", "purpose": f"roll {n}", "total": n, "dice": [{"value": n}]}
        return campaigns.add_roll(db, CAMPAIGN, "usr_gm", "Gm", payload, visibility)

    return work


async def _seated(store: BridgeStore, data_dir: Path) -> tuple[Rooms, list[int]]:
    """A room with one seat, and the seqs that seat is sent."""
    sent: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message.get("type") == "dice_roll":
            sent.append(message["seq"])

    rooms = Rooms(store, load_settings(data_dir=data_dir))
    user = AuthenticatedUser("usr_gm", "gm", "Gm", int(time.time()) + 3600)
    await rooms.join(BridgeSession("websocket", send, user=user), CAMPAIGN)
    return rooms, sent


async def _commit_roll(
    rooms: Rooms, n: int, visibility: str = "public", user_id: str = "usr_gm"
) -> tuple[dict[str, Any], list[int]]:
    """A roll as the table commits it: its dice log row, event, stored reply and audit entry."""
    entry = audit.PendingEntry(CAMPAIGN, "dice_roll", "1d20")
    requests.use(requests.RequestContext(user_id, f"req-{n}", audit=entry))
    stored, seqs, _message = await rooms.commit(
        CAMPAIGN,
        _roll(n, visibility),
        lambda stored: [("dice_roll", {"roll_id": stored["id"], "total": n, "visibility": "public"})],
        lambda stored, seqs: {"type": "dice_roll_result", "roll_id": stored["id"], "seq": seqs[0]},
        isolate=False,
    )
    return stored, seqs


def _count(store: BridgeStore, model: Any) -> int:
    with store.session(readonly=True) as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_batch_of_rolls_costs_a_bounded_number_of_statements(
    store: BridgeStore, data_dir: Path, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    transactions = 0
    plain_run = store.run

    async def counting_run(fn: Callable[[Session], Any], *, readonly: bool = False) -> Any:
        nonlocal transactions
        transactions += 0 if readonly else 1
        return await plain_run(fn, readonly=readonly)

    monkeypatch.setattr(store, "run", counting_run)
    rooms, sent = await _seated(store, data_dir)
    statements.clear()
    transactions = 0
    with anyio.fail_after(60):
        outcomes = await asyncio.gather(*(_commit_roll(rooms, n) for n in range(ROLLS)))
    used = list(statements)
    seqs = sorted(seq for _, logged in outcomes for seq in logged)
    assert seqs == list(range(seqs[0], seqs[0] + ROLLS))  # each roll one event, no gaps
    assert sent == seqs
    assert len({stored["id"] for stored, _ in outcomes}) == ROLLS  # each roll its own id
    # Per batch: the log's lock, the roll ids, one insert per table, the seq update, the trim,
    # begin and commit: a dozen at most, whatever the batch's size; no savepoint for a roll.
    assert transactions < ROLLS
    assert len(used) <= 12 * transactions, used
    assert "SAVEPOINT" not in used
    with store.session(readonly=True) as db:
        logged = db.scalar(
            select(func.count()).select_from(CampaignEvent).where(CampaignEvent.type == "dice_roll")
        )
    assert logged == ROLLS
    assert _count(store, RequestReply) == ROLLS
    assert _count(store, AuditEntry) == ROLLS
    assert _count(store, DiceLogEntry) == campaigns.ROLL_LOG_LIMIT  # trimmed to the log's length
    with store.session(readonly=True) as db:
        kept = db.scalars(select(DiceLogEntry.id).order_by(DiceLogEntry.id)).all()
    newest = sorted(stored["id"] for stored, _ in outcomes)[-campaigns.ROLL_LOG_LIMIT :]
    assert list(kept)[-len(newest) :] == newest  # the newest rolls kept


async def test_a_failing_change_in_a_batch_fails_alone(store: BridgeStore, data_dir: Path) -> None:
    rooms, sent = await _seated(store, data_dir)

    def broken(db: Session) -> None:  # fails at the database, after writing
        db.execute(text("UPDATE campaigns SET name = 'Gone' WHERE id = :id"), {"id": CAMPAIGN})
        db.execute(text("SELECT * FROM no_such_table"))

    async def failing_at_database() -> None:
        await rooms.commit(CAMPAIGN, broken, lambda _: [("dice_roll", {"visibility": "public"})])

    changes = [
        _commit_roll(rooms, 1),
        _commit_roll(rooms, 2, visibility="nobody"),  # refused before it writes anything
        _commit_roll(rooms, 3),
        failing_at_database(),
        _commit_roll(rooms, 4),
        _commit_roll(rooms, 5, user_id="usr_nobody"),  # its stored reply breaks a foreign key
        _commit_roll(rooms, 6),
    ]
    with anyio.fail_after(60):
        outcomes = await asyncio.gather(*changes, return_exceptions=True)
    assert isinstance(outcomes[1], BridgeError)
    assert outcomes[1].code == "invalid_params"
    assert isinstance(outcomes[3], Exception)
    assert isinstance(outcomes[5], Exception)
    good = [outcome for index, outcome in enumerate(outcomes) if index in (0, 2, 4, 6)]
    assert not any(isinstance(outcome, BaseException) for outcome in good)
    seqs = [seq for _stored, logged in good for seq in logged]  # type: ignore[misc]
    assert seqs == list(range(seqs[0], seqs[0] + 4))  # the failures took no seq
    assert sent == seqs
    with store.session(readonly=True) as db:
        rolls = db.scalars(select(DiceLogEntry.purpose).order_by(DiceLogEntry.id)).all()
        replies = db.scalars(select(RequestReply.request_id).order_by(RequestReply.request_id)).all()
        assert db.scalar(select(Campaign.name)) == "Ashes"  # the failed write undone
        assert campaigns.campaign_epoch_and_seq(db, CAMPAIGN)[1] == seqs[-1]
    assert list(rolls) == ["roll 1", "roll 3", "roll 4", "roll 6"]
    assert list(replies) == ["req-1", "req-3", "req-4", "req-6"]
    assert _count(store, AuditEntry) == 4
