"""One protocol suite over both transports: the WebSocket (``/ws``) and the SSE fallback.

Every test runs once per transport (the ``transport`` fixture). Tests with several people put
them on different transports, so that a message crossing from one to the other is checked too.
A real bridge process serves the whole module.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import cast

import anyio
import httpx
import pytest
from bridge_process import RunningBridge, run_bridge
from tables import Transport, events_of, party, until

from ttrpg_mcp.client import BridgeClient, BridgeClientError, BridgeConnection

pytestmark = pytest.mark.anyio

OTHER: dict[Transport, Transport] = {"websocket": "sse", "sse": "websocket"}

TEST_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("transports") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


@pytest.fixture(params=["websocket", "sse"])
def transport(request: pytest.FixtureRequest) -> Transport:
    """The transport under test; people sitting with its user use the other one."""
    return cast(Transport, request.param)


@pytest.fixture
async def client(bridge: RunningBridge) -> AsyncIterator[BridgeClient]:
    """A client logged in as a fresh user."""
    async with BridgeClient(bridge.base_url) as client:
        await client.register(f"u{uuid.uuid4().hex[:10]}", "password123")
        yield client


async def test_a_session_opens_with_the_servers_capabilities(
    client: BridgeClient, transport: Transport
) -> None:
    """session_created names the user and lists the MCP tools, resources and prompts."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with client.connect(transport=transport) as table:
            assert table.session_id.startswith("ses_")
            assert {"roll_dice", "search", "create_campaign"} <= set(table.tool_names)
            assert {p["name"] for p in table.capabilities["prompts"]} >= {"session_recap"}
            assert client.tokens is not None
            assert table.session["user"]["name"] == client.tokens.user["name"]
            assert (await table.heartbeat())["type"] == "ack"


async def test_a_tool_call_round_trip_returns_structured_results(
    client: BridgeClient, transport: Transport
) -> None:
    """tool_call reaches the MCP server and back with request_id, result and duration."""
    with anyio.fail_after(TEST_TIMEOUT):
        campaign = await client.create_campaign("Ashes", system="d20")
        async with client.connect(transport=transport) as table:
            assert (await table.join(campaign["id"]))["role"] == "gm"
            params = {"campaign_id": campaign["id"]}
            reply = await table.request(
                {"type": "tool_call", "id": "req-1", "method": "get_campaign", "params": params}
            )
            assert reply["type"] == "response"
            assert reply["request_id"] == "req-1"
            assert reply["duration"] >= 0
            assert reply["result"]["structuredContent"]["name"] == "Ashes"
            npc = await table.call_tool("create_npc", {"campaign_id": campaign["id"], "name": "Old Brenna"})
            assert npc["campaign_id"] == campaign["id"]
            assert "roll_dice" in {tool["name"] for tool in (await table.discover())["tools"]}


async def test_bad_requests_get_their_own_error_and_the_session_survives(
    bridge: RunningBridge, client: BridgeClient, transport: Transport
) -> None:
    """Unknown tool, bad JSON, unknown type, wrong schema: each a clear error, nothing closes."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with client.connect(transport=transport) as table:
            with pytest.raises(BridgeClientError) as unknown:
                await table.call_tool("summon_dragon", {})
            assert unknown.value.code == "unknown_tool"

            if isinstance(table, BridgeConnection):
                await table.send_text("{not json")
                bad_json = await table.next_event("error")
            else:
                assert client.tokens is not None
                async with httpx.AsyncClient(base_url=bridge.base_url) as http:
                    response = await http.post(
                        "/api/messages",
                        content="{not json",
                        headers={"Authorization": f"Bearer {client.tokens.access_token}"},
                    )
                assert response.status_code == 400
                bad_json = response.json()
            assert bad_json["type"] == "error"
            assert bad_json["error"]["code"] == "invalid_json"

            unknown_type = await table.request_raw({"id": "t1", "type": "teleport"})
            assert (unknown_type["request_id"], unknown_type["error"]["code"]) == ("t1", "unknown_type")
            bad_schema = await table.request_raw({"id": "t2", "type": "tool_call", "params": []})
            assert (bad_schema["request_id"], bad_schema["error"]["code"]) == ("t2", "invalid_message")
            roll = await table.roll_dice("2d6+3", purpose="still here")
            assert 5 <= roll["total"] <= 15


async def test_a_live_session_can_swap_its_token(client: BridgeClient, transport: Transport) -> None:
    """reauthenticate with a refreshed token keeps the session; another user's token is refused."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with client.connect(transport=transport) as table:
            fresh = await client.refresh()
            assert (await table.reauthenticate(fresh.access_token))["type"] == "ack"
            async with BridgeClient(client.base_url) as other:
                await other.register(f"o{uuid.uuid4().hex[:8]}", "password123")
                assert other.tokens is not None
                with pytest.raises(BridgeClientError) as refused:
                    await table.reauthenticate(other.tokens.access_token)
                assert refused.value.code == "forbidden"
            assert (await table.heartbeat())["type"] == "ack"


