"""A client written from the design document alone plays a full table scenario.

Everything here follows the spike document (``websocket-mcp-bridge-spike.md``) and nothing
else: ``POST /api/auth/login`` with ``username`` and ``password``, the WebSocket at ``/ws`` with
``?token=`` and the ``mcp-ttrpg-v1`` subprotocol, then an ``authenticate`` message carrying the
token and the ``campaign_id``; ``session_created``; requests matched by ``request_id``;
``dice_roll`` answered with ``dice_roll_result`` (``rolls``, ``modifier``, ``total``);
``tool_call`` with ``method`` and ``params``; ``state_update`` with ``path``, ``operation``,
``value`` and ``previous_version``; events switched on ``type``; ``session_attach`` with
``last_seq`` after a reconnect; ``/api/auth/refresh`` with the refresh token as the bearer,
then ``reauthenticate``. Plain ``httpx`` and ``websockets``: no code from this project's client.

Only the campaign and its invite (which the document leaves out) use the bridge's HTTP API.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx
import pytest
from bridge_process import RunningBridge, run_bridge
from websockets.asyncio.client import ClientConnection, connect

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 120.0
PASSWORD = "correct horse battery"  # noqa: S105  # the test accounts' password


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("spike") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


class SpikeClient:
    """The document's TTRPGWebSocketClient, in Python: send, request, and a log of events."""

    def __init__(self, http: httpx.AsyncClient, ws_base: str, campaign_id: str) -> None:
        self.http = http
        self.ws_base = ws_base
        self.campaign_id = campaign_id
        self.token = ""
        self.refresh_token = ""
        self.user_info: dict[str, Any] = {}
        self.session_id: str | None = None
        self.events: list[dict[str, Any]] = []
        self._socket: ClientConnection | None = None
        self._replies: dict[str, dict[str, Any]] = {}

    async def authenticate(self, username: str) -> None:
        """AuthenticationManager.authenticate: POST /api/auth/login, keep the tokens."""
        response = await self.http.post("/api/auth/login", json={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        body = response.json()
        self.token, self.refresh_token = body["access_token"], body["refresh_token"]
        self.user_info = body["user_info"]
        assert self.user_info["username"] == username

    async def connect_websocket(self) -> list[dict[str, Any]]:
        """``?token=``, then ``authenticate`` with the campaign; returns what came until joined."""
        self._socket = await connect(
            f"{self.ws_base}/ws?token={self.token}",
            subprotocols=["mcp-ttrpg-v1"],  # type: ignore[list-item]
        )
        assert self._socket.subprotocol == "mcp-ttrpg-v1"
        await self.send(
            {
                "type": "authenticate",
                "token": self.token,
                "campaign_id": self.campaign_id,
                "timestamp": int(time.time() * 1000),
            }
        )
        return await self.until(lambda m: m.get("type") == "campaign_snapshot")

    async def send(self, message: dict[str, Any]) -> None:
        assert self._socket is not None
        await self._socket.send(json.dumps(message))

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send with a fresh id and wait for the message whose request_id names it."""
        message_id = uuid.uuid4().hex
        await self.send(
            {"id": message_id, "timestamp": int(time.time() * 1000), "version": "1.0.0", **message}
        )
        await self.until(lambda m: m.get("request_id") == message_id)
        return self._replies.pop(message_id)

    async def until(self, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Handle incoming messages (events logged, replies kept) until one satisfies ``done``."""
        assert self._socket is not None
        seen: list[dict[str, Any]] = []
        while True:
            message = json.loads(await self._socket.recv())
            seen.append(message)
            if message.get("type") == "session_created":
                self.session_id = message["session_id"]
            if message.get("request_id"):
                self._replies[message["request_id"]] = message
            elif "seq" in message:
                self.events.append(message)
            if done(message):
                return seen

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()

    @property
    def last_seq(self) -> int:
        return max(event["seq"] for event in self.events)

    def rolls_seen(self) -> list[dict[str, Any]]:
        return [event["data"] for event in self.events if event["type"] == "dice_roll"]


async def _setup(http: httpx.AsyncClient) -> tuple[str, str, str]:
    """Accounts for a GM and a player, and a campaign both belong to (outside the document)."""
    gm_name, player_name = f"gm{uuid.uuid4().hex[:6]}", f"pl{uuid.uuid4().hex[:6]}"
    tokens = {}
    for name in (gm_name, player_name):
        response = await http.post("/api/auth/register", json={"username": name, "password": PASSWORD})
        assert response.status_code == 201, response.text
        tokens[name] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    campaign = await http.post("/api/campaigns", json={"name": "Spike night"}, headers=tokens[gm_name])
    campaign_id = campaign.json()["id"]
    invite = await http.post(
        f"/api/campaigns/{campaign_id}/invites", json={"role": "player"}, headers=tokens[gm_name]
    )
    joined = await http.post(
        "/api/campaigns/join", json={"code": invite.json()["code"]}, headers=tokens[player_name]
    )
    assert joined.status_code in (200, 201), joined.text
    return gm_name, player_name, campaign_id


async def test_a_client_written_from_the_spike_plays_a_full_table(bridge: RunningBridge) -> None:  # noqa: PLR0915  # one scenario, in order
    """Login, join, roll, call a tool, share state, reconnect with last_seq, refresh: all as documented."""
    ws_base = bridge.base_url.replace("http", "ws", 1)
    with anyio.fail_after(TEST_TIMEOUT):
        async with httpx.AsyncClient(base_url=bridge.base_url) as http, AsyncExitStack() as stack:
            gm_name, player_name, campaign_id = await _setup(http)
            gm, player = SpikeClient(http, ws_base, campaign_id), SpikeClient(http, ws_base, campaign_id)
            stack.push_async_callback(gm.close)
            stack.push_async_callback(player.close)
            await gm.authenticate(gm_name)
            await player.authenticate(player_name)

            joined = await gm.connect_websocket()
            assert [m["type"] for m in joined][:1] == ["session_created"]
            assert gm.session_id is not None
            await player.connect_websocket()
            await gm.until(lambda m: m.get("type") == "participant_joined")
            assert gm.events[-1]["data"]["username"] == player_name

            # rollDice: the result as the document's test reads it.
            reply = await player.request(
                {"type": "dice_roll", "data": {"expression": "2d6+3", "purpose": "dodge"}}
            )
            assert reply["type"] == "dice_roll_result"
            result = reply["result"]
            assert len(result["rolls"]) == 2
            assert result["modifier"] == 3
            assert 5 <= result["total"] <= 15
            assert result["total"] == sum(result["rolls"]) + 3
            await gm.until(lambda m: m.get("type") == "dice_roll")
            seen = gm.rolls_seen()[-1]
            assert (seen["player_id"], seen["expression"], seen["total"]) == (
                player.user_info["id"],
                "2d6+3",
                result["total"],
            )
            assert seen["purpose"] == "dodge"
            assert seen["player_name"]

            # callTool: an MCP tool through the bridge, answered with a response.
            tool = await gm.request(
                {"type": "tool_call", "method": "roll_dice", "params": {"expression": "1d20"}}
            )
            assert tool["type"] == "response"
            assert tool["result"]["structuredContent"]["total"] >= 1

            # updateInitiative: a state_update on initiative_order, sent without waiting.
            order = [{"id": "c1", "name": "Ogre", "initiative": 12}]
            await gm.send(
                {
                    "type": "state_update",
                    "data": {
                        "path": ["initiative_order"],
                        "value": order,
                        "operation": "set",
                        "version": 1,
                        "previous_version": 0,
                    },
                }
            )
            await player.until(lambda m: m.get("type") == "state_update")
            update = player.events[-1]["data"]
            assert (update["path"], update["operation"], update["value"][0]["name"]) == (
                ["initiative_order"],
                "set",
                "Ogre",
            )
            assert update["version"] >= 1

            # heartbeat, as enableHeartbeat would send it.
            assert (await player.request({"type": "heartbeat"}))["type"] == "ack"

            # The player's connection drops; the GM rolls twice meanwhile.
            await player.close()
            last_seq = player.last_seq
            for purpose in ("missed one", "missed two"):
                await gm.request({"type": "dice_roll", "data": {"expression": "1d8", "purpose": purpose}})
            # Reconnect as the document does, then session_attach with the last seq seen.
            await player.connect_websocket()
            before = len(player.events)
            attached = await player.request(
                {"type": "session_attach", "campaign_id": campaign_id, "last_seq": last_seq}
            )
            assert attached["type"] == "campaign_snapshot"
            assert attached["data"]["recovered"] is True
            await gm.request({"type": "dice_roll", "data": {"expression": "1d4", "purpose": "marker"}})
            await player.until(lambda m: (m.get("data") or {}).get("purpose") == "marker")
            seqs = [event["seq"] for event in player.events]
            assert len(seqs) == len(set(seqs)), f"an event came twice: {seqs}"
            purposes = [roll.get("purpose") for roll in player.rolls_seen()]
            assert purposes.count("missed one") == purposes.count("missed two") == 1
            assert [event["seq"] for event in player.events[before:]] == sorted(seqs[before:])

            # refreshAuth: the refresh token as the bearer, then reauthenticate on the socket.
            refreshed = await http.post(
                "/api/auth/refresh", headers={"Authorization": f"Bearer {player.refresh_token}"}
            )
            assert refreshed.status_code == 200, refreshed.text
            ack = await player.request({"type": "reauthenticate", "token": refreshed.json()["access_token"]})
            assert ack["type"] == "ack"

            # The GM leaves; the player sees participant_left.
            await gm.close()
            await player.until(lambda m: m.get("type") == "participant_left")
            assert player.events[-1]["data"]["username"] == gm_name
