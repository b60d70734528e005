"""/mcp end to end: the SDK's Streamable HTTP client as an agent at a real bridge with real children."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from bridge_process import RunningBridge, run_bridge
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from tables import Seat, party, places, until

from ttrpg_mcp.client import BridgeClient

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    """One bridge shared by this module's tests (each test makes its own campaign and people)."""
    data_dir = tmp_path_factory.mktemp("mcpendpoint") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


@asynccontextmanager
async def agent(bridge: RunningBridge, token: str, name: str = "Claude") -> AsyncIterator[ClientSession]:
    """An MCP client at /mcp with a bearer credential, initialized."""
    http_client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with (
        http_client,
        streamable_http_client(f"{bridge.base_url}/mcp", http_client=http_client) as (read, write),
        ClientSession(read, write, client_info=types.Implementation(name=name, version="1.0")) as session,
    ):
        await session.initialize()
        yield session


def _structured(result: types.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def _hp_is_7(event: dict[str, Any]) -> bool:
    return event["type"] == "character_update" and event["data"]["character"]["hp_current"] == 7


def _joined_agent(event: dict[str, Any]) -> bool:
    return event["type"] == "participant_joined" and event["data"]["kind"] == "agent"


async def _delete(bridge: RunningBridge, path: str, seat: Seat) -> httpx.Response:
    assert seat.client.tokens is not None
    async with httpx.AsyncClient(base_url=bridge.base_url) as http:
        return await http.delete(path, headers={"Authorization": f"Bearer {seat.client.tokens.access_token}"})


async def _player_key(seat: Seat, campaign_id: str) -> dict[str, Any]:
    return await seat.client.create_api_key("table agent", campaign_id=campaign_id, role="player")


async def test_an_agent_plays_and_the_table_sees_it_join_roll_and_edit_live(bridge: RunningBridge) -> None:
    """Tools listed by role; a roll with its purpose and a character edit reach a player's seat live."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, (gm, mira)):
            character = await gm.table.call_tool(
                "create_character",
                {"campaign_id": campaign_id, "name": "Lyra", "hp_max": 12, "owner": mira.user_id},
            )
            await until(mira.table, lambda e: e["type"] == "character_update")
            key = await _player_key(mira, campaign_id)
            async with agent(bridge, key["key"]) as claude:
                joined = await until(mira.table, _joined_agent)
                seat = joined[-1]["data"]
                assert mira.client.tokens is not None
                owner = mira.client.tokens.user["display_name"]
                assert seat["display_name"] == f"Claude, assistant of {owner}"
                assert seat["user_id"] == mira.user_id
                assert seat["participant_id"].startswith("agt_")
                assert seat["role"] == "player"

                tools = {tool.name for tool in (await claude.list_tools()).tools}
                assert {"roll_dice", "update_character", "get_character"} <= tools
                assert "create_campaign" not in tools  # spans campaigns: HTTP only
                assert "create_npc" not in tools  # a player's policy leaves it out

                sneak = {"expression": "1d20+3", "purpose": "Lyra sneaks past"}
                rolled = _structured(await claude.call_tool("roll_dice", sneak))
                roll = (await until(mira.table, lambda e: e["type"] == "dice_roll"))[-1]["data"]
                assert roll["purpose"] == "Lyra sneaks past"
                assert roll["total"] == rolled["total"]
                assert roll["player_name"] == seat["display_name"]

                _structured(
                    await claude.call_tool(
                        "update_character",
                        {"character_id": character["id"], "changes": {"hp_current": 7}},
                    )
                )
                updated = (await until(mira.table, _hp_is_7))[-1]
                assert updated["data"]["character"]["hp_current"] == 7
            left = (await until(mira.table, lambda e: e["type"] == "participant_left"))[-1]["data"]
            assert left == left | {"participant_id": seat["participant_id"], "kind": "agent"}
            participants = (await gm.table.join(campaign_id))["participants"]
            assert [p["kind"] for p in participants] == ["person", "person"]


async def test_a_player_agent_never_reads_a_gm_secret(bridge: RunningBridge) -> None:
    """Notes, NPC notes and secret world state stay with the GM, through tools and resources."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, (gm, mira)):
            await gm.table.call_tool(
                "save_campaign",
                {
                    "campaign_id": campaign_id,
                    "world_state": {"weather": "rain", "villain": "the mayor"},
                    "secret_keys": ["villain"],
                },
            )
            await gm.table.call_tool(
                "create_npc",
                {
                    "campaign_id": campaign_id,
                    "name": "Mayor Oswin",
                    "notes": "GM-NOTE-oswin",
                    "secrets": ["GM-SECRET-cult"],
                },
            )
            await gm.table.call_tool(
                "add_note", {"campaign_id": campaign_id, "body": "GM-ONLY-ambush", "visibility": "gm"}
            )
            key = await _player_key(mira, campaign_id)
            async with agent(bridge, key["key"]) as claude:
                seen: list[str] = []
                campaign = await claude.call_tool("get_campaign", {"campaign_id": campaign_id})
                seen.append(campaign.model_dump_json())
                assert _structured(campaign)["world_state"] == {"weather": "rain"}
                npcs = await claude.call_tool("list_items", {"campaign_id": campaign_id, "kind": "npcs"})
                assert "Mayor Oswin" in npcs.model_dump_json()
                notes = await claude.call_tool("list_items", {"campaign_id": campaign_id, "kind": "notes"})
                seen += [npcs.model_dump_json(), notes.model_dump_json()]
                refused = await claude.call_tool("create_npc", {"campaign_id": campaign_id, "name": "Spy"})
                assert refused.is_error  # outside a player's tool policy: a tool error the model reads
                resource = (await claude.read_resource(f"campaign://{campaign_id}")).model_dump_json()
                assert "Mayor Oswin" in resource  # the NPC is there, not its GM's parts
                seen.append(resource)
            text = "\n".join(seen)
            assert "rain" in text  # the public world state is there...
            for secret in ("the mayor", "GM-NOTE-oswin", "GM-SECRET-cult", "GM-ONLY-ambush"):
                assert secret not in text  # ...and no GM secret is
            gm_view = await gm.table.call_tool("list_items", {"campaign_id": campaign_id, "kind": "npcs"})
            assert "GM-NOTE-oswin" in str(gm_view)  # the secret exists: the GM reads it


async def test_revoking_the_key_ends_the_agents_session_and_refuses_its_next_call(
    bridge: RunningBridge,
) -> None:
    """Its owner revokes the key: the GM's table sees the agent leave at once; its next call fails."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, (gm, mira)):
            key = await _player_key(mira, campaign_id)
            async with agent(bridge, key["key"]) as claude:
                await until(gm.table, _joined_agent)
                await claude.call_tool("roll_dice", {"expression": "1d6", "purpose": "warm-up"})
                await mira.client.revoke_api_key(key["id"])
                left = (await until(gm.table, lambda e: e["type"] == "participant_left"))[-1]
                assert left["data"]["kind"] == "agent"
                with pytest.raises(Exception) as refused:  # noqa: PT011 - the SDK maps HTTP refusals variously
                    await claude.call_tool("roll_dice", {"expression": "1d6", "purpose": "after revocation"})
                assert refused.value is not None
            async with httpx.AsyncClient() as http:
                again = await http.post(
                    f"{bridge.base_url}/mcp",
                    headers={"Authorization": f"Bearer {key['key']}", "Accept": "application/json"},
                    json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                )
            assert again.status_code == 401
            assert again.json()["error"]["code"] == "invalid_token"


async def test_a_key_revoked_from_the_command_line_is_refused_soon_though_it_was_just_used(
    bridge: RunningBridge,
) -> None:
    """A verified key is taken on trust for a while; a withdrawal by another process ends that.

    ``ttrpg-bridge apikey revoke`` writes to the store beside the serving bridge: the bridge
    hears of it through the revocation ledger, the agent's session ends, and a new request
    with the key (one the bridge had verified a moment before) is refused with 401.
    """
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, (gm, mira)):
            key = await _player_key(mira, campaign_id)
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            headers = {"Authorization": f"Bearer {key['key']}", "Accept": "application/json"}
            async with agent(bridge, key["key"]) as claude:
                await until(gm.table, _joined_agent)
                await claude.call_tool("roll_dice", {"expression": "1d6", "purpose": "before revocation"})
                command = [sys.executable, "-m", "ttrpg_mcp.bridge.cli", "--data-dir", str(bridge.data_dir)]
                revoked = await anyio.run_process([*command, "apikey", "revoke", key["id"]], check=False)
                assert revoked.returncode == 0, revoked.stderr.decode()
                left = (await until(gm.table, lambda e: e["type"] == "participant_left"))[-1]
                assert left["data"]["kind"] == "agent"
            async with httpx.AsyncClient() as http:
                again = await http.post(f"{bridge.base_url}/mcp", headers=headers, json=ping)
            assert again.status_code == 401
            assert again.json()["error"]["code"] == "invalid_token"


async def test_the_gm_takes_an_agent_from_the_table_and_its_key_stops_working(bridge: RunningBridge) -> None:
    """DELETE .../agents/{participant_id} by the GM: the agent leaves, its next call and key are refused."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, (gm, mira)):
            key = await _player_key(mira, campaign_id)
            async with agent(bridge, key["key"]) as claude:
                seat = (await until(gm.table, _joined_agent))[-1]["data"]
                path = f"/api/campaigns/{campaign_id}/agents/{seat['participant_id']}"
                refused = await _delete(bridge, path, mira)
                assert refused.status_code == 403  # a player may not take agents away
                removed = await _delete(bridge, path, gm)
                assert removed.status_code == 204, removed.text
                left = (await until(gm.table, lambda e: e["type"] == "participant_left"))[-1]
                assert left["data"]["participant_id"] == seat["participant_id"]
                with pytest.raises(Exception) as after:  # noqa: PT011 - the SDK maps HTTP refusals variously
                    await claude.call_tool("roll_dice", {"expression": "1d6", "purpose": "after removal"})
                assert after.value is not None
            again = await _delete(bridge, path, gm)
            assert again.status_code == 404
            assert again.json()["error"]["code"] == "not_found"
            keys = await mira.client.list_api_keys()
            assert [k["revoked_at"] is not None for k in keys if k["id"] == key["id"]] == [True]


async def test_no_token_is_a_401_that_points_at_the_resource_metadata(bridge: RunningBridge) -> None:
    """Without a bearer token: 401, WWW-Authenticate with resource_metadata, a structured error."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{bridge.base_url}/mcp",
                headers={"Accept": "application/json, text/event-stream"},
                json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
            )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer resource_metadata="{bridge.base_url}/.well-known/oauth-protected-resource"'
    )
    assert response.json()["error"]["code"] == "unauthenticated"


async def test_a_credential_bound_to_no_campaign_is_refused_with_a_clear_error(bridge: RunningBridge) -> None:
    """An unscoped key or a password sign-in's token: 403 campaign_required, never a guessed table."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with BridgeClient(bridge.base_url) as client:
            await client.register(f"loose{anyio.current_time():.0f}", "password123")
            unscoped = (await client.create_api_key("anything"))["key"]
            assert client.tokens is not None
            async with httpx.AsyncClient() as http:
                for token in (unscoped, client.tokens.access_token):
                    response = await http.post(
                        f"{bridge.base_url}/mcp",
                        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                    )
                    assert response.status_code == 403
                    assert response.json()["error"]["code"] == "campaign_required"


async def test_an_agent_that_goes_quiet_idles_out_and_leaves_the_table(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """No request in flight and no open stream for mcp_idle_timeout: the session ends, the seat leaves."""
    data_dir = tmp_path_factory.mktemp("mcpidle") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir, {"TTRPG_MCP_IDLE_TIMEOUT": "1"}) as idle_bridge, anyio.fail_after(TEST_TIMEOUT):
        async with party(idle_bridge.base_url, places("player")) as (campaign_id, (gm, mira)):
            key = await _player_key(mira, campaign_id)
            headers = {
                "Authorization": f"Bearer {key['key']}",
                "Accept": "application/json, text/event-stream",
            }
            initialize = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "Sleepy", "version": "1"},
                },
            }
            async with httpx.AsyncClient(base_url=idle_bridge.base_url) as http:
                opened = await http.post("/mcp", headers=headers, json=initialize)
                assert opened.status_code == 200, opened.text
                session_id = opened.headers["mcp-session-id"]
                joined = (await until(gm.table, _joined_agent))[-1]["data"]
                assert joined["display_name"].startswith("Sleepy, assistant of")
                # Then nothing: no GET stream, no request. The bridge ends the session by itself.
                left = (await until(gm.table, lambda e: e["type"] == "participant_left"))[-1]
                assert left["data"]["participant_id"] == joined["participant_id"]
                gone = await http.post(
                    "/mcp",
                    headers=headers | {"Mcp-Session-Id": session_id, "Mcp-Protocol-Version": "2025-11-25"},
                    json={"jsonrpc": "2.0", "id": 2, "method": "ping"},
                )
            assert gone.status_code == 404
