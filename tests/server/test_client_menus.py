"""What an MCP client's menus show: listed resources, completions, prompt forms, sources.

A real ``ttrpg-mcp`` child over stdio, driven by the SDK's client, once as the local GM (no
``_meta``, as Claude Desktop) and once as a player seated at one table (``_meta`` as the
bridge sets it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, types
from mcp_calls import CALL_TIMEOUT, call

from ttrpg_mcp.server.launch import connect
from ttrpg_mcp.server.secrecy import META_KEY

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 120
PLAYER = "usr_player"


def _player_at(campaign_id: str) -> dict[str, Any]:
    return {META_KEY: {"role": "player", "user_id": PLAYER, "campaign_id": campaign_id}}


async def _seed(session: ClientSession) -> dict[str, str]:
    fen = await call(session, "create_campaign", name="Curse of the Fen", system="D&D 5e", setting="Marshes")
    peaks = await call(session, "create_campaign", name="Peaks of Ash", system="Blades")
    mira = await call(
        session,
        "create_character",
        campaign_id=fen["id"],
        name="Mira Thorn",
        character_class="Rogue",
        level=3,
        player_name="Ana",
    )
    bram = await call(
        session, "create_character", campaign_id=fen["id"], name="Bram", character_class="Cleric"
    )
    vex = await call(session, "create_character", campaign_id=peaks["id"], name="Vex", character_class="Lurk")
    play = await call(session, "start_session", campaign_id=fen["id"], title="The drowned bell")
    return {
        "fen": fen["id"],
        "peaks": peaks["id"],
        "mira": mira["id"],
        "bram": bram["id"],
        "vex": vex["id"],
        "session": play["id"],
    }


async def _resources(session: ClientSession, meta: dict[str, Any] | None) -> dict[str, types.Resource]:
    params = types.PaginatedRequestParams(_meta=meta) if meta is not None else None
    with anyio.fail_after(CALL_TIMEOUT):
        listed = (await session.list_resources(params=params)).resources
    return {resource.uri: resource for resource in listed}


async def _complete(
    session: ClientSession,
    ref: types.PromptReference | types.ResourceTemplateReference,
    name: str,
    value: str,
    meta: dict[str, Any] | None = None,
    context: dict[str, str] | None = None,
) -> list[str]:
    params = types.CompleteRequestParams(
        ref=ref,
        argument=types.CompletionArgument(name=name, value=value),
        context=None if context is None else types.CompletionContext(arguments=context),
        _meta=meta,
    )
    with anyio.fail_after(CALL_TIMEOUT):
        result = await session.send_request(types.CompleteRequest(params=params), types.CompleteResult)
    return result.completion.values


async def test_the_local_gm_lists_every_campaign_and_character_with_titles(data_dir: Path) -> None:
    """Over plain stdio, resources/list names each campaign and character sheet, titled and described."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            ids = await _seed(session)
            listed = await _resources(session, None)
    expected = {f"campaign://{ids['fen']}", f"campaign://{ids['peaks']}"}
    expected |= {f"character://{ids[key]}" for key in ("mira", "bram", "vex")}
    assert set(listed) == expected
    fen = listed[f"campaign://{ids['fen']}"]
    assert fen.title == "Curse of the Fen"
    assert fen.description is not None
    assert "D&D 5e" in fen.description
    assert fen.mime_type == "application/json"
    mira = listed[f"character://{ids['mira']}"]
    assert mira.title == "Mira Thorn (level 3 Rogue)"
    assert mira.description is not None
    assert "Curse of the Fen" in mira.description
    assert "Ana" in mira.description


