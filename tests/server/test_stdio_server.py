"""The MCP server as Claude Desktop sees it: a real child process over stdio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession
from mcp.types import TextContent, TextResourceContents
from mcp_calls import call, call_error, text_of

from ttrpg_mcp.server.launch import connect

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = {
    "roll_dice",
    "search",
    "list_sources",
    "create_campaign",
    "get_campaign",
    "save_campaign",
    "list_campaigns",
    "rollback_campaign",
    "create_character",
    "get_character",
    "update_character",
    "list_items",
    "create_npc",
    "create_location",
    "create_item",
    "add_note",
    "start_session",
    "set_initiative",
    "next_turn",
    "update_initiative",
    "update_hp",
    "end_session",
}
# Each test may start a server or two; bound the whole test, not just each call.
TEST_TIMEOUT = 120


async def test_server_lists_every_tool_resource_template_and_prompt(data_dir: Path) -> None:
    """Initialize, then every tool has a description and input and output schemas."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            tools = (await session.list_tools()).tools
            assert {tool.name for tool in tools} == EXPECTED_TOOLS
            for tool in tools:
                assert tool.description, tool.name
                assert tool.input_schema["type"] == "object", tool.name
                assert tool.output_schema is not None, tool.name
            templates = (await session.list_resource_templates()).resource_templates
            assert {t.uri_template for t in templates} == {
                "campaign://{campaign_id}",
                "character://{character_id}",
                "rules://{source}/{section}",
            }
            prompts = {p.name for p in (await session.list_prompts()).prompts}
            assert prompts == {"session_recap", "npc_generator", "encounter_builder"}


async def test_roll_dice_returns_every_die_and_a_readable_text(data_dir: Path) -> None:
    """roll_dice gives the total within bounds, each die, and the purpose."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            roll = await call(session, "roll_dice", expression="4d6kh3", purpose="strength")
            assert 3 <= roll["total"] <= 18
            assert len(roll["dice"]) == 4
            assert sum(1 for die in roll["dice"] if die["kept"]) == 3
            assert roll["purpose"] == "strength"
            adv = await call(session, "roll_dice", expression="1d20+5 [attack]", advantage="advantage")
            assert len(adv["dice"]) == 2
            assert adv["label"] == "attack"
            assert 6 <= adv["total"] <= 25
            error = await call_error(session, "roll_dice", expression="1001d6")
            assert "1000" in error
            error = await call_error(session, "roll_dice", expression="2d6+")
            assert "invalid_dice" in error


async def test_campaign_saves_keep_versions_and_rollback_restores_one(data_dir: Path) -> None:
    """Every save bumps the version; rollback restores content as a new version."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            campaign = await call(
                session, "create_campaign", name="Ashes", system="d20", world_state={"season": "winter"}
            )
            cid = campaign["id"]
            assert campaign["version"] == 1
            saved = await call(
                session, "save_campaign", campaign_id=cid, name="Ashes of Ember", world_state={"war": True}
            )
            assert saved["version"] == 2
            assert saved["world_state"] == {"season": "winter", "war": True}
            saved = await call(session, "save_campaign", campaign_id=cid, world_state={"season": None})
            assert saved["world_state"] == {"war": True}
            assert [v["version"] for v in saved["versions"]] == [2, 1]
            stale = await call_error(session, "save_campaign", campaign_id=cid, name="X", expected_version=1)
            assert "conflict" in stale
            rolled = await call(session, "rollback_campaign", campaign_id=cid, version=1)
            assert rolled["name"] == "Ashes"
            assert rolled["world_state"] == {"season": "winter"}
            assert rolled["version"] == 4
            listing = await call(session, "list_campaigns")
            assert [c["id"] for c in listing["campaigns"]] == [cid]
            await call(session, "save_campaign", campaign_id=cid, archived=True)
            assert (await call(session, "list_campaigns"))["campaigns"] == []
            assert len((await call(session, "list_campaigns", include_archived=True))["campaigns"]) == 1


