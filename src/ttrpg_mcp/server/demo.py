"""``ttrpg-mcp demo``: a short scripted game against a real server over stdio.

It starts ``ttrpg-mcp`` as a child process exactly as Claude Desktop would, through the
SDK's stdio client, and prints each call and its readable answer: a quick way to see that
an install works and what the tools do. Without ``--data-dir`` it plays in a throwaway
folder so that it never touches real campaigns.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession
from mcp.types import CallToolResult, TextContent

from ttrpg_mcp.server.launch import connect

__all__ = ["run_demo"]

_CALL_TIMEOUT = 30.0


def _text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def _call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    with anyio.fail_after(_CALL_TIMEOUT):
        result = await session.call_tool(tool, arguments)
    shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    print(f"\n> {tool}({shown})")
    print(("ERROR " if result.is_error else "") + _text(result))
    return result.structured_content or {}


async def _play(data_dir: Path) -> None:
    async with connect(data_dir) as session:
        tools = await session.list_tools()
        print(f"ttrpg-mcp demo: {len(tools.tools)} tools: {', '.join(t.name for t in tools.tools)}")
        campaign = await _call(session, "create_campaign", name="The Sunken Lantern", system="d20 fantasy")
        mira = await _call(
            session,
            "create_character",
            campaign_id=campaign["id"],
            name="Mira",
            character_class="Ranger",
            race="Half-elf",
            level=3,
            hp_max=24,
            armor_class=14,
            abilities={"dex": 16, "wis": 14},
        )
        await _call(session, "roll_dice", expression="1d20+5 [attack]", purpose="Mira's longbow")
        await _call(session, "roll_dice", expression="4d6kh3")
        await _call(session, "search", query="prone", limit=3)
        sess = await _call(session, "start_session", campaign_id=campaign["id"])
        order = await _call(
            session,
            "set_initiative",
            session_id=sess["id"],
            combatants=[
                {"character_id": mira["id"], "modifier": 3},
                {"name": "Bog goblin", "initiative": 12, "hp": 7, "max_hp": 7},
            ],
        )
        goblin = next(c for c in order["order"] if c["name"] == "Bog goblin")
        await _call(session, "next_turn", session_id=sess["id"])
        await _call(session, "update_hp", target_id=mira["id"], amount=9, kind="damage")
        await _call(session, "update_hp", target_id=goblin["id"], amount=8, kind="damage")
        await _call(
            session, "add_note", campaign_id=campaign["id"], title="Ambush", body="Goblins at the ford."
        )
        await _call(session, "end_session", session_id=sess["id"], summary="The party crossed the marsh.")
        recap = await session.get_prompt("session_recap", {"campaign_id": campaign["id"]})
        print("\n> prompt session_recap")
        for message in recap.messages:
            if isinstance(message.content, TextContent):
                print(message.content.text)


def run_demo(data_dir: str | None) -> int:
    if data_dir:
        anyio.run(_play, Path(data_dir))
        return 0
    with tempfile.TemporaryDirectory(prefix="ttrpg-demo-") as scratch:
        anyio.run(_play, Path(scratch))
    return 0
