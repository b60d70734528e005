"""GM secrets over a real ``ttrpg-mcp`` child: a player's every read path leaves them out.

A campaign is seeded by the local GM (no ``_meta``, as Claude Desktop) with a GM-only text in
every kind of content; then every tool, resource and prompt is read as a player and as a
spectator named in ``_meta``, and none of the texts may appear anywhere in the answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession
from mcp.types import CallToolResult
from mcp_calls import CALL_TIMEOUT, call, text_of

from ttrpg_mcp.server.launch import connect
from ttrpg_mcp.server.secrecy import META_KEY

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 180
PLAYER = "usr_player1"
OTHER_PLAYER = "usr_player2"

# One GM-only text per kind of content, each findable by the GM.
SECRETS = {
    "world_state": "Zorblax-world",
    "character": "Zorblax-character",
    "npc_secret": "Zorblax-npcsecret",
    "npc_notes": "Zorblax-npcnotes",
    "location": "Zorblax-location",
    "item": "Zorblax-item",
    "gm_note": "SECRET: the ferryman is the Lurker Zorblax-note",
    "other_player_note": "Zorblax-otherplayer",
    "hidden_combatant": "Zorblax-ambusher",
    "gm_rules": "Zorblax-adventure",
}
PUBLIC_NOTE = "The ferry leaves at dawn"
PLAYER_NOTE = "Only for you: a key under the mat"

ADVENTURE = """# The Lurker's Lair

## Lurker of the Ford

A creature attack from the river. Zorblax-adventure: the ferryman is the Lurker.
"""


def _leaks(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret.split()[-1] in text]


def _dump(result: CallToolResult) -> str:
    return json.dumps(result.structured_content) + "\n" + text_of(result)


async def _seed(session: ClientSession) -> dict[str, Any]:
    """Everything a GM prepares, with a secret in each part; the ids the reads need."""
    campaign = await call(
        session,
        "create_campaign",
        name="The Drowned Coast",
        world_state={"weather": "fog", "lurker": SECRETS["world_state"]},
        secret_keys=["lurker"],
    )
    campaign_id = campaign["id"]
    character = await call(
        session,
        "create_character",
        campaign_id=campaign_id,
        name="Mira",
        owner=PLAYER,
        hp_max=12,
        notes="My sister is missing",
        gm_notes=SECRETS["character"],
    )
    await call(
        session,
        "create_npc",
        campaign_id=campaign_id,
        name="Old Ferryman",
        role="ferryman",
        notes=SECRETS["npc_notes"],
        secrets=[SECRETS["npc_secret"]],
    )
    await call(
        session, "create_location", campaign_id=campaign_id, name="The Ford", notes=SECRETS["location"]
    )
    await call(session, "create_item", campaign_id=campaign_id, name="Bone Oar", gm_notes=SECRETS["item"])
    play = await call(session, "start_session", campaign_id=campaign_id, title="Fog")
    await call(session, "add_note", campaign_id=campaign_id, body=SECRETS["gm_note"], title="Lurker")
    await call(session, "add_note", campaign_id=campaign_id, body=PUBLIC_NOTE, visibility="players")
    await call(session, "add_note", campaign_id=campaign_id, body=PLAYER_NOTE, visibility=PLAYER)
    await call(
        session,
        "add_note",
        campaign_id=campaign_id,
        body=SECRETS["other_player_note"],
        visibility=OTHER_PLAYER,
    )
    order = await call(
        session,
        "set_initiative",
        session_id=play["id"],
        combatants=[
            {"character_id": character["id"], "initiative": 15},
            {"name": SECRETS["hidden_combatant"], "initiative": 18, "hp": 30, "hidden": True},
        ],
    )
    sources = await call(session, "list_sources")
    adventure = next(s for s in sources["sources"] if s["slug"] == "adventure")
    assert adventure["gm_only"] is True
    hits = await call(session, "search", query="Lurker ford", source="adventure")
    return {
        "campaign_id": campaign_id,
        "character_id": character["id"],
        "session_id": play["id"],
        "rules_uri": hits["hits"][0]["uri"],
        "hidden_id": next(c["id"] for c in order["order"] if c["hidden"]),
    }


async def _read_everything(session: ClientSession, ids: dict[str, Any], meta: dict[str, Any] | None) -> str:
    """Every read path's answer as one text: each tool, each resource, search and every prompt."""
    campaign_id = ids["campaign_id"]
    answers: list[str] = []

    async def tool(name: str, **arguments: Any) -> None:
        with anyio.fail_after(CALL_TIMEOUT):
            result = await session.call_tool(name, arguments, meta=meta)
        answers.append(_dump(result))

    await tool("get_campaign", campaign_id=campaign_id)
    await tool("list_campaigns")
    await tool("get_character", character_id=ids["character_id"])
    for kind in ("characters", "npcs", "locations", "items", "notes"):
        await tool("list_items", campaign_id=campaign_id, kind=kind)
    await tool("list_items", campaign_id=campaign_id, kind="notes", name_contains="Lurker")
    await tool("search", query="Lurker ford creature attack")
    await tool("search", query="Zorblax")
    await tool("list_sources")
    await tool("next_turn", session_id=ids["session_id"])
    await tool("update_hp", target_id=ids["hidden_id"], amount=0, kind="healing")
    for uri in (f"campaign://{campaign_id}", f"character://{ids['character_id']}", ids["rules_uri"]):
        with anyio.fail_after(CALL_TIMEOUT):
            try:
                contents = (await session.read_resource(uri, meta=meta)).contents
                answers.append(json.dumps([c.model_dump(mode="json") for c in contents]))
            except Exception as error:  # a refusal is an answer too: it must not leak either
                answers.append(str(error))
    for name, arguments in (
        ("session_recap", {"campaign_id": campaign_id}),
        ("npc_generator", {"campaign_id": campaign_id}),
        ("encounter_builder", {"campaign_id": campaign_id, "environment": "river"}),
    ):
        with anyio.fail_after(CALL_TIMEOUT):
            prompt = await session.get_prompt(name, arguments, meta=meta)
        answers.append(json.dumps([m.model_dump(mode="json") for m in prompt.messages]))
    return "\n".join(answers)


