"""Clients that never read, against a real bridge: each one's outbox is bounded in bytes, the
bridge's memory stays bounded while a reader draws hundreds of large strokes, each non-reader is
cut with 1013, and nothing acknowledged is lost (every stroke is on the canvas afterwards)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from bridge_process import RunningBridge, run_bridge
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ttrpg_mcp.client import BridgeClient

pytestmark = pytest.mark.anyio

NON_READERS = 3
STROKES = 200
POINTS = 2500  # about 50 KB of JSON per stroke: 10 MB in all
OUTBOX_BYTES = 256 * 1024
TEST_TIMEOUT = 240.0
ENV = {
    "TTRPG_RATE_MESSAGES_PER_SECOND": "1000",
    "TTRPG_RATE_MESSAGES_BURST": "1000",
    "TTRPG_OUTBOX_MAX_BYTES": str(OUTBOX_BYTES),
    "TTRPG_IDLE_TIMEOUT": "3600",  # a non-reader sends nothing either: not an idle timeout here
}


@pytest.fixture
def bridge(data_dir: Path) -> Iterator[RunningBridge]:
    with run_bridge(data_dir, ENV) as running:
        yield running


def _stroke(index: int) -> dict[str, Any]:
    points = [[100000.0 + index + step * 0.123, 200000.0 + step * 0.456] for step in range(POINTS)]
    return {"action": "stroke", "stroke": {"tool": "pen", "points": points, "color": "#224466", "width": 2}}


class PeakMemory:
    """The bridge's largest resident set, sampled in a thread while strokes are drawn."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _close_code_once_cut(
    bridge: RunningBridge, session_id: str, websocket: ClientConnection
) -> int | None:
    """Once the bridge has cut this client, read what it still had on the way, up to the close.

    The close frame waits behind what the client has not read: read soon after the cut."""
    while f'"slow_session": "{session_id}"' not in bridge.log():  # noqa: ASYNC110  # a log file
        await anyio.sleep(0.1)
    with contextlib.suppress(ConnectionClosed):
        async for _message in websocket:
            pass
    return websocket.close_code


async def test_non_reading_clients_cost_bounded_memory_and_are_cut_with_1013(bridge: RunningBridge) -> None:
    async with AsyncExitStack() as stack:
        gm = await stack.enter_async_context(BridgeClient(bridge.base_url))
        await gm.register(f"gm-{uuid.uuid4().hex[:6]}", "password123")
        campaign_id = (await gm.create_campaign("Slow readers"))["id"]
        sleepers: list[ClientConnection] = []
        session_ids: list[str] = []
        players: list[BridgeClient] = []
        for index in range(NON_READERS):
            player = await stack.enter_async_context(BridgeClient(bridge.base_url))
            await player.register(f"p{index}-{uuid.uuid4().hex[:6]}", "password123")
            await player.join_campaign((await gm.create_invite(campaign_id, role="player"))["code"])
            assert player.tokens is not None
            url = f"ws://127.0.0.1:{bridge.port}/ws?token={player.tokens.access_token}&campaign_id={campaign_id}"
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the bridge's queue fills, not ours
            sock.connect(("127.0.0.1", bridge.port))
            # max_queue=1: the client library stops reading the socket as soon as one frame waits.
            sleeper = await stack.enter_async_context(connect(url, sock=sock, max_queue=1, max_size=None))
            sleepers.append(sleeper)
            session_ids.append(json.loads(await sleeper.recv())["session_id"])
            players.append(player)
        table = await stack.enter_async_context(gm.connect())
        await table.join(campaign_id)
        strokes: set[str] = set()
        codes: list[int | None] = []

        async def watch(session_id: str, sleeper: ClientConnection) -> None:
            codes.append(await _close_code_once_cut(bridge, session_id, sleeper))

        with anyio.fail_after(TEST_TIMEOUT), PeakMemory(bridge.process.pid) as memory:
            async with anyio.create_task_group() as group:
                for session_id, sleeper in zip(session_ids, sleepers, strict=True):
                    group.start_soon(watch, session_id, sleeper)
                for index in range(STROKES):
                    strokes.add((await table.draw(_stroke(index)))["stroke_id"])
        async with players[0].connect() as returning:
            snapshot = await returning.join(campaign_id)
    grown_mb = (memory.peak - memory.baseline) / 2**20
    print(f"\nslow consumers: {NON_READERS} non-readers, {STROKES} strokes, peak RSS +{grown_mb:.0f} MB")
    assert codes == [1013] * NON_READERS
    assert strokes <= {stroke["id"] for stroke in snapshot["canvas"]}  # acknowledged, kept
    assert bridge.log().count("slow_consumer_disconnected") == NON_READERS
    # Each non-reader's queue holds at most OUTBOX_BYTES; the rest is the reader's own traffic.
    assert grown_mb < NON_READERS * OUTBOX_BYTES / 2**20 + 100
