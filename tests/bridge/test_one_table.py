"""One campaign, two doors: Claude over stdio and a live table on one data directory.

Claude Desktop's own ``ttrpg-mcp`` process (driven here by the official SDK client, as Claude
Desktop drives it) and the bridge's table act on the same campaign, the same combat, and see
each other's moves live.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from bridge_process import RunningBridge, run_bridge
from mcp import ClientSession, stdio_client
from mcp.shared.exceptions import MCPDeprecationWarning
from tables import Seat, Table, party, places, through_the_feed

from ttrpg_mcp.bridge.content_events import CONTENT_EVENTS
from ttrpg_mcp.client import BridgeClientError
from ttrpg_mcp.server.launch import STARTUP_TIMEOUT, server_parameters

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 120.0
CALL_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("one-table") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


class Claude:
    """An SDK client over stdio on the bridge's data directory, recording resource notifications."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.updated: list[str] = []
        self._arrived = anyio.Event()

    async def on_message(self, message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            self.updated.append(str(message.params.uri))
            self._arrived.set()

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        with anyio.fail_after(CALL_TIMEOUT):
            result = await self.session.call_tool(tool, arguments)
        assert not result.is_error, f"{tool} failed: {result.content}"
        assert result.structured_content is not None
        return result.structured_content

    async def subscribe(self, uri: str) -> None:
        # Claude Desktop speaks the 2025 protocol, where resources/subscribe is the way.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await self.session.subscribe_resource(uri)

    async def read_json(self, uri: str) -> dict[str, Any]:
        import json

        result = await self.session.read_resource(uri)
        content = result.contents[0]
        assert isinstance(content, types.TextResourceContents)
        document: dict[str, Any] = json.loads(content.text)
        return document

    async def wait_updated(self, uri: str, timeout: float = 10.0) -> None:
        with anyio.fail_after(timeout):
            while uri not in self.updated:
                await self._arrived.wait()
                self._arrived = anyio.Event()


@asynccontextmanager
async def claude_on(data_dir: Path) -> AsyncIterator[Claude]:
    claude: Claude | None = None

    async def handler(message: Any) -> None:
        if claude is not None:
            await claude.on_message(message)

    async with (
        stdio_client(server_parameters(data_dir)) as (read, write),
        ClientSession(read, write, message_handler=handler) as session,
    ):
        with anyio.fail_after(STARTUP_TIMEOUT):
            await session.initialize()
        claude = Claude(session)
        yield claude


async def content_events(table: Table, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The next ``count`` content events (combat, characters, notes, campaign) at a seat."""
    found: list[dict[str, Any]] = []
    with anyio.fail_after(timeout):
        async for event in table.events():
            if event["type"] in CONTENT_EVENTS:
                found.append(event)
                if len(found) == count:
                    return found
    raise AssertionError(f"the connection ended after {found}")


def player_view(seat: Seat, events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """What a seat was shown of each event: the one place the test reads event payloads."""
    return [(event["type"], event["data"]) for event in events]


GM_ONLY_TEXT = "SECRET: the ferryman is the Lurker"


async def test_claude_over_stdio_and_the_table_run_one_combat_and_see_each_other(
    bridge: RunningBridge,
) -> None:
    """Claude's moves reach the player once, in order, without secrets; the GM's move reaches Claude."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            party(bridge.base_url, places("player")) as (campaign_id, seats),
            claude_on(bridge.data_dir) as claude,
        ):
            gm, player = seats
            mira = await claude.call(
                "create_character", campaign_id=campaign_id, name="Mira", hp_max=24, owner=player.user_id
            )
            await content_events(player.table, 1)
            await claude.subscribe(f"campaign://{campaign_id}")

            steps: list[tuple[str, dict[str, Any], list[str]]] = [
                ("start_session", {"campaign_id": campaign_id}, ["combat_update"]),
                ("set_initiative", {}, ["combat_update"]),
                ("update_hp", {"target_id": mira["id"], "amount": 9}, ["character_update", "combat_update"]),
                ("add_note", {"campaign_id": campaign_id, "body": GM_ONLY_TEXT}, ["note_added"]),
                (
                    "add_note",
                    {"campaign_id": campaign_id, "body": "We reached the ford.", "visibility": "players"},
                    ["note_added"],
                ),
            ]
            received: list[dict[str, Any]] = []
            latencies: list[float] = []
            session_id = ""
            for tool, given, expected in steps:
                arguments = given
                if tool == "set_initiative":
                    arguments = {
                        "session_id": session_id,
                        "combatants": [
                            {"character_id": mira["id"], "initiative": 17},
                            {"name": "Goblin", "initiative": 12, "hp": 7},
                        ],
                    }
                started = time.perf_counter()
                result = await claude.call(tool, **arguments)
                session_id = session_id or result.get("id", "")
                events = await content_events(player.table, len(expected))
                latency = time.perf_counter() - started
                assert [event["type"] for event in events] == expected
                latencies.append(latency)
                received += events

            # Measured, not bounded (a loaded machine is slow): bench/change_feed.py holds the budget.
            print("change-to-seat:", ", ".join(f"{t * 1000:.0f} ms" for t in latencies))
            shown = player_view(player, received)
            assert shown[1][1]["order"][0]["name"] == "Mira"
            assert shown[2][1]["character"]["hp_current"] == 15
            assert shown[3][1]["order"][0]["hp"] == 15
            # Claude's note is GM-only by default: the player's seat learns only that one was added.
            notes = [data for kind, data in shown if kind == "note_added"]
            assert (notes[0]["note"], notes[0]["hidden"]) == (None, True)
            assert notes[1]["note"]["body"] == "We reached the ford."
            assert GM_ONLY_TEXT not in json.dumps(received)
            assert all(data["by"] == "local" for _kind, data in shown)
            seqs = [event["seq"] for event in received]
            assert seqs == sorted(seqs)
            assert len(set(seqs)) == len(seqs)
            assert [
                e
                for e in await through_the_feed(gm.table, player.table, campaign_id)
                if e["type"] in CONTENT_EVENTS
            ] == []

            # The GM moves the same tracker at the table; Claude's resource and subscription follow.
            claude.updated.clear()
            acked = await gm.table.initiative("next")
            assert (acked["active_turn"], acked["round_number"]) == (1, 1)
            (moved,) = await content_events(player.table, 1)
            assert (moved["type"], moved["data"]["current"]["name"]) == ("combat_update", "Goblin")
            await claude.wait_updated(f"campaign://{campaign_id}")
            campaign = await claude.read_json(f"campaign://{campaign_id}")
            assert campaign["session"]["active_turn"] == 1
            assert campaign["session"]["initiative"][1]["name"] == "Goblin"

            # And Claude's next_turn moves it on for the table.
            turn = await claude.call("next_turn", session_id=session_id)
            assert (turn["active_turn"], turn["round_number"]) == (0, 2)
            (again,) = await content_events(player.table, 1)
            assert (again["data"]["active_turn"], again["data"]["round_number"]) == (0, 2)


async def test_the_table_runs_the_content_stores_combat_with_modifiers_and_permissions(
    bridge: RunningBridge,
) -> None:
    """initiative_update acts on the session's combat; players may not; the old state path is closed."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, seats):
            gm, player = seats
            await gm.table.initiative(
                "set",
                combatants=[
                    {"name": "Scout", "modifier": 3},
                    {"id": "lurker", "name": "Lurker", "initiative": 30, "hp": 40, "hidden": True},
                ],
            )
            # The session starts with the first order: one change, one event.
            (started,) = await content_events(player.table, 1)
            assert started["data"]["live"] is True
            order = started["data"]["order"]
            assert order[0] == {"id": "lurker", "name": "Hidden combatant", "hidden": True}
            assert order[1]["name"] == "Scout"
            assert 4 <= order[1]["initiative"] <= 23
            await gm.table.initiative("update", combatant={"id": "lurker", "hp": 22})
            (patched,) = await content_events(player.table, 1)
            assert "hp" not in patched["data"]["order"][0]
            with pytest.raises(BridgeClientError) as refused:
                await player.table.initiative("next")
            assert refused.value.code == "forbidden"
            with pytest.raises(BridgeClientError) as missing:
                await gm.table.initiative("remove", combatant_id="nobody")
            assert missing.value.code == "not_found"
            with pytest.raises(BridgeClientError) as closed:
                await gm.table.update_state(["active_turn"], 1)
            assert closed.value.code == "invalid_params"
            # A late seat's snapshot shows the same combat, masked the same way.
            async with player.client.connect() as second_tab:
                snapshot = (await second_tab.join(campaign_id))["state"]
            assert snapshot["initiative_order"][0] == {
                "id": "lurker",
                "name": "Hidden combatant",
                "hidden": True,
            }
            # The design document's updateInitiative, a state_update setting initiative_order,
            # sets the same combat: the seats hear of it as combat_update.
            await gm.table.update_state(
                ["initiative_order"], [{"id": "ogre", "name": "Ogre", "initiative": 12}]
            )
            (reset,) = await content_events(player.table, 1)
            assert reset["type"] == "combat_update"
            assert [c["name"] for c in reset["data"]["order"]] == ["Ogre"]


async def dice_rolls(table: Table, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    with anyio.fail_after(timeout):
        async for event in table.events():
            if event["type"] == "dice_roll":
                found.append(event["data"])
                if len(found) == count:
                    return found
    raise AssertionError(f"the connection ended after {found}")


async def test_a_roll_made_with_the_tool_is_broadcast_like_a_table_roll(bridge: RunningBridge) -> None:
    """A GM's roll_dice is GM-only by default, a player's public; Claude's stdio roll reaches the table."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            party(bridge.base_url, places("player")) as (campaign_id, seats),
            claude_on(bridge.data_dir) as claude,
        ):
            gm, player = seats
            rolled = await gm.table.call_tool("roll_dice", {"expression": "1d20+2", "purpose": "ambush"})
            (gm_view,) = await dice_rolls(gm.table, 1)
            assert (gm_view["total"], gm_view["visibility"], gm_view["source"]) == (
                rolled["total"],
                "gm",
                "tool",
            )
            assert gm_view["purpose"] == "ambush"
            (player_view_,) = await dice_rolls(player.table, 1)
            assert player_view_["hidden"] is True
            assert "total" not in player_view_
            assert player_view_["source"] == "tool"  # a secret roll still says it came from the tool
            theirs = await player.table.call_tool("roll_dice", {"expression": "1d6"})
            for seat in (gm, player):
                (shown,) = await dice_rolls(seat.table, 1)
                assert (shown["total"], shown["visibility"], shown["source"]) == (
                    theirs["total"],
                    "public",
                    "tool",
                )
            await claude.call("start_session", campaign_id=campaign_id)
            await claude.call(
                "roll_dice", expression="2d6", purpose="morale", campaign_id=campaign_id, visibility="public"
            )
            (morale,) = await dice_rolls(player.table, 1)
            assert (morale["purpose"], morale["player_name"]) == ("morale", "GM")
            assert 2 <= morale["total"] <= 12
            # The table's dice log keeps tool rolls too: a late seat's snapshot shows them.
            async with player.client.connect() as second_tab:
                logged = (await second_tab.join(campaign_id))["state"]["dice_rolls"]
            assert [roll["purpose"] for roll in logged][-2:] == ["", "morale"]
            assert logged[-1]["total"] == morale["total"]