def _import_adventure(data_dir: Path, tmp_path: Path) -> None:
    document = tmp_path / "lair.md"
    document.write_text(ADVENTURE)
    command = [sys.executable, "-m", "ttrpg_mcp.server.cli", "--data-dir", str(data_dir), "import"]
    command += [str(document), "--source", "adventure", "--kind", "monster", "--gm-only"]
    subprocess.run(command, check=True, capture_output=True, timeout=120)  # our own CLI


def _viewer(role: str, user_id: str | None, campaign_id: str | None) -> dict[str, Any]:
    return {META_KEY: {"role": role, "user_id": user_id, "campaign_id": campaign_id}}


async def test_a_player_reads_no_gm_secret_on_any_path_while_the_gm_reads_them_all(
    data_dir: Path, tmp_path: Path
) -> None:
    """Tools, resources, search and prompts as a player or spectator hold no GM-only text."""
    _import_adventure(data_dir, tmp_path)
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            ids = await _seed(session)
            campaign_id = ids["campaign_id"]
            local_gm = await _read_everything(session, ids, None)
            table_gm = await _read_everything(session, ids, _viewer("gm", "usr_gm", campaign_id))
            player = await _read_everything(session, ids, _viewer("player", PLAYER, campaign_id))
            spectator = await _read_everything(session, ids, _viewer("spectator", "usr_watch", campaign_id))
            gm_elsewhere = await _read_everything(session, ids, _viewer("gm", "usr_gm2", "camp_elsewhere"))
            malformed = await _read_everything(session, ids, {META_KEY: {"role": "admin"}})
    assert sorted(_leaks(local_gm)) == sorted(SECRETS)
    assert sorted(_leaks(table_gm)) == sorted(SECRETS)
    assert _leaks(player) == []
    assert _leaks(spectator) == []
    assert _leaks(malformed) == []
    # A GM of another campaign is a player here; GM-only rules stay theirs (they are not campaign content).
    assert _leaks(gm_elsewhere) == ["gm_rules"]
    # What is theirs still reaches them: the public note, the note for this player, the world's open facts.
    assert PUBLIC_NOTE in player
    assert PLAYER_NOTE in player
    assert PLAYER_NOTE not in spectator
    assert "fog" in player
    assert "Hidden combatant" in player


