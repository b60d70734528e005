"""A campaign room's life on one node: retired when its last participant leaves, never lost in between.

In-process, over a real SQLite store, so the interleaving that a loaded machine produces now and
then (a change waiting on a room's lock while the room is retired and someone joins) is made
to happen every time: the change's unit of work is held open on a gate until the join waits.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from seeded_store import CAMPAIGN, seeded_store
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge.auth.service import AuthenticatedUser
from ttrpg_mcp.bridge.dispatch import BridgeSession
from ttrpg_mcp.bridge.rooms import Rooms
from ttrpg_mcp.bridge.settings import load_settings
from ttrpg_mcp.bridge.store import BridgeStore

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 20.0


@pytest.fixture
def store(data_dir: Path) -> Iterator[BridgeStore]:
    """A migrated store where gm runs one campaign and ann plays in it."""
    store = seeded_store(data_dir)
    yield store
    store.close()


def _session(name: str, inbox: list[dict[str, Any]]) -> BridgeSession:
    async def send(message: dict[str, Any]) -> None:
        inbox.append(message)

    user = AuthenticatedUser(f"usr_{name}", name, name.title(), int(time.time()) + 3600)
    return BridgeSession("websocket", send, user=user)


async def _until(condition: Any) -> None:
    """Yield to the loop until ``condition()`` holds (bounded by the test's deadline).

    What is awaited here is another task's progress inside asyncio's lock, which signals no
    event of its own: polling is the only way to see it.
    """
    while not condition():  # noqa: ASYNC110  # see the docstring
        await asyncio.sleep(0.005)


async def test_a_session_seated_while_its_room_is_retired_still_receives_every_event(
    store: BridgeStore, data_dir: Path
) -> None:
    """The GM leaves while a change waits; Ann joins meanwhile; later events still reach her."""
    rooms = Rooms(store, load_settings(data_dir=data_dir))
    gm_inbox: list[dict[str, Any]] = []
    ann_inbox: list[dict[str, Any]] = []
    gm, ann = _session("gm", gm_inbox), _session("ann", ann_inbox)
    gate = threading.Event()

    def held_open(db: Session) -> None:  # a slow unit of work, as on a loaded machine
        gate.wait(TEST_TIMEOUT)

    with anyio.fail_after(TEST_TIMEOUT):
        await rooms.join(gm, CAMPAIGN)
        lock = rooms._rooms[CAMPAIGN].lock  # the room the change will wait on
        await lock.acquire()
        change = asyncio.create_task(
            rooms.commit(CAMPAIGN, held_open, lambda _: [("presence_update", {"status": "away"})])
        )
        await _until(lambda: len(lock._waiters or ()) >= 1)  # the change's batch waits on the room
        leaving = asyncio.create_task(rooms.leave(gm))
        group = rooms._groups[CAMPAIGN]
        await _until(lambda: len(group._queue) >= 1)  # the GM's participant_left queued behind it
        lock.release()
        await _until(lock.locked)  # the change holds the room, its work held open
        joining = asyncio.create_task(rooms.join(ann, CAMPAIGN))
        await _until(lambda: len(lock._waiters or ()) >= 1)  # the join waits on the room too
        gate.set()
        await asyncio.gather(change, leaving, joining)

        marker = await rooms.publish(CAMPAIGN, "presence_update", {"status": "marker"})

    seen = [message["seq"] for message in ann_inbox if "seq" in message]
    assert marker in seen, f"ann got {seen}, not the event {marker} published after she joined"
    assert ann.campaign_id == CAMPAIGN
