"""A resume served from the room's recent events in memory, and when it falls back to the log.

The ring itself (pure), then rooms in-process over a real SQLite store: a resume from memory
gives each viewer exactly what a resume from the log gives (GM secrets never reach a player,
even once a GM's rendering of the same events is kept), a gap older than the memory is read from
the log, and with a shared backplane the events another node committed enter the memory in
order, or a gap empties it and the log answers. Whether the log's events were read is seen by
wrapping ``campaigns.logged_since``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from seeded_store import CAMPAIGN, seeded_store

from ttrpg_mcp.bridge import campaigns, frames
from ttrpg_mcp.bridge.auth.service import AuthenticatedUser
from ttrpg_mcp.bridge.backplane import LocalBackplane, LoggedEvent
from ttrpg_mcp.bridge.dispatch import BridgeSession
from ttrpg_mcp.bridge.recent_events import RecentEvents
from ttrpg_mcp.bridge.rooms import Rooms
from ttrpg_mcp.bridge.settings import load_settings
from ttrpg_mcp.bridge.store import BridgeStore

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 30.0
GM_ONLY = "the innkeeper is the lich"  # in the GM's blind roll: never in a player's copy

# What the GM does while the player is away: public and secret rolls, a hidden combatant.
GM_CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("state_update", {"path": ["custom", "n"], "value": 1}),
    (
        "dice_roll",
        {
            "roll_id": "r1",
            "player_id": "usr_gm",
            "player_name": "Gm",
            "visibility": "blind",
            "reason": GM_ONLY,
        },
    ),
    (
        "dice_roll",
        {"roll_id": "r2", "player_id": "usr_gm", "player_name": "Gm", "visibility": "public", "total": 4},
    ),
    (
        "combat_update",
        {
            "order": [
                {"id": "c1", "name": "Orc", "hidden": False},
                {"id": "c2", "name": "Lich", "hidden": True},
            ],
            "active_turn": 0,
            "round_number": 1,
        },
    ),
    ("state_update", {"path": ["custom", "n"], "value": 2}),
]


@pytest.fixture
def store(data_dir: Path) -> Iterator[BridgeStore]:
    """A migrated store where gm runs one campaign and ann plays in it."""
    store = seeded_store(data_dir)
    yield store
    store.close()


class LogReads:
    """Counts the replays' reads of the log's events (``campaigns.logged_since``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        read = campaigns.logged_since

        def counted(*args: Any, **kwargs: Any) -> list[LoggedEvent]:
            self.count += 1
            return read(*args, **kwargs)

        monkeypatch.setattr(campaigns, "logged_since", counted)


@pytest.fixture
def log_reads(monkeypatch: pytest.MonkeyPatch) -> LogReads:
    return LogReads(monkeypatch)


def _session(name: str) -> tuple[BridgeSession, list[dict[str, Any]]]:
    inbox: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        inbox.append(message)

    user = AuthenticatedUser(f"usr_{name}", name, name.title(), int(time.time()) + 3600)
    return BridgeSession("websocket", send, user=user), inbox


def _events(inbox: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The campaign events a session got, as on the wire (batches opened)."""
    events: list[dict[str, Any]] = []
    for message in inbox:
        wire = json.loads(frames.encode(message))
        events.extend(wire["events"] if wire["type"] == "event_batch" else [wire])
    return [event for event in events if "seq" in event]


def _comparable(events: list[dict[str, Any]], upto: int) -> list[dict[str, Any]]:
    """Events up to ``upto`` less what differs between any two copies (id, time, session)."""
    drop = {"id", "timestamp", "session_id"}
    return [{k: v for k, v in event.items() if k not in drop} for event in events if event["seq"] <= upto]


def _seqs(events: list[dict[str, Any]], after: int) -> list[int]:
    """The seqs received, checked gap-free and each once from ``after + 1`` on."""
    seqs = [event["seq"] for event in events]
    assert seqs == list(range(after + 1, after + 1 + len(seqs))), seqs
    return seqs


def _log_head(store: BridgeStore) -> tuple[str, int]:
    with store.session(readonly=True) as db:
        return campaigns.campaign_epoch_and_seq(db, CAMPAIGN)


async def _resume(
    rooms: Rooms, name: str, last_seq: int, epoch: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    session, inbox = _session(name)
    _, snapshot = await rooms.join(session, CAMPAIGN, last_seq=last_seq, epoch=epoch, batch=True)
    return snapshot, _events(inbox)


# -- the ring ---------------------------------------------------------------------------------


def test_the_ring_holds_a_gap_free_run_and_a_gap_empties_it() -> None:
    ring = RecentEvents(3)
    ring.append(1, "state_update", {})  # not anchored: kept nowhere
    assert ring.epoch is None
    ring.reset("e1", 10)
    for seq in (11, 12, 13, 14):
        ring.append(seq, "state_update", {"n": seq})
    assert (ring.base, ring.head, len(ring)) == (11, 14, 3)  # bounded: the oldest went
    assert ring.covers("e1", 11)
    assert not ring.covers("e1", 10)  # seq 11 is no longer held
    assert not ring.covers("e2", 12)  # another epoch of the log
    assert [event.seq for event in ring.since(12)] == [13, 14]
    ring.append(16, "state_update", {})  # 15 never came
    assert ring.epoch is None
    assert not ring.covers("e1", 14)


def test_the_ring_keeps_at_most_its_bytes_of_json() -> None:
    """Large payloads (canvas strokes) push the oldest events out by size, not only by count."""
    ring = RecentEvents(100, max_bytes=10_000)
    ring.reset("e1", 0)
    for seq in range(1, 11):
        ring.append(seq, "canvas_draw", {"points": "x" * 3_000})
    assert ring.head == 10
    assert len(ring) == 3
    assert ring.bytes <= 10_000
    assert ring.covers("e1", 7)
    assert not ring.covers("e1", 6)


# -- one node ---------------------------------------------------------------------------------


async def test_a_resume_from_memory_equals_one_from_the_log_for_a_gm_and_a_player(
    store: BridgeStore, data_dir: Path, log_reads: LogReads
) -> None:
    """Same events, same masking; the GM's rendering kept first never reaches the player."""
    settings = load_settings(data_dir=data_dir)
    warm = Rooms(store, settings)
    with anyio.fail_after(TEST_TIMEOUT):
        gm, _gm_inbox = _session("gm")
        await warm.join(gm, CAMPAIGN)
        epoch, last_seq = _log_head(store)
        for kind, data in GM_CHANGES:
            await warm.publish(CAMPAIGN, kind, data)
        _epoch, head = _log_head(store)

        # The GM's second tab first, so the GM's renderings are kept before the player asks.
        gm_memory = await _resume(warm, "gm", last_seq, epoch)
        ann_memory = await _resume(warm, "ann", last_seq, epoch)
        ann_again = await _resume(warm, "ann", last_seq, epoch)  # kept renderings, reused
        assert log_reads.count == 0, "served from memory: no event read from the log"

        # Rooms with no room yet (each its own: a log read is kept for the next resume).
        ann_log = await _resume(Rooms(store, settings), "ann", last_seq, epoch)
        gm_log = await _resume(Rooms(store, settings), "gm", last_seq, epoch)
        assert log_reads.count == 2

    for snapshot, _ in (gm_memory, ann_memory, ann_again, ann_log, gm_log):
        assert snapshot["recovered"] is True
    for _, events in (gm_memory, ann_memory, ann_again, ann_log, gm_log):
        assert _seqs(events, last_seq)[-1] >= head
    assert _comparable(gm_memory[1], head) == _comparable(gm_log[1], head)
    assert _comparable(ann_memory[1], head) == _comparable(ann_log[1], head)
    assert _comparable(ann_again[1], head) == _comparable(ann_log[1], head)
    assert GM_ONLY in json.dumps(gm_memory[1])
    player_view = json.dumps(ann_memory[1] + ann_again[1])
    assert GM_ONLY not in player_view
    assert "Lich" not in player_view
    assert "Lich" in json.dumps(gm_memory[1])


async def test_a_resume_older_than_the_memory_is_read_from_the_log(
    store: BridgeStore, data_dir: Path, log_reads: LogReads
) -> None:
    """Events logged before the room was live: the log serves them, then the memory holds them."""
    rooms = Rooms(store, load_settings(data_dir=data_dir))
    with anyio.fail_after(TEST_TIMEOUT):
        epoch, last_seq = _log_head(store)
        for n in range(3):  # nobody seated: no room keeps these
            await rooms.publish(CAMPAIGN, "state_update", {"n": n})
        gm, _gm_inbox = _session("gm")
        await rooms.join(gm, CAMPAIGN)  # the room's memory starts here
        for n in range(3, 5):
            await rooms.publish(CAMPAIGN, "state_update", {"n": n})
        _epoch, head = _log_head(store)

        first = await _resume(rooms, "ann", last_seq, epoch)
        assert log_reads.count == 1
        _epoch, head_after = _log_head(store)  # ann's arrival went to the room too
        second = await _resume(rooms, "ann", last_seq, epoch)
        assert log_reads.count == 1, "the log's run was kept: the second resume is from memory"

    assert _seqs(first[1], last_seq)[-1] == head_after  # its own arrival, live, last
    assert _seqs(second[1], last_seq)[-1] == head_after
    assert _comparable(second[1], head) == _comparable(first[1], head)


# -- several nodes ----------------------------------------------------------------------------


class Hub:
    """A shared backplane in-process: what a node publishes is delivered to every node's rooms.

    ``drop`` names seqs that one node's follower never gets, as if it skipped ahead.
    """

    def __init__(self) -> None:
        self.nodes: list[tuple[Rooms, set[int]]] = []

    def node(self, rooms: Rooms, drop: set[int] | None = None) -> None:
        self.nodes.append((rooms, drop if drop is not None else set()))

    async def publish(self, campaign_id: str, events: list[LoggedEvent]) -> None:
        for rooms, drop in self.nodes:
            await rooms.deliver_shared(campaign_id, [event for event in events if event.seq not in drop])


class SharedPlane(LocalBackplane):
    """One node's end of the :class:`Hub`: a shared backplane whose publish is the hub's."""

    shared = True

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def publish(self, campaign_id: str, epoch: str, events: list[LoggedEvent]) -> None:
        await self._hub.publish(campaign_id, events)


@pytest.mark.parametrize("gap", [False, True])
async def test_events_from_another_node_keep_the_memory_in_order_or_the_log_answers(
    store: BridgeStore, data_dir: Path, log_reads: LogReads, gap: bool
) -> None:
    """Node A's changes reach node B's room in order (a resume on B from memory); a skipped one
    empties B's memory, and the resume on B reads the log: complete, in order, either way."""
    settings = load_settings(data_dir=data_dir)
    hub = Hub()
    node_a = Rooms(store, settings, SharedPlane(hub))  # type: ignore[arg-type]
    node_b = Rooms(store, settings, SharedPlane(hub))  # type: ignore[arg-type]
    skipped: set[int] = set()
    hub.node(node_a)
    hub.node(node_b, skipped)
    with anyio.fail_after(TEST_TIMEOUT):
        gm, _ = _session("gm")
        await node_a.join(gm, CAMPAIGN)
        watcher, _ = _session("gm")  # the GM's other tab keeps B's room live
        await node_b.join(watcher, CAMPAIGN)
        epoch, last_seq = _log_head(store)
        if gap:
            skipped.add(last_seq + 2)
        for kind, data in GM_CHANGES:
            await node_a.publish(CAMPAIGN, kind, data)
        _epoch, head = _log_head(store)
        resumed, events = await _resume(node_b, "ann", last_seq, epoch)

    assert resumed["recovered"] is True
    assert log_reads.count == (1 if gap else 0)
    assert _seqs(events, last_seq)[-1] >= head
    assert GM_ONLY not in json.dumps(events)
