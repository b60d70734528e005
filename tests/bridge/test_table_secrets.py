"""GM secrets through the bridge: a player's tool calls, resource reads, prompts and events hold none.

The GM prepares a campaign at the table with a GM-only text in every kind of content and
reads it all first (so the read cache holds the GM's answers); then a player and a spectator
read the same things through ``tool_call``, ``resource_get`` and ``prompt_get``, and a player
tries to pass as the GM by putting ``_meta`` in a request. None of it may carry a secret.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from bridge_process import RunningBridge, run_bridge
from tables import Seat, party, places

from ttrpg_mcp.client import BridgeClientError
from ttrpg_mcp.server.secrecy import META_KEY

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 180.0
SECRETS = {
    "world_state": "Quillox-world",
    "character": "Quillox-character",
    "npc_secret": "Quillox-npcsecret",
    "npc_notes": "Quillox-npcnotes",
    "location": "Quillox-location",
    "item": "Quillox-item",
    "gm_note": "Quillox-note",
    "hidden_combatant": "Quillox-ambusher",
    "gm_rules": "Quillox-adventure",
}
PUBLIC_NOTE = "The ferry leaves at dawn"
ADVENTURE = "# Lair\n\n## Lurker of the Ford\n\nA creature attack from the river. Quillox-adventure.\n"


def _leaks(text: str) -> list[str]:
    return sorted(name for name, secret in SECRETS.items() if secret in text)


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    root = tmp_path_factory.mktemp("secrets")
    data_dir = root / "data"
    data_dir.mkdir()
    (root / "lair.md").write_text(ADVENTURE)
    command = [sys.executable, "-m", "ttrpg_mcp.server.cli", "--data-dir", str(data_dir), "import"]
    command += [str(root / "lair.md"), "--source", "adventure", "--kind", "monster", "--gm-only"]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    with run_bridge(data_dir) as running:
        yield running


async def _seed(gm: Seat, campaign_id: str, player_id: str) -> dict[str, str]:
    call = gm.table.call_tool
    # The key is secret before its value is written, so no event ever carried it openly.
    await call("save_campaign", {"campaign_id": campaign_id, "secret_keys": ["lurker"]})
    await gm.table.update_campaign(world_state={"weather": "fog", "lurker": SECRETS["world_state"]})
    character = await call(
        "create_character",
        {"campaign_id": campaign_id, "name": "Mira", "owner": player_id, "gm_notes": SECRETS["character"]},
    )
    npc = {"campaign_id": campaign_id, "name": "Ferryman", "notes": SECRETS["npc_notes"]}
    await call("create_npc", npc | {"secrets": [SECRETS["npc_secret"]]})
    await call("create_location", {"campaign_id": campaign_id, "name": "Ford", "notes": SECRETS["location"]})
    await call("create_item", {"campaign_id": campaign_id, "name": "Oar", "gm_notes": SECRETS["item"]})
    play = await call("start_session", {"campaign_id": campaign_id})
    await call("add_note", {"campaign_id": campaign_id, "body": SECRETS["gm_note"]})
    await call("add_note", {"campaign_id": campaign_id, "body": PUBLIC_NOTE, "visibility": "players"})
    combatants = [
        {"character_id": character["id"], "initiative": 10},
        {"name": SECRETS["hidden_combatant"], "initiative": 20, "hidden": True},
    ]
    await call("set_initiative", {"session_id": play["id"], "combatants": combatants})
    hits = await call("search", {"query": "Lurker ford", "source": "adventure"})
    return {"character_id": character["id"], "rules_uri": hits["hits"][0]["uri"]}


async def _read_everything(seat: Seat, campaign_id: str, ids: dict[str, str]) -> str:
    """Every read path a seat has, answers and refusals alike, as one text."""
    answers: list[str] = []

    async def attempt(call: Any, *args: Any) -> None:
        try:
            answers.append(json.dumps(await call(*args)))
        except BridgeClientError as error:  # a refusal must not leak either
            answers.append(f"{error.code} {error} {json.dumps(error.data)}")

    table = seat.table
    await attempt(table.call_tool, "get_campaign", {"campaign_id": campaign_id})
    await attempt(table.call_tool, "get_character", {"character_id": ids["character_id"]})
    for kind in ("characters", "npcs", "locations", "items", "notes"):
        await attempt(table.call_tool, "list_items", {"campaign_id": campaign_id, "kind": kind})
    await attempt(table.call_tool, "search", {"query": "Lurker ford creature attack"})
    await attempt(table.call_tool, "search", {"query": "Quillox"})
    await attempt(table.call_tool, "list_sources", {})
    for uri in (f"campaign://{campaign_id}", f"character://{ids['character_id']}", ids["rules_uri"]):
        await attempt(table.read_resource, uri)
    await attempt(table.get_prompt, "session_recap", {"campaign_id": campaign_id})
    await attempt(table.get_prompt, "npc_generator", {"campaign_id": campaign_id})
    await attempt(table.get_prompt, "encounter_builder", {"campaign_id": campaign_id, "environment": "river"})
    return "\n".join(answers)


async def test_a_player_at_the_table_never_reads_a_gm_secret(bridge: RunningBridge) -> None:
    """After the GM read everything (cached), a player's and a spectator's reads hold no secret."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player", "spectator")) as (campaign_id, seats):
            gm, player, spectator = seats
            ids = await _seed(gm, campaign_id, player.user_id)
            gm_view = await _read_everything(gm, campaign_id, ids)
            player_view = await _read_everything(player, campaign_id, ids)
            spectator_view = await _read_everything(spectator, campaign_id, ids)
            # The table's own campaign event, sent to everyone after a GM's change, is masked too.
            await gm.table.update_campaign(description="Fog over the ford")
            events = [await player.table.next_event("campaign_update")]
            while events[-1]["data"]["campaign"]["description"] != "Fog over the ford":
                events.append(await player.table.next_event("campaign_update"))
    # campaign:// carries the running session's combat, hidden combatants masked for non-GMs.
    assert _leaks(gm_view) == sorted(SECRETS)
    assert _leaks(player_view) == []
    assert _leaks(spectator_view) == []
    assert PUBLIC_NOTE in player_view
    assert "fog" in player_view
    assert len(events) >= 2  # the GM's world_state change reached the player too, masked
    assert _leaks(json.dumps(events)) == []
    assert events[-1]["data"]["campaign"]["world_state"] == {"weather": "fog"}


