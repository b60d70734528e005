"""The table fan-out's direct write: a seat with nothing queued gets its frame written at once.

Against a real bridge (uvicorn with the direct-send protocol) and real ``websockets`` clients:
the direct path is taken (``ws_outgoing_frames_total{path="direct"}``), every seat still gets the
table's events gap-free and in order, a seat that stops reading still falls back to its outbox
and is cut with 1013 while the others carry on, and a ``session_attach`` overlapping the live
events still sends each once. Under uvicorn's plain protocol (no direct write in the scope) the
outbox carries everything, as before.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from bridge_process import RunningBridge, free_port, run_bridge
from fastapi import FastAPI
from tables import drain, party, places
from waiting import eventually
from websockets.asyncio.client import ClientConnection, connect

from ttrpg_mcp.bridge.app import create_app
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.transports.direct_send import DirectSendProtocol

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 120.0
ROLLS = 12


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("direct") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir, {"TTRPG_RATE_MESSAGES_BURST": "1000"}) as running:
        yield running


async def _sent_frames(base_url: str) -> dict[str, float]:
    """``ws_outgoing_frames_total`` by path, from ``/metrics``."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        text = (await http.get("/metrics")).text
    counts = {"direct": 0.0, "queued": 0.0}
    for line in text.splitlines():
        if line.startswith("ws_outgoing_frames_total{"):
            labels, value = line.rsplit(" ", 1)
            counts[labels.split('path="', 1)[1].split('"', 1)[0]] = float(value)
    return counts


def _roll_seqs(events: list[dict[str, Any]]) -> list[int]:
    return [int(event["seq"]) for event in events if event["type"] == "dice_roll"]


async def _rolls_reach_every_seat_in_order(base_url: str) -> None:
    async with party(base_url, places("player", "player", "player")) as (_campaign_id, seats):
        for index in range(ROLLS):
            await seats[index % len(seats)].table.roll_dice("1d20", purpose=f"roll {index}")
        seen = [_roll_seqs(await drain(seat.table)) for seat in seats]
    first = seen[0][0]
    for seqs in seen:  # nothing else was logged in between: consecutive seqs, in order
        assert seqs == list(range(first, first + ROLLS))


async def test_a_roll_is_written_straight_to_every_seat_in_order(bridge: RunningBridge) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        before = await _sent_frames(bridge.base_url)
        await _rolls_reach_every_seat_in_order(bridge.base_url)
        after = await _sent_frames(bridge.base_url)
    assert after["direct"] - before["direct"] >= ROLLS * 4  # at least every roll to every seat


async def test_an_attach_overlapping_the_live_events_sends_each_once(bridge: RunningBridge) -> None:
    """Live rolls go out directly; a ``session_attach`` from seq 0 then repeats none of them."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, (gm, player)):
            assert player.client.tokens is not None
            token = player.client.tokens.access_token
            url = f"{bridge.base_url.replace('http', 'ws', 1)}/ws?token={token}&campaign_id={campaign_id}"
            received: list[dict[str, Any]] = []
            async with connect(url) as seat:
                await _receive_until(seat, lambda m: m.get("type") == "campaign_snapshot", received)
                before = await _sent_frames(bridge.base_url)
                for index in range(ROLLS):
                    await gm.table.roll_dice("1d6", purpose=f"live {index}")
                await _receive_until(seat, lambda m: _purpose(m) == f"live {ROLLS - 1}", received)
                direct = (await _sent_frames(bridge.base_url))["direct"] - before["direct"]
                attach = {"id": "attach", "type": "session_attach", "campaign_id": campaign_id, "last_seq": 0}
                await seat.send(json.dumps(attach))
                await _receive_until(seat, lambda m: m.get("request_id") == "attach", received)
                await gm.table.roll_dice("1d6", purpose="marker")
                await _receive_until(seat, lambda m: _purpose(m) == "marker", received)
    assert direct >= ROLLS
    seqs = [m["seq"] for m in received if isinstance(m.get("seq"), int)]
    live = seqs[:ROLLS]  # then the replay of what came before the seat joined, then the marker
    assert live == list(range(live[0], live[0] + ROLLS)), f"live rolls out of order: {seqs}"
    assert len(seqs) == len(set(seqs)), f"an event came twice: {seqs}"
    assert set(seqs) == set(range(1, max(seqs) + 1)), f"an event is missing: {seqs}"
    assert seqs[-1] == max(seqs)  # the marker, after the replay


def _purpose(message: dict[str, Any]) -> object:
    data = message.get("data")
    return data.get("purpose") if isinstance(data, dict) else None


async def _receive_until(seat: ClientConnection, done: Any, into: list[dict[str, Any]]) -> None:
    while True:
        message = json.loads(await seat.recv())
        into.append(message)
        if done(message):
            return


async def test_a_paused_socket_takes_the_outbox_and_keeps_the_order(data_dir: Path) -> None:
    """Flow control paused the seat's socket: its frames queue, then arrive in order, none twice."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            _plain_uvicorn(data_dir, DirectSendProtocol) as (base_url, app, server),
            party(base_url, places("player")) as (_campaign_id, (gm, player)),
        ):
            (seat,) = [c for c in app.state.bridge.connections if c.session.seat_id == player.user_id]
            (socket_protocol,) = [
                p for p in server.server_state.connections if getattr(p, "scope", None) is seat._ws.scope
            ]
            socket_protocol.pause_writing()  # as the transport does past its high-water mark
            before = await _sent_frames(base_url)
            for index in range(ROLLS):
                await gm.table.roll_dice("1d20", purpose=f"paused {index}")
            during = await _sent_frames(base_url)
            socket_protocol.resume_writing()
            seqs = _roll_seqs(await drain(player.table))
    assert during["queued"] - before["queued"] >= ROLLS  # the paused seat's rolls waited
    assert seqs == list(range(seqs[0], seqs[0] + ROLLS))  # then all came, in order, once each


@asynccontextmanager
async def _plain_uvicorn(data_dir: Path, ws: Any) -> AsyncIterator[tuple[str, FastAPI, uvicorn.Server]]:
    """The bridge app on uvicorn in this process, with the given WebSocket protocol.

    Without compression, as ``serve`` runs it: a compressed connection never takes the direct write.
    """
    settings = BridgeSettings(data_dir=data_dir)  # this package's MCP server as the child
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, ws=ws, ws_per_message_deflate=False)
    )
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve)

        async def started() -> bool:  # uvicorn offers no event to wait on
            return bool(server.started)

        await eventually(started, "uvicorn serving")
        try:
            yield f"http://127.0.0.1:{port}", app, server
        finally:
            server.should_exit = True


@pytest.mark.parametrize("ws", ["websockets-sansio", DirectSendProtocol], ids=["plain", "direct"])
async def test_without_the_direct_write_the_outbox_carries_everything(data_dir: Path, ws: Any) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with _plain_uvicorn(data_dir, ws) as (base_url, _app, _server):
            await _rolls_reach_every_seat_in_order(base_url)
            sent = await _sent_frames(base_url)
    if ws == "websockets-sansio":
        assert sent["direct"] == 0
        assert sent["queued"] >= ROLLS * 4
    else:
        assert sent["direct"] >= ROLLS * 4