async def test_characters_npcs_locations_and_items_list_with_filters(data_dir: Path) -> None:
    """Create each kind of entity and find it again through list_items filters."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            cid = (await call(session, "create_campaign", name="Marsh"))["id"]
            mira = await call(
                session,
                "create_character",
                campaign_id=cid,
                name="Mira",
                owner="user-1",
                abilities={"dex": 16, "Wisdom": 14},
                hp_max=24,
                level=3,
            )
            assert mira["hp_current"] == 24
            assert mira["abilities"] == {"dex": 16, "wis": 14}
            await call(session, "create_character", campaign_id=cid, name="Bran", owner="user-2")
            updated = await call(
                session,
                "update_character",
                character_id=mira["id"],
                changes={"level": 4, "conditions": ["Poisoned"]},
            )
            assert updated["level"] == 4
            assert updated["conditions"] == ["poisoned"]
            await call(
                session, "create_npc", campaign_id=cid, name="Old Tam", role="ferryman", location="the ford"
            )
            ford = await call(session, "create_location", campaign_id=cid, name="The Ford")
            await call(session, "create_item", campaign_id=cid, name="Rope", holder=mira["id"], quantity=2)
            await call(session, "create_item", campaign_id=cid, name="Lantern", holder=ford["id"])
            mine = await call(session, "list_items", campaign_id=cid, kind="characters", owner="user-1")
            assert [c["name"] for c in mine["items"]] == ["Mira"]
            npcs = await call(session, "list_items", campaign_id=cid, kind="npcs", location="ford")
            assert [n["name"] for n in npcs["items"]] == ["Old Tam"]
            held = await call(session, "list_items", campaign_id=cid, kind="items", holder=mira["id"])
            assert [(i["name"], i["quantity"]) for i in held["items"]] == [("Rope", 2)]
            page = await call(session, "list_items", campaign_id=cid, kind="characters", limit=1, offset=1)
            assert page["total"] == 2
            assert [c["name"] for c in page["items"]] == ["Mira"]
            sheet = await call(session, "get_character", character_id=mira["id"])
            assert sheet["level"] == 4
            campaign = await call(session, "get_campaign", campaign_id=cid)
            assert campaign["counts"]["characters"] == 2
            assert campaign["counts"]["items"] == 2


async def test_a_combat_round_tracks_initiative_and_hit_points(data_dir: Path) -> None:
    """Initiative sorts and rolls, turns wrap into rounds, damage applies conditions."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            cid = (await call(session, "create_campaign", name="Fight"))["id"]
            mira = await call(session, "create_character", campaign_id=cid, name="Mira", hp_max=20)
            sess = await call(session, "start_session", campaign_id=cid)
            assert sess["number"] == 1
            again = await call_error(session, "start_session", campaign_id=cid)
            assert "still running" in again
            order = await call(
                session,
                "set_initiative",
                session_id=sess["id"],
                combatants=[
                    {"character_id": mira["id"], "initiative": 15},
                    {"name": "Goblin", "initiative": 18, "hp": 7, "max_hp": 7},
                    {"name": "Wolf", "modifier": -3, "hp": 11},
                ],
            )
            names = [c["name"] for c in order["order"]]
            assert names[:1] == ["Goblin"]
            assert set(names) == {"Goblin", "Mira", "Wolf"}
            assert order["round_number"] == 1
            assert order["current"]["name"] == "Goblin"
            wolf = next(c for c in order["order"] if c["name"] == "Wolf")
            assert -2 <= wolf["initiative"] <= 17  # 1d20-3: always after the goblin
            goblin = order["order"][0]
            hit = await call(session, "update_hp", target_id=goblin["id"], amount=10)
            assert hit["hp_after"] == 0
            assert "defeated" in hit["conditions"]
            turn = await call(session, "next_turn", session_id=sess["id"])
            turn = await call(session, "next_turn", session_id=sess["id"])
            turn = await call(session, "next_turn", session_id=sess["id"])
            # Three advances over three combatants, the goblin skipped: round 2 has begun.
            assert turn["round_number"] == 2
            assert turn["current"]["name"] != "Goblin"
            temp = await call(session, "update_hp", target_id=mira["id"], amount=5, kind="temp")
            assert temp["hp_temp"] == 5
            down = await call(session, "update_hp", target_id=mira["id"], amount=25)
            assert down["hp_after"] == 0
            assert set(down["conditions_added"]) == {"unconscious", "dying"}
            up = await call(session, "update_hp", target_id=mira["id"], amount=4, kind="healing")
            assert up["hp_after"] == 4
            assert "unconscious" in up["conditions_removed"]
            tracker = await call(session, "next_turn", session_id=sess["id"])
            assert next(c for c in tracker["order"] if c["name"] == "Mira")["hp"] == 4
            ended = await call(session, "end_session", session_id=sess["id"], summary="Won.")
            assert ended["ended_at"] is not None
            assert "ended" in await call_error(session, "next_turn", session_id=sess["id"])


