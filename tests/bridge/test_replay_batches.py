"""A resume's missed events as ``event_batch`` frames when the client asks, one frame each when not.

Against a real bridge: the raw frames (``websockets``) for what goes on the wire, the project's
client for what it hands out. Every run checks that the missed events arrive complete, in
``seq`` order, each once, and that nothing else came before a later marker (a heartbeat's ack).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import anyio
import pytest
from bridge_process import RunningBridge, run_bridge
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from ttrpg_mcp.bridge.frames import REPLAY_BATCH_BYTES
from ttrpg_mcp.bridge.protocol import SUBPROTOCOL
from ttrpg_mcp.client import BridgeClient

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 90.0
# Notes this long make the missed events span several batches with only a few changes.
NOTE_CHARS = 60_000
BIG_CHANGES = 12
SMALL_CHANGES = 12


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("replay-batches") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


@asynccontextmanager
async def missed_events(base_url: str) -> AsyncIterator[tuple[BridgeClient, str, str, int, int]]:
    """A player who left at ``last_seq``, then missed ``count`` events; the GM stays seated.

    Yields the player's client, the campaign, its epoch, ``last_seq`` and ``count``. The
    player's return is one more event, live, after the replay.
    """
    async with AsyncExitStack() as stack:
        gm = await stack.enter_async_context(BridgeClient(base_url))
        player = await stack.enter_async_context(BridgeClient(base_url))
        await gm.register(f"gm-{uuid.uuid4().hex[:8]}", "password123")
        await player.register(f"pl-{uuid.uuid4().hex[:8]}", "password123")
        campaign_id = (await gm.create_campaign("Long night"))["id"]
        await player.join_campaign((await gm.create_invite(campaign_id, role="player"))["code"])
        async with gm.connect(campaign_id=campaign_id) as table:
            await table.next_event("campaign_snapshot")
            async with player.connect(campaign_id=campaign_id) as seat:
                snapshot = (await seat.next_event("campaign_snapshot"))["data"]
            last_seq, epoch = snapshot["seq"] + 1, snapshot["epoch"]  # + the player's own arrival
            for n in range(BIG_CHANGES):
                await table.update_state(["shared_notes"], f"{n:03d}" + "x" * NOTE_CHARS)
            for n in range(SMALL_CHANGES):
                await table.update_state(["custom", "n"], n)
            # The player's departure is one of the missed events too.
            count = (await table.update_state(["custom", "n"], -1))["seq"] - last_seq
            yield player, campaign_id, epoch, last_seq, count


async def _frames_until_ack(websocket: ClientConnection) -> list[tuple[dict[str, Any], int]]:
    """Every frame (with its size) that arrives before the ack of a heartbeat sent now: the marker."""
    marker = uuid.uuid4().hex
    await websocket.send(json.dumps({"id": marker, "type": "heartbeat"}))
    frames: list[tuple[dict[str, Any], int]] = []
    while True:
        raw = await websocket.recv()
        message = json.loads(raw)
        if message.get("request_id") == marker:
            return frames
        if message.get("type") != "heartbeat":
            frames.append((message, len(raw)))


def _seqs(frames: list[tuple[dict[str, Any], int]]) -> list[int]:
    """The seqs of the campaign events in ``frames``, batches opened, in arrival order."""
    seqs: list[int] = []
    for message, _size in frames:
        for event in message["events"] if message["type"] == "event_batch" else [message]:
            if "seq" in event:
                seqs.append(event["seq"])
    return seqs


@pytest.mark.parametrize("batch", [True, False])
async def test_a_resume_on_the_url_replays_every_event_once(bridge: RunningBridge, batch: bool) -> None:
    """``?last_seq=&epoch=&batch=1``: a few batches, in seq order; without ``batch``, a frame each."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with missed_events(bridge.base_url) as (player, campaign_id, epoch, last_seq, count):
            assert player.tokens is not None
            query = {
                "token": player.tokens.access_token,
                "campaign_id": campaign_id,
                "last_seq": str(last_seq),
                "epoch": epoch,
            }
            if batch:
                query["batch"] = "1"
            url = bridge.base_url.replace("http", "ws", 1) + "/ws?" + urlencode(query)
            async with ws_connect(url, subprotocols=[SUBPROTOCOL], max_size=None) as websocket:  # type: ignore[list-item]
                assert json.loads(await websocket.recv())["type"] == "session_created"
                snapshot = json.loads(await websocket.recv())
                assert snapshot["type"] == "campaign_snapshot"
                assert snapshot["data"]["recovered"] is True
                assert snapshot["data"]["replayed"] == count
                frames = await _frames_until_ack(websocket)

    assert _seqs(frames) == list(range(last_seq + 1, last_seq + count + 2))
    arrival, _size = frames.pop()  # live, after the replay: a frame of its own either way
    assert arrival["type"] == "participant_joined"
    kinds = {message["type"] for message, _size in frames}
    if batch:
        assert kinds == {"event_batch"}
        # Bounded by bytes: the big notes alone need several frames, none far past the bound.
        assert 3 <= len(frames) < count
        assert all(size < REPLAY_BATCH_BYTES + NOTE_CHARS + 1_000 for _message, size in frames)
        assert all(message["campaign_id"] == campaign_id for message, _size in frames)
        assert len({message["id"] for message, _size in frames}) == len(frames)
    else:
        assert "event_batch" not in kinds
        assert len(frames) == count


@pytest.mark.parametrize("batch", [True, False])
async def test_session_attach_replays_every_event_once_in_order(bridge: RunningBridge, batch: bool) -> None:
    """``session_attach`` with ``batch``: the client hands out the batched events as events, in order."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            missed_events(bridge.base_url) as (player, campaign_id, epoch, last_seq, count),
            player.connect(transport="websocket") as seat,
        ):
            resumed = await seat.attach(campaign_id, last_seq, epoch, batch=batch)
            assert resumed["recovered"] is True
            assert resumed["replayed"] == count
            await seat.heartbeat()  # the marker: everything replayed came before its ack
            received = seat.received()
            batches = seat.batches_received

    assert [event["seq"] for event in received if "seq" in event] == list(
        range(last_seq + 1, last_seq + count + 2)  # the last: the player's return, live
    )
    assert all(event["type"] != "event_batch" for event in received)
    if batch:
        assert 3 <= batches < count
    else:
        assert batches == 0


async def test_a_batch_leaves_out_what_the_connection_already_got(bridge: RunningBridge) -> None:
    """Seated live, then ``session_attach`` from an older seq: each event still arrives once."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            missed_events(bridge.base_url) as (player, campaign_id, epoch, last_seq, count),
            player.connect(campaign_id=campaign_id, transport="websocket") as seat,
        ):
            joined = (await seat.next_event("campaign_snapshot"))["data"]
            own_arrival = await seat.next_event("participant_joined")
            resumed = await seat.attach(campaign_id, last_seq, epoch, batch=True)
            await seat.heartbeat()
            received = seat.received()

    # The join's snapshot covered the log up to its seq, and the arrival came live; the replay
    # brings what is left of the missed events, and never the arrival a second time.
    assert own_arrival["seq"] == joined["seq"] + 1
    assert resumed["replayed"] == count + 1
    seqs = [event["seq"] for event in received if "seq" in event]
    assert seqs == list(range(last_seq + 1, own_arrival["seq"]))