async def test_a_client_cannot_pass_as_the_gm_with_its_own_meta(bridge: RunningBridge) -> None:
    """_meta in a request's params or envelope never reaches the MCP server as the viewer."""
    forged = {META_KEY: {"role": "gm", "user_id": None, "campaign_id": None}}
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, seats):
            gm, player = seats
            await gm.table.call_tool(
                "add_note", {"campaign_id": campaign_id, "body": SECRETS["gm_note"], "visibility": "gm"}
            )
            attempts = [
                {
                    "type": "tool_call",
                    "method": "list_items",
                    "params": {"campaign_id": campaign_id, "kind": "notes", "_meta": forged},
                },
                {
                    "type": "tool_call",
                    "method": "list_items",
                    "params": {"campaign_id": campaign_id, "kind": "notes"},
                    "_meta": forged,
                },
                {"type": "resource_get", "params": {"uri": f"campaign://{campaign_id}", "_meta": forged}},
                {
                    "type": "prompt_get",
                    "method": "session_recap",
                    "params": {"campaign_id": campaign_id},
                    "_meta": forged,
                },
            ]
            replies = [
                await player.table.request_raw({"id": f"forge-{n}"} | m) for n, m in enumerate(attempts)
            ]
            honest = await player.table.call_tool("list_items", {"campaign_id": campaign_id, "kind": "notes"})
    assert _leaks(json.dumps(replies)) == []
    assert honest["items"] == []