async def test_notes_join_the_running_session_and_feed_the_recap_prompt(data_dir: Path) -> None:
    """A note taken during a session belongs to it and appears in session_recap."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            cid = (await call(session, "create_campaign", name="Notes", system="d20"))["id"]
            before = await call(session, "add_note", campaign_id=cid, body="Prep: the bridge is out.")
            assert before["session_id"] is None
            sess = await call(session, "start_session", campaign_id=cid, title="Into the marsh")
            note = await call(
                session,
                "add_note",
                campaign_id=cid,
                title="Ambush",
                body="Goblins at the ford.",
                tags=["Combat"],
            )
            assert note["session_id"] == sess["id"]
            assert note["tags"] == ["combat"]
            await call(session, "end_session", session_id=sess["id"], summary="They crossed.")
            tagged = await call(session, "list_items", campaign_id=cid, kind="notes", tag="combat")
            assert [n["title"] for n in tagged["items"]] == ["Ambush"]
            recap = await session.get_prompt("session_recap", {"campaign_id": cid})
            text = "\n".join(m.content.text for m in recap.messages if isinstance(m.content, TextContent))
            assert "Goblins at the ford." in text
            assert "They crossed." in text
            assert "Prep: the bridge is out." not in text
            npc = await session.get_prompt("npc_generator", {"campaign_id": cid, "role": "smuggler"})
            assert "smuggler" in str(npc.messages[0].content)
            encounter = await session.get_prompt(
                "encounter_builder", {"campaign_id": cid, "difficulty": "hard"}
            )
            assert "rules://" in str(encounter.messages[0].content)


async def test_search_finds_compendium_rules_and_the_resource_reads_them_whole(data_dir: Path) -> None:
    """The starter compendium is indexed on first start; hits resolve to rules:// resources."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            sources = await call(session, "list_sources")
            starter = next(s for s in sources["sources"] if s["slug"] == "starter")
            assert starter["section_count"] >= 45
            for query, title in (("prone", "Prone"), ("initiative", "Initiative")):
                found = await call(session, "search", query=query, kind="rule")
                assert found["hits"][0]["title"] == title, found["hits"][:3]
            found = await call(session, "search", query="advantage disadvantage")
            assert any(h["title"] == "Advantage and Disadvantage" for h in found["hits"][:3])
            hit = found["hits"][0]
            resource = await session.read_resource(hit["uri"])
            content = resource.contents[0]
            assert isinstance(content, TextResourceContents)
            assert content.text.startswith(f"# {hit['title']}")
            odd = await call(session, "search", query='"NEAR( prone -- OR *')
            assert odd["hits"], "syntax characters must be treated as plain words"
            nothing = await call(session, "search", query="zzyzx")
            assert nothing["hits"] == []
            assert "invalid_input" in await call_error(session, "search", query="?!")
            assert "not_found" in await call_error(session, "search", query="prone", source="nope")


async def test_every_wrong_input_is_a_tool_error_and_the_server_keeps_serving(data_dir: Path) -> None:
    """Unknown ids, invalid fields and bad dice give clear errors; later calls still work."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            cid = (await call(session, "create_campaign", name="Errors"))["id"]
            char = (await call(session, "create_character", campaign_id=cid, name="Ada"))["id"]
            cases = [
                ("get_campaign", {"campaign_id": "camp_missing"}, "no campaign"),
                ("create_campaign", {"name": ""}, "name"),
                ("create_campaign", {"name": "x", "world_state": "not a dict"}, "world_state"),
                ("save_campaign", {"campaign_id": cid}, "nothing to change"),
                ("rollback_campaign", {"campaign_id": cid, "version": 9}, "no version 9"),
                ("create_character", {"campaign_id": "camp_missing", "name": "x"}, "no campaign"),
                ("create_character", {"campaign_id": cid, "name": "x", "abilities": {"luck": 3}}, "luck"),
                (
                    "create_character",
                    {"campaign_id": cid, "name": "x", "hp_max": 5, "hp_current": 9},
                    "hp_current",
                ),
                ("get_character", {"character_id": "char_missing"}, "no character"),
                ("update_character", {"character_id": char, "changes": {"speed": 30}}, "speed"),
                ("update_character", {"character_id": char, "changes": {"level": 0}}, "level"),
                ("update_hp", {"target_id": char, "amount": -3}, "amount"),
                ("update_hp", {"target_id": "cbt_missing", "amount": 3}, "no character or combatant"),
                ("list_items", {"campaign_id": cid, "kind": "dragons"}, "kind"),
                ("list_items", {"campaign_id": cid, "kind": "items", "owner": "u"}, "does not apply"),
                ("create_item", {"campaign_id": cid, "name": "x", "holder": "char_missing"}, "holder"),
                ("add_note", {"campaign_id": cid, "body": ""}, "body"),
                ("next_turn", {"session_id": "sess_missing"}, "no session"),
                ("set_initiative", {"session_id": "sess_missing", "combatants": []}, "no session"),
                ("roll_dice", {"expression": "1d0"}, "invalid_dice"),
                ("roll_dice", {"expression": "1/0"}, "invalid_dice"),
                ("roll_dice", {"expression": "(" * 300 + "1" + ")" * 300}, "invalid_dice"),
                ("roll_dice", {}, "expression"),
            ]
            for tool, arguments, expected in cases:
                error = await call_error(session, tool, **arguments)
                assert expected in error, (tool, arguments, error)
            unknown = await session.call_tool("no_such_tool", {})
            assert unknown.is_error
            assert "no_such_tool" in text_of(unknown)
            assert (await call(session, "get_character", character_id=char))["name"] == "Ada"


async def test_data_survives_a_server_restart(data_dir: Path) -> None:
    """A second server process on the same data directory finds what the first wrote."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            cid = (await call(session, "create_campaign", name="Persistent"))["id"]
            await call(session, "save_campaign", campaign_id=cid, description="Saved before restart")
            char = (await call(session, "create_character", campaign_id=cid, name="Kept"))["id"]
            sess = (await call(session, "start_session", campaign_id=cid))["id"]
            await call(
                session, "set_initiative", session_id=sess, combatants=[{"name": "Ogre", "initiative": 3}]
            )
        async with connect(data_dir) as session:
            campaign = await call(session, "get_campaign", campaign_id=cid)
            assert campaign["description"] == "Saved before restart"
            assert campaign["version"] == 2
            assert (await call(session, "get_character", character_id=char))["name"] == "Kept"
            turn = await call(session, "next_turn", session_id=sess)
            assert turn["order"][0]["name"] == "Ogre"
            resource = await session.read_resource(f"campaign://{cid}")
            content = resource.contents[0]
            assert isinstance(content, TextResourceContents)
            assert [c["name"] for c in json.loads(content.text)["characters"]] == ["Kept"]