async def test_a_roll_reaches_the_table_across_transports(
    bridge: RunningBridge, transport: Transport
) -> None:
    """A GM on one transport and a player on the other each see the other's roll, same seq."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, [("gm", transport), ("player", OTHER[transport])]) as (_, seats):
            gm, mira = seats
            result = await mira.table.roll_dice("2d6+3", purpose="climb")
            seen = [(await events_of(seat.table, "dice_roll"))[0] for seat in seats]
            assert {event["seq"] for event in seen} == {seen[0]["seq"]}
            for event in seen:
                assert event["data"]["player_id"] == mira.user_id
                assert event["data"]["total"] == result["total"]
            gm_roll = await gm.table.roll_dice("1d20", purpose="initiative")
            event = (await events_of(mira.table, "dice_roll"))[0]
            assert (event["data"]["player_id"], event["data"]["total"]) == (gm.user_id, gm_roll["total"])
            assert event["seq"] == seen[0]["seq"] + 1


async def test_two_changes_to_one_path_give_one_success_and_one_conflict(
    bridge: RunningBridge, transport: Transport
) -> None:
    """Both based on the same version: the second is refused with the current version."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, [("gm", transport), ("player", OTHER[transport])]) as (_, seats):
            gm, mira = seats
            base = gm.snapshot["state"]["version"]
            outcomes = await asyncio.gather(
                gm.table.update_state(["shared_notes"], "The bridge is out.", previous_version=base),
                mira.table.update_state(["shared_notes"], "We took the ferry.", previous_version=base),
                return_exceptions=True,
            )
            successes = [o for o in outcomes if isinstance(o, dict)]
            conflicts = [o for o in outcomes if isinstance(o, BridgeClientError)]
            assert (len(successes), len(conflicts)) == (1, 1)
            assert conflicts[0].code == "conflict"
            assert conflicts[0].data["current_version"] == successes[0]["version"]
            for seat in seats:
                updates = await events_of(seat.table, "state_update")
                assert [u["data"]["version"] for u in updates] == [successes[0]["version"]]


async def test_a_late_joiner_sees_the_canvas(bridge: RunningBridge, transport: Transport) -> None:
    """A stroke drawn over one transport is in the snapshot of a joiner over the other."""
    with anyio.fail_after(TEST_TIMEOUT):
        others = OTHER[transport]
        async with party(bridge.base_url, [("gm", others), ("player", others)]) as (campaign_id, seats):
            gm, mira = seats
            stroke = {"tool": "pen", "points": [[0, 0], [10, 12]], "color": "#aa3300", "width": 3}
            drawn = await mira.table.draw({"action": "stroke", "stroke": stroke})
            assert [e["data"]["stroke"]["id"] for e in await events_of(gm.table, "canvas_draw")] == [
                drawn["stroke_id"]
            ]
            code = (await gm.client.create_invite(campaign_id, role="player"))["code"]
            async with BridgeClient(bridge.base_url) as late:
                await late.register(f"late-{uuid.uuid4().hex[:8]}", "password123")
                await late.join_campaign(code)
                async with late.connect(transport=transport, campaign_id=campaign_id) as table:
                    snapshot = (await table.next_event("campaign_snapshot"))["data"]
                    assert [s["id"] for s in snapshot["canvas"]] == [drawn["stroke_id"]]
                    assert {gm.user_id, mira.user_id} <= {p["user_id"] for p in snapshot["participants"]}
                    assert snapshot["seq"] >= drawn["seq"]


async def test_presence_reaches_the_table(bridge: RunningBridge, transport: Transport) -> None:
    """A player's status over one transport reaches the GM over the other."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, [("gm", OTHER[transport]), ("player", transport)]) as (_, seats):
            gm, mira = seats
            ack = await mira.table.set_presence(status="away", character_name="Mira the Bold")
            assert ack["type"] == "ack"
            presence = (await events_of(gm.table, "presence_update"))[-1]["data"]
            assert (presence["user_id"], presence["status"]) == (mira.user_id, "away")
            assert presence["character_name"] == "Mira the Bold"


async def test_a_spectator_may_not_roll(bridge: RunningBridge, transport: Transport) -> None:
    """forbidden, and the table sees no roll."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, [("gm", OTHER[transport]), ("spectator", transport)]) as (_, seats):
            gm, watcher = seats
            with pytest.raises(BridgeClientError) as refused:
                await watcher.table.roll_dice("1d20")
            assert refused.value.code == "forbidden"
            # No roll came before the GM's own later one, the marker.
            await gm.table.roll_dice("1d4", purpose="marker")
            seen = await until(gm.table, lambda e: e["type"] == "dice_roll")
            assert [e["data"]["purpose"] for e in seen if e["type"] == "dice_roll"] == ["marker"]
