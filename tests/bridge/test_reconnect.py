"""Zero loss across reconnects: replay from the last seq, snapshots when it cannot, resends applied once."""

from __future__ import annotations

import contextlib
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from bridge_process import RunningBridge, run_bridge

from ttrpg_mcp.client import BridgeClient, ResilientTable, TableApi

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 90.0
TRANSPORTS = ["websocket", "sse"]


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("reconnect") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


@asynccontextmanager
async def gm_and_player(base_url: str) -> AsyncIterator[tuple[str, BridgeClient, BridgeClient]]:
    """A campaign with a GM and a player, both logged in, neither connected yet."""
    async with AsyncExitStack() as stack:
        gm = await stack.enter_async_context(BridgeClient(base_url))
        player = await stack.enter_async_context(BridgeClient(base_url))
        await gm.register(f"gm-{uuid.uuid4().hex[:8]}", "password123")
        await player.register(f"pl-{uuid.uuid4().hex[:8]}", "password123")
        campaign_id = (await gm.create_campaign("Flaky Wi-Fi"))["id"]
        await player.join_campaign((await gm.create_invite(campaign_id, role="player"))["code"])
        yield campaign_id, gm, player


async def _campaign_events(table: TableApi, count: int) -> list[dict[str, Any]]:
    """The next ``count`` events that carry a seq."""
    events: list[dict[str, Any]] = []
    async for event in table.events():
        if "seq" in event:
            events.append(event)
            if len(events) == count:
                break
    return events


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_reconnect_replays_exactly_the_missed_events(bridge: RunningBridge, transport: str) -> None:
    """Missed events come back in order, once, then live events continue from there."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            gm_and_player(bridge.base_url) as (campaign_id, gm, player),
            gm.connect(campaign_id=campaign_id) as gm_table,
        ):
            await gm_table.next_event("campaign_snapshot")
            async with player.connect(campaign_id=campaign_id, transport=transport) as first:  # type: ignore[arg-type]
                snapshot = (await first.next_event("campaign_snapshot"))["data"]
                epoch = snapshot["epoch"]
                last_seq = (await _campaign_events(first, 1))[-1]["seq"]  # the player's own arrival
            for note in range(5):
                await gm_table.update_state(["shared_notes"], f"note {note}")
            async with player.connect(
                campaign_id=campaign_id,
                transport=transport,  # type: ignore[arg-type]
                last_seq=last_seq,
                epoch=epoch,
            ) as second:
                resumed = (await second.next_event("campaign_snapshot"))["data"]
                assert resumed["recovered"] is True
                assert resumed["replayed"] == 6  # the player's departure and five notes
                replayed = await _campaign_events(second, resumed["replayed"])
                await gm_table.roll_dice("1d4", purpose="live again")
                live = await _campaign_events(second, 2)  # the player's arrival, the roll
    seqs = [event["seq"] for event in replayed + live]
    assert seqs == list(range(last_seq + 1, last_seq + 1 + len(seqs)))
    notes = [e["data"]["value"] for e in replayed if e["type"] == "state_update"]
    assert notes == [f"note {n}" for n in range(5)]
    assert {"participant_left", "dice_roll"} <= {e["type"] for e in replayed + live}


async def test_another_epoch_or_too_long_a_gap_gives_a_snapshot_and_says_why(data_dir: Path) -> None:
    """recovered: false with the reason, the full state, and the current seq."""
    with run_bridge(data_dir, {"TTRPG_REPLAY_LIMIT": "3"}) as running, anyio.fail_after(TEST_TIMEOUT):
        async with gm_and_player(running.base_url) as (campaign_id, gm, _player), gm.connect() as table:
            start = await table.join(campaign_id)
            for note in range(5):
                await table.update_state(["shared_notes"], f"note {note}")
            for last_seq, epoch, reason in (
                (start["seq"], "ep_other", "epoch"),
                (start["seq"], start["epoch"], "replay limit"),
                (start["seq"] + 100, start["epoch"], "ahead"),
            ):
                async with gm.connect(campaign_id=campaign_id, last_seq=last_seq, epoch=epoch) as again:
                    snapshot = (await again.next_event("campaign_snapshot"))["data"]
                assert snapshot["recovered"] is False
                assert reason in snapshot["reason"]
                assert snapshot["state"]["shared_notes"] == "note 4"
                assert snapshot["seq"] >= start["seq"] + 5


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_resent_request_is_applied_once(bridge: RunningBridge, transport: str) -> None:
    """The same id twice: one roll, one state change, one stroke; the resend gets the first reply."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with gm_and_player(bridge.base_url) as (campaign_id, gm, _player):
            async with gm.connect(campaign_id=campaign_id, transport=transport) as table:  # type: ignore[arg-type]
                start = (await table.next_event("campaign_snapshot"))["data"]
                requests = [
                    {"id": f"roll-{uuid.uuid4().hex}", "type": "dice_roll", "data": {"expression": "1d1000"}},
                    {
                        "id": f"state-{uuid.uuid4().hex}",
                        "type": "state_update",
                        "data": {"path": ["custom", "counter"], "operation": "set", "value": 1},
                    },
                    {
                        "id": f"draw-{uuid.uuid4().hex}",
                        "type": "canvas_draw",
                        "data": {
                            "action": "stroke",
                            "stroke": {"tool": "pen", "points": [[1, 2]], "color": "#123456", "width": 2},
                        },
                    },
                ]
                for request in requests:
                    first = await table.request_raw(request)
                    again = await table.request_raw(request)
                    assert again.get("duplicate") is True
                    assert again["request_id"] == first["request_id"] == request["id"]
                    assert again.get("result") == first.get("result")
                    assert again.get("data") == first.get("data")
            expected = start["seq"] + 3 + 2  # three changes, plus this GM's leave and rejoin
            async with gm.connect() as check:
                end = await check.join(campaign_id)
                # On a backplane (several nodes, Redis) this node may answer the join before it has
                # delivered the old seat's leave: the rest then follows as events.
                seq, events = end["seq"], check.events()
                while seq < expected:
                    seq = (await anext(events)).get("seq") or seq
    assert seq == expected
    assert [roll["expression"] for roll in end["state"]["dice_rolls"]] == ["1d1000"]
    assert len(end["canvas"]) == 1
    assert end["state"]["version"] == start["state"]["version"] + 1