async def test_notes_default_to_the_gm_for_a_gm_and_to_the_table_for_a_player(data_dir: Path) -> None:
    """add_note's default visibility follows who writes; an author always reads their own note."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            campaign_id = (await call(session, "create_campaign", name="Defaults"))["id"]
            as_gm = await call(session, "add_note", campaign_id=campaign_id, body="gm prep")
            player_meta = _viewer("player", PLAYER, campaign_id)
            with anyio.fail_after(CALL_TIMEOUT):
                by_player = await session.call_tool(
                    "add_note", {"campaign_id": campaign_id, "body": "we owe the inn"}, meta=player_meta
                )
                to_gm = await session.call_tool(
                    "add_note",
                    {"campaign_id": campaign_id, "body": "psst, GM", "visibility": "gm"},
                    meta=player_meta,
                )
                listing = await session.call_tool(
                    "list_items", {"campaign_id": campaign_id, "kind": "notes"}, meta=player_meta
                )
                other = await session.call_tool(
                    "list_items",
                    {"campaign_id": campaign_id, "kind": "notes"},
                    meta=_viewer("player", OTHER_PLAYER, campaign_id),
                )
                campaign = await session.call_tool(
                    "get_campaign",
                    {"campaign_id": campaign_id},
                    meta=_viewer("player", OTHER_PLAYER, campaign_id),
                )
    assert as_gm["visibility"] == "gm"
    assert as_gm["author"] == ""
    assert by_player.structured_content is not None
    assert by_player.structured_content["visibility"] == "players"
    assert by_player.structured_content["author"] == PLAYER
    assert to_gm.structured_content is not None
    assert to_gm.structured_content["visibility"] == "gm"
    assert listing.structured_content is not None
    assert [n["body"] for n in listing.structured_content["items"]] == ["we owe the inn", "psst, GM"]
    assert other.structured_content is not None
    assert [n["body"] for n in other.structured_content["items"]] == ["we owe the inn"]
    assert other.structured_content["total"] == 1
    assert campaign.structured_content is not None
    assert campaign.structured_content["counts"]["notes"] == 1


async def test_only_the_gm_may_change_what_is_secret(data_dir: Path) -> None:
    """A player can neither write gm_notes nor touch a secret world-state key or the secret list."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            campaign = await call(
                session, "create_campaign", name="Guarded", world_state={"x": "1"}, secret_keys=["x"]
            )
            character = await call(session, "create_character", campaign_id=campaign["id"], name="Ana")
            meta = _viewer("player", PLAYER, campaign["id"])
            with anyio.fail_after(CALL_TIMEOUT):
                notes = await session.call_tool(
                    "update_character",
                    {"character_id": character["id"], "changes": {"gm_notes": "mine"}},
                    meta=meta,
                )
                world = await session.call_tool(
                    "save_campaign", {"campaign_id": campaign["id"], "world_state": {"x": None}}, meta=meta
                )
                keys = await session.call_tool(
                    "save_campaign", {"campaign_id": campaign["id"], "secret_keys": []}, meta=meta
                )
                allowed = await session.call_tool(
                    "save_campaign", {"campaign_id": campaign["id"], "world_state": {"y": "2"}}, meta=meta
                )
                rollback = await session.call_tool(
                    "rollback_campaign", {"campaign_id": campaign["id"], "version": 1}, meta=meta
                )
            after = await call(session, "get_campaign", campaign_id=campaign["id"])
    assert notes.is_error
    assert "gm_notes" in text_of(notes)
    assert world.is_error
    assert keys.is_error
    assert not allowed.is_error
    assert rollback.is_error
    assert after["world_state"] == {"x": "1", "y": "2"}
    assert after["secret_keys"] == ["x"]
