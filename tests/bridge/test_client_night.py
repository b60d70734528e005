"""The Python client lasts a game night: token renewal, heartbeats, SSE fallback, clear refusals."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn
from bridge_process import RunningBridge, free_port, run_bridge

from ttrpg_mcp.bridge.app import create_app
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.client import BridgeClient, BridgeClientError, BridgeConnection, ResilientTable, SseConnection

pytestmark = pytest.mark.anyio

# The shortest access token lifetime the settings allow; the night test lasts three of them.
TOKEN_TTL = 30
LIFETIMES = 3
NIGHT_TIMEOUT = TOKEN_TTL * LIFETIMES + 120.0
TEST_TIMEOUT = 90.0
PASSWORD = "password123"  # noqa: S105  # the test accounts' password


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    """Short lifetimes everywhere: 30 s tokens, a 1 s heartbeat, 3 s of silence closes a socket."""
    data_dir = tmp_path_factory.mktemp("night") / "data"
    data_dir.mkdir()
    env = {
        "TTRPG_ACCESS_TOKEN_TTL": str(TOKEN_TTL),
        "TTRPG_HEARTBEAT_INTERVAL": "1",
        "TTRPG_IDLE_TIMEOUT": "3",
        "TTRPG_MAX_PARTICIPANTS_PER_CAMPAIGN": "2",
    }
    with run_bridge(data_dir, env) as running:
        yield running


@asynccontextmanager
async def gm_with_campaign(base_url: str) -> AsyncIterator[tuple[BridgeClient, str]]:
    async with BridgeClient(base_url) as gm:
        await gm.register(f"gm-{uuid.uuid4().hex[:8]}", PASSWORD)
        yield gm, (await gm.create_campaign("A long night"))["id"]


async def test_sessions_outlive_three_access_token_lifetimes_without_a_reconnect(
    bridge: RunningBridge,
) -> None:
    """Renewal plus reauthenticate keep a WebSocket, an SSE session and a resilient seat working."""
    with anyio.fail_after(NIGHT_TIMEOUT):
        async with gm_with_campaign(bridge.base_url) as (gm, campaign_id), AsyncExitStack() as stack:
            assert gm.tokens is not None
            first_token = gm.tokens.access_token
            websocket = await stack.enter_async_context(gm.connect(campaign_id=campaign_id))
            sse = await stack.enter_async_context(gm.connect(campaign_id=campaign_id, transport="sse"))
            seat = ResilientTable(gm, campaign_id)
            await seat.start()
            stack.push_async_callback(seat.close)
            assert isinstance(websocket, BridgeConnection)
            assert isinstance(sse, SseConnection)
            # Listen only, like a player waiting for their turn, for three token lifetimes.
            while gm.renewals < LIFETIMES:  # noqa: ASYNC110  # a counter the client exposes
                await anyio.sleep(1)
            await anyio.sleep(TOKEN_TTL * 0.4)  # past the expiry of the last replaced token
            rolls = [
                await websocket.roll_dice("1d20"),
                await sse.roll_dice("1d20"),
                (await seat.request({"type": "dice_roll", "data": {"expression": "1d20"}}))["result"],
            ]
            assert websocket.close_code is None
            assert websocket.heartbeats_sent > 0
            assert seat.reconnects == 0
            assert seat.transport == "websocket"
            async with httpx.AsyncClient(base_url=bridge.base_url) as http:
                stale = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {first_token}"})
    assert all(1 <= roll["total"] <= 20 for roll in rolls)
    assert stale.status_code == 401  # the night did outlast the first token
    assert '"idle_timeout"' not in bridge.log()


async def test_a_seat_that_only_listens_is_not_closed_for_silence(bridge: RunningBridge) -> None:
    """Over twice the 3 s idle timeout of listening: heartbeats keep both seats, no reconnect."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with gm_with_campaign(bridge.base_url) as (gm, campaign_id), AsyncExitStack() as stack:
            listener = await stack.enter_async_context(
                gm.connect(campaign_id=campaign_id, transport="websocket")
            )
            seat = ResilientTable(gm, campaign_id)
            await seat.start()
            stack.push_async_callback(seat.close)
            assert listener.heartbeat_period() == 1.0  # min(heartbeat 1 s, idle 3 s / 3)
            while listener.heartbeats_sent < 7 and listener.close_code is None:  # noqa: ASYNC110  # a counter the client exposes
                await anyio.sleep(0.2)
            assert listener.close_code is None
            assert seat.reconnects == 0
            assert (await listener.heartbeat())["type"] == "ack"