async def test_two_server_processes_write_to_one_database_without_losing_a_write(data_dir: Path) -> None:
    """Two children (as in the bridge's pool) write concurrently; every write lands."""
    writes_each = 25
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as first, connect(data_dir) as second:
            cid = (await call(first, "create_campaign", name="Shared"))["id"]

            async def add_notes(session: ClientSession, prefix: str) -> None:
                for index in range(writes_each):
                    await call(session, "add_note", campaign_id=cid, body=f"{prefix}-{index}")

            async with anyio.create_task_group() as group:
                group.start_soon(add_notes, first, "a")
                group.start_soon(add_notes, second, "b")
            notes = await call(second, "list_items", campaign_id=cid, kind="notes", limit=200)
            assert notes["total"] == 2 * writes_each
            assert {n["body"] for n in notes["items"]} == {
                f"{p}-{i}" for p in "ab" for i in range(writes_each)
            }


def test_import_command_indexes_markdown_for_search(data_dir: Path, tmp_path: Path) -> None:
    """`ttrpg-mcp import` ingests a Markdown file; a re-import replaces rather than duplicates."""
    document = tmp_path / "homebrew.md"
    document.write_text(
        "# Homebrew\n\n## Quicksilver Step\nKind: spell\n\nYou blink across the zephyrine gap.\n"
    )
    command = [
        sys.executable,
        "-m",
        "ttrpg_mcp.server.cli",
        "--data-dir",
        str(data_dir),
        "import",
        str(document),
    ]
    for _ in range(2):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "indexed 1 sections into source 'homebrew'" in done.stdout

    async def check() -> None:
        async with connect(data_dir) as session:
            found = await call(session, "search", query="zephyrine", source="homebrew")
            assert [(h["title"], h["kind"]) for h in found["hits"]] == [("Quicksilver Step", "spell")]

    anyio.run(check)
    missing = subprocess.run(
        [*command[:-1], str(tmp_path / "absent.md")], capture_output=True, text=True, timeout=60, check=False
    )
    assert missing.returncode == 2
    assert "absent.md" in missing.stderr


async def test_an_unknown_argument_is_refused_with_the_closest_accepted_one(data_dir: Path) -> None:
    """``class`` instead of ``character_class`` fails, names both, and creates nothing."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(data_dir) as session:
            cid = (await call(session, "create_campaign", name="Typos"))["id"]
            error = await call_error(
                session, "create_character", campaign_id=cid, name="Ada", **{"class": "Wizard"}
            )
            other = await call_error(session, "roll_dice", expression="1d6", advantge="advantage")
            wrong_type = await call_error(session, "create_character", campaign_id=cid, name="Bo", level=0)
            listing = await call(session, "list_items", campaign_id=cid, kind="characters")
    assert "unknown argument 'class'; did you mean 'character_class'?" in error
    assert "campaign_id, name, character_class" in error
    assert "did you mean 'advantage'?" in other
    assert wrong_type.startswith("invalid_input: create_character: level: ")
    assert "greater than or equal to 1" in wrong_type
    for text in (error, wrong_type):
        assert "pydantic" not in text
        assert "http" not in text
        assert "type=" not in text
    assert listing["total"] == 0 if "total" in listing else not listing.get("items")