async def test_a_slow_reader_is_disconnected_and_the_others_carry_on(data_dir: Path) -> None:
    """A client that stops reading is cut off (1013) past its queue; the rest get everything."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedError

    env = {"TTRPG_OUTBOX_LIMIT": "8", "TTRPG_RATE_MESSAGES_BURST": "1000"}  # the drawer is not abusive
    with run_bridge(data_dir, env) as running, anyio.fail_after(TEST_TIMEOUT):
        async with gm_and_player(running.base_url) as (campaign_id, gm, player):
            assert player.tokens is not None
            token = player.tokens.access_token
            url = f"ws://127.0.0.1:{running.port}/ws?token={token}&campaign_id={campaign_id}"
            # A small receive buffer (which also stops the kernel growing it) so that the bridge's
            # queue, not the kernel, holds what this reader leaves unread. No keepalive pings
            # from it: it must look merely slow, not dead.
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", running.port))
            async with (
                connect(url, sock=sock, max_queue=1, max_size=None, ping_interval=None) as slow,
                gm.connect() as table,
                httpx.AsyncClient(base_url=running.base_url) as http,
            ):
                await table.join(campaign_id)
                # Large strokes (about 45 KB): the kernel's send buffer fills in few of them, so the
                # cut comes well before the server's WebSocket ping gives up on this silent peer.
                points = [[x, x % 97] for x in range(4500)]
                drawn = 0
                while drawn < 600:
                    stroke = {"tool": "pen", "points": points, "color": "#000000", "width": 1}
                    await table.draw({"action": "stroke", "stroke": stroke})
                    drawn += 1
                    if drawn % 10 == 0 and 'error_type="slow_consumer"' in (await http.get("/metrics")).text:
                        break
                assert 'ws_errors_total{error_type="slow_consumer"} 1.0' in (await http.get("/metrics")).text
                # The fast client saw every stroke it drew.
                events = [e for e in await _drain_quick(table) if e["type"] == "canvas_draw"]
                assert len(events) == drawn
                with anyio.fail_after(30), contextlib.suppress(ConnectionClosedError):
                    async for _ in slow:  # what it had not read, then the close
                        pass
                assert slow.close_code == 1013
                assert "slow" in (slow.close_reason or "")
                assert (await table.heartbeat())["type"] == "ack"


async def _drain_quick(table: TableApi) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        received = False
        with anyio.move_on_after(1.0):
            async for event in table.events():
                events.append(event)
                received = True
                break
        if not received:  # quiet for a second, or the connection has ended
            return events


async def test_a_frozen_bridge_is_noticed_by_its_silence_and_the_seat_resumes(data_dir: Path) -> None:
    """SIGSTOP: heartbeats stop, the seat drops the half-open link, resumes after SIGCONT."""
    env = {"TTRPG_HEARTBEAT_INTERVAL": "0.4"}
    with run_bridge(data_dir, env) as running, anyio.fail_after(TEST_TIMEOUT):
        async with gm_and_player(running.base_url) as (campaign_id, gm, player), gm.connect() as table:
            await table.join(campaign_id)
            seat = ResilientTable(player, campaign_id)
            await seat.start()
            try:
                await table.update_state(["shared_notes"], "before the freeze")
                running.process.send_signal(signal.SIGSTOP)
                try:
                    await anyio.sleep(2.0)  # five heartbeats of silence
                finally:
                    running.process.send_signal(signal.SIGCONT)
                await table.update_state(["shared_notes"], "after the thaw")
                # Polling: the seat's state has no event to wait on.
                while seat.state.get("shared_notes") != "after the thaw":  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            finally:
                await seat.close()
    assert seat.reconnects >= 1
    assert (seat.gaps, seat.duplicates, seat.resets) == (0, 0, 0)
    notes = [e["data"]["value"] for e in seat.events if e["type"] == "state_update"]
    assert notes == ["before the freeze", "after the thaw"]


async def test_a_websocket_replay_longer_than_the_queue_arrives_whole(data_dir: Path) -> None:
    """Fifty missed events through an outbox of eight: all replayed, none cut off as too slow."""
    with run_bridge(data_dir, {"TTRPG_OUTBOX_LIMIT": "8"}) as running, anyio.fail_after(TEST_TIMEOUT):
        async with gm_and_player(running.base_url) as (campaign_id, gm, player), gm.connect() as table:
            await table.join(campaign_id)
            async with player.connect(campaign_id=campaign_id) as first:
                snapshot = (await first.next_event("campaign_snapshot"))["data"]
                last_seq = (await _campaign_events(first, 1))[-1]["seq"]
            for note in range(50):
                await table.update_state(["custom", "n"], note)
            async with player.connect(
                campaign_id=campaign_id, last_seq=last_seq, epoch=snapshot["epoch"]
            ) as again:
                resumed = (await again.next_event("campaign_snapshot"))["data"]
                replayed = await _campaign_events(again, resumed["replayed"])
    assert resumed["recovered"] is True
    assert [e["seq"] for e in replayed] == list(range(last_seq + 1, last_seq + 52))