@pytest.mark.parametrize("transport", ["websocket", "sse"])
async def test_connect_raises_when_the_table_refuses_the_seat(bridge: RunningBridge, transport: str) -> None:
    """Not a member, no such campaign, a full table: connect raises with the bridge's code."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with gm_with_campaign(bridge.base_url) as (gm, campaign_id), AsyncExitStack() as stack:
            stranger = await stack.enter_async_context(BridgeClient(bridge.base_url))
            await stranger.register(f"st-{uuid.uuid4().hex[:8]}", PASSWORD)
            refusals: dict[str, str] = {}
            for case, wanted in (("not a member", campaign_id), ("unknown campaign", "camp_nowhere")):
                with pytest.raises(BridgeClientError) as refused:
                    async with stranger.connect(campaign_id=wanted, transport=transport):  # type: ignore[call-overload]
                        pass
                refusals[case] = refused.value.code
            # The limit is 2: the GM and one player fill the table.
            await stack.enter_async_context(gm.connect(campaign_id=campaign_id))
            player = await stack.enter_async_context(BridgeClient(bridge.base_url))
            await player.register(f"pl-{uuid.uuid4().hex[:8]}", PASSWORD)
            await player.join_campaign((await gm.create_invite(campaign_id, role="player"))["code"])
            await stack.enter_async_context(player.connect(campaign_id=campaign_id))
            await stranger.join_campaign((await gm.create_invite(campaign_id, role="player"))["code"])
            with pytest.raises(BridgeClientError) as full:
                async with stranger.connect(campaign_id=campaign_id, transport=transport):  # type: ignore[call-overload]
                    pass
    assert refusals == {"not a member": "forbidden", "unknown campaign": "forbidden"}
    assert full.value.code == "limit_reached"
    assert "full" in full.value.message


# -- behind a proxy that strips the WebSocket upgrade --------------------------------------------


@asynccontextmanager
async def bridge_without_websockets(data_dir: Path) -> AsyncIterator[str]:
    """The bridge app on uvicorn with WebSocket support off: upgrades get a plain HTTP answer."""
    app = create_app(BridgeSettings(data_dir=data_dir))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, ws="none"))
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve)
        while not server.started:  # noqa: ASYNC110  # uvicorn offers no event to wait on
            await anyio.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


async def test_the_client_falls_back_to_sse_when_the_websocket_cannot_open(data_dir: Path) -> None:
    """A refused upgrade: connect() and ResilientTable go over SSE and say so in transport."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with bridge_without_websockets(data_dir) as base_url, BridgeClient(base_url) as client:
            await client.register("behind-proxy", PASSWORD)
            campaign_id = (await client.create_campaign("Behind a proxy"))["id"]
            async with client.connect(campaign_id=campaign_id) as table:
                assert table.transport == "sse"
                roll = await table.roll_dice("2d6+3")
            seat = ResilientTable(client, campaign_id)
            await seat.start()
            try:
                assert seat.transport == "sse"
                reply = await seat.request({"type": "dice_roll", "data": {"expression": "1d4"}})
            finally:
                await seat.close()
    assert len(roll["rolls"]) == 2
    assert roll["modifier"] == 3
    assert 1 <= reply["result"]["total"] <= 4