async def test_a_player_lists_only_their_table(data_dir: Path) -> None:
    """A player's resources/list holds their campaign and its characters, nothing of another table."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            ids = await _seed(session)
            player = await _resources(session, _player_at(ids["fen"]))
            # How the bridge's shared catalog asks: a spectator seated nowhere learns no campaign.
            nobody = await _resources(session, {META_KEY: {"role": "spectator", "user_id": None}})
    assert set(player) == {
        f"campaign://{ids['fen']}",
        f"character://{ids['mira']}",
        f"character://{ids['bram']}",
    }
    assert nobody == {}


async def test_completion_offers_ids_by_name_or_id_prefix_within_the_viewers_reach(data_dir: Path) -> None:
    """campaign_id and character_id complete from a name's words or an id's start; a player sees one table."""
    campaign_template = types.ResourceTemplateReference(uri="campaign://{campaign_id}")
    character_template = types.ResourceTemplateReference(uri="character://{character_id}")
    recap = types.PromptReference(name="session_recap")
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            ids = await _seed(session)
            by_name = await _complete(session, campaign_template, "campaign_id", "cur")
            by_word = await _complete(session, recap, "campaign_id", "ash")
            everything = await _complete(session, campaign_template, "campaign_id", "")
            by_id = await _complete(session, campaign_template, "campaign_id", ids["peaks"][:9])
            in_fen = await _complete(
                session, character_template, "character_id", "", context={"campaign_id": ids["fen"]}
            )
            mira = await _complete(session, character_template, "character_id", "thorn")
            sessions = await _complete(
                session, recap, "session_id", "drowned", context={"campaign_id": ids["fen"]}
            )
            difficulty = await _complete(
                session, types.PromptReference(name="encounter_builder"), "difficulty", "d"
            )
            player_campaigns = await _complete(
                session, campaign_template, "campaign_id", "", meta=_player_at(ids["fen"])
            )
            player_vex = await _complete(
                session, character_template, "character_id", "vex", meta=_player_at(ids["fen"])
            )
            unknown = await _complete(session, recap, "tone", "x")
            capabilities = session.server_capabilities
    assert by_name == [ids["fen"]]
    assert by_word == [ids["peaks"]]
    assert set(everything) == {ids["fen"], ids["peaks"]}
    assert by_id == [ids["peaks"]]
    assert set(in_fen) == {ids["mira"], ids["bram"]}
    assert mira == [ids["mira"]]
    assert sessions == [ids["session"]]
    assert difficulty == ["deadly"]
    assert player_campaigns == [ids["fen"]]
    assert player_vex == []
    assert unknown == []
    assert capabilities is not None
    assert capabilities.completions is not None


async def test_every_prompt_argument_has_a_description(data_dir: Path) -> None:
    """A client's prompt form can explain each field."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            prompts = (await session.list_prompts()).prompts
    arguments = [(p.name, a) for p in prompts for a in p.arguments or []]
    assert len(arguments) >= 8
    for name, argument in arguments:
        assert argument.description, f"{name}.{argument.name} has no description"


async def test_list_sources_shows_a_player_no_file_path(data_dir: Path, tmp_path: Path) -> None:
    """The GM sees where a source was imported from; a player sees its name and title only."""
    document = tmp_path / "secret-folder" / "homebrew.md"
    document.parent.mkdir()
    document.write_text("# Bog Hound\nA hound of the marsh. Bites.\n")
    command = [sys.executable, "-m", "ttrpg_mcp.server.cli", "--data-dir", str(data_dir), "import"]
    command += [str(document), "--source", "homebrew"]
    await anyio.to_thread.run_sync(
        lambda: subprocess.run(command, check=True, capture_output=True, timeout=120)  # our own CLI
    )
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            fen = await call(session, "create_campaign", name="Curse of the Fen")
            gm = await call(session, "list_sources")
            with anyio.fail_after(CALL_TIMEOUT):
                result = await session.call_tool("list_sources", {}, meta=_player_at(fen["id"]))
    player = result.structured_content
    assert player is not None
    gm_homebrew = next(s for s in gm["sources"] if s["slug"] == "homebrew")
    assert "secret-folder" in gm_homebrew["origin"]
    player_homebrew = next(s for s in player["sources"] if s["slug"] == "homebrew")
    assert player_homebrew["title"]
    assert "secret-folder" not in str(player)
    assert all(source["origin"] == "" for source in player["sources"])
