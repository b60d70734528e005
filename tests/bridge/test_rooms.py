"""Campaign rooms end to end: several real clients at real tables over real sockets."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from bridge_process import RunningBridge, run_bridge
from tables import drain, events_of, party, places, through_the_feed, until

from ttrpg_mcp.client import BridgeClient, BridgeClientError

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("rooms") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir, {"TTRPG_MAX_PARTICIPANTS_PER_CAMPAIGN": "4"}) as running:
        yield running


async def test_a_players_roll_reaches_the_table_and_no_other_campaign(bridge: RunningBridge) -> None:
    """Everyone at the table gets the dice_roll event; a player at another table gets nothing."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            party(bridge.base_url, places("player", "player")) as (campaign_id, seats),
            party(bridge.base_url, places("player")) as (_other_id, strangers),
        ):
            gm, mira, _kai = seats
            result = await mira.table.roll_dice("2d6+3", purpose="climb")
            assert 5 <= result["total"] <= 15
            for seat in seats:
                rolls = await events_of(seat.table, "dice_roll")
                assert len(rolls) == 1
                event = rolls[0]
                assert event["campaign_id"] == campaign_id
                assert event["seq"] > 0
                assert event["data"]["player_id"] == mira.user_id
                assert event["data"]["total"] == result["total"]
                assert event["data"]["purpose"] == "climb"
                assert len(event["data"]["results"]) == 2
            # A later roll at the strangers' own table is the marker: nothing came before it.
            await strangers[0].table.roll_dice("1d4", purpose="marker")
            for stranger in strangers:
                seen = await until(stranger.table, lambda e: e["type"] == "dice_roll")
                assert [e["data"]["purpose"] for e in seen if e["type"] == "dice_roll"] == ["marker"]
            assert gm.snapshot["role"] == "gm"


async def test_a_blind_roll_reaches_only_game_masters(bridge: RunningBridge) -> None:
    """Blind: GMs see the numbers; the roller and other players learn only that it happened."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player", "player")) as (_campaign_id, seats):
            gm, mira, kai = seats
            mine = await mira.table.roll_dice("1d20", purpose="insight", visibility="blind")
            assert mine["hidden"] is True
            assert "total" not in mine
            gm_event = (await events_of(gm.table, "dice_roll"))[0]["data"]
            assert 1 <= gm_event["total"] <= 20
            for seat in (mira, kai):
                event = (await events_of(seat.table, "dice_roll"))[0]["data"]
                assert event["hidden"] is True
                assert "total" not in event
                assert "results" not in event


async def test_a_spectators_roll_and_a_players_edit_of_another_character_are_refused(
    bridge: RunningBridge,
) -> None:
    """forbidden, and nothing changes: no roll event, the character as it was."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player", "player", "spectator")) as (campaign_id, seats):
            gm, mira, kai, watcher = seats
            with pytest.raises(BridgeClientError) as refused:
                await watcher.table.roll_dice("1d20")
            assert refused.value.code == "forbidden"
            arguments = {
                "campaign_id": campaign_id,
                "name": "Kai's ranger",
                "owner": kai.user_id,
                "hp_max": 12,
            }
            ranger = await gm.table.call_tool("create_character", arguments)
            with pytest.raises(BridgeClientError) as not_yours:
                await mira.table.update_character(ranger["id"], level=20)
            assert not_yours.value.code == "forbidden"
            unchanged = await gm.table.call_tool("get_character", {"character_id": ranger["id"]})
            assert unchanged["level"] == ranger["level"]
            updated = await kai.table.update_character(ranger["id"], level=2)
            assert updated["level"] == 2
            events = [
                e
                for e in await through_the_feed(gm.table, gm.table, campaign_id)
                if e["type"] == "character_update"
            ]
            assert events[-1]["data"]["character"]["level"] == 2
            # The watcher's refused roll left no event: the first roll mira sees is a later one.
            await gm.table.roll_dice("1d4", purpose="marker")
            seen = await until(mira.table, lambda e: e["type"] == "dice_roll")
            assert [e["data"]["purpose"] for e in seen if e["type"] == "dice_roll"] == ["marker"]


async def test_two_concurrent_changes_to_one_path_give_one_success_and_one_conflict(
    bridge: RunningBridge,
) -> None:
    """Both based on the same version: the second is refused with the current version."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (_campaign_id, seats):
            gm, mira = seats
            base = gm.snapshot["state"]["version"]
            outcomes = await asyncio.gather(
                gm.table.update_state(["shared_notes"], "The bridge is out.", previous_version=base),
                mira.table.update_state(["shared_notes"], "We took the ferry.", previous_version=base),
                return_exceptions=True,
            )
            successes = [o for o in outcomes if isinstance(o, dict)]
            conflicts = [o for o in outcomes if isinstance(o, BridgeClientError)]
            assert len(successes) == 1
            assert len(conflicts) == 1
            assert conflicts[0].code == "conflict"
            assert conflicts[0].data["current_version"] == successes[0]["version"]
            # A change to another path from the same stale base still goes through.
            other = await mira.table.update_state(["custom", "weather"], "rain", previous_version=base)
            assert other["version"] == successes[0]["version"] + 1


async def test_a_late_joiner_sees_the_canvas_the_state_and_the_participants(bridge: RunningBridge) -> None:
    """The snapshot on join is the table as it is, hidden combatants masked for players."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, seats):
            gm, mira = seats
            stroke = {"tool": "pen", "points": [[0, 0], [10, 12]], "color": "#aa3300", "width": 3}
            drawn = await mira.table.draw({"action": "stroke", "stroke": stroke})
            await gm.table.initiative(
                "set",
                combatants=[
                    {"name": "Mira", "initiative": 15},
                    {"name": "Lurker", "initiative": 18, "hp": 30, "hidden": True},
                ],
            )
            await gm.table.update_state(["shared_notes"], "Session 3: the lurker strikes.")
            code = (await gm.client.create_invite(campaign_id, role="player"))["code"]
            async with BridgeClient(bridge.base_url) as late:
                await late.register(f"late-{uuid.uuid4().hex[:8]}", "password123")
                await late.join_campaign(code)
                async with late.connect(campaign_id=campaign_id) as table:
                    snapshot = await table.next_event("campaign_snapshot")
            data = snapshot["data"]
            assert [s["id"] for s in data["canvas"]] == [drawn["stroke_id"]]
            assert data["state"]["shared_notes"] == "Session 3: the lurker strikes."
            order = data["state"]["initiative_order"]
            assert order[0] == {"id": order[0]["id"], "name": "Hidden combatant", "hidden": True}
            assert order[1]["name"] == "Mira"
            names = {p["user_id"] for p in data["participants"]}
            assert {gm.user_id, mira.user_id} <= names
            assert data["seq"] > 0


async def test_several_tabs_of_one_user_are_one_participant(bridge: RunningBridge) -> None:
    """A second tab does not announce a second arrival; closing one tab does not leave."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, seats):
            gm, mira = seats
            async with mira.client.connect(campaign_id=campaign_id) as second_tab:
                snapshot = (await second_tab.next_event("campaign_snapshot"))["data"]
                mine = [p for p in snapshot["participants"] if p["user_id"] == mira.user_id]
                assert mine[0]["sessions"] == 2
            events = await drain(gm.table)
            assert [e for e in events if e["type"] in ("participant_joined", "participant_left")] == []
            await mira.table.set_presence(status="away", character_name="Mira the Bold")
            presence = (await events_of(gm.table, "presence_update"))[-1]["data"]
            assert (presence["user_id"], presence["status"]) == (mira.user_id, "away")


async def test_cursor_moves_arrive_coalesced_in_batches(bridge: RunningBridge) -> None:
    """Fifty moves in a burst reach the others as a few batches with the latest position."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (_campaign_id, seats):
            gm, mira = seats
            for step in range(50):
                await mira.table.move_cursor(step, step * 2)
            # Batches go out every tick: wait for the one with the latest position.
            latest = {"x": 49, "y": 98}
            received = await until(
                gm.table,
                lambda e: (
                    e["type"] == "cursor_move" and any(c["position"] == latest for c in e["data"]["cursors"])
                ),
            )
            batches = [e for e in received if e["type"] == "cursor_move"]
            assert 1 <= len(batches) < 50
            last = batches[-1]["data"]["cursors"]
            assert last == [
                {"user_id": mira.user_id, "username": last[0]["username"], "position": {"x": 49, "y": 98}}
            ]
            assert "seq" not in batches[-1]


async def test_a_full_table_refuses_one_more_participant(bridge: RunningBridge) -> None:
    """The participant limit (4 here) gives limit_reached with the limit in data."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player", "player", "player")) as (campaign_id, seats):
            code = (await seats[0].client.create_invite(campaign_id, role="player"))["code"]
            async with BridgeClient(bridge.base_url) as fifth:
                await fifth.register(f"fifth-{uuid.uuid4().hex[:8]}", "password123")
                await fifth.join_campaign(code)
                async with fifth.connect() as table:
                    with pytest.raises(BridgeClientError) as full:
                        await table.join(campaign_id)
            assert full.value.code == "limit_reached"
            assert full.value.data == {"limit": 4, "kind": "participants_per_campaign"}


async def test_a_bridge_restart_keeps_campaigns_members_state_canvas_and_rolls(data_dir: Path) -> None:
    """Everything of the table is durable: after a restart it is all there."""
    with anyio.fail_after(TEST_TIMEOUT * 2):
        with run_bridge(data_dir) as first:
            async with party(first.base_url, places("player")) as (campaign_id, seats):
                gm, mira = seats
                await mira.table.roll_dice("1d8", purpose="damage")
                await gm.table.update_state(["shared_notes"], "Remember the ferryman.")
                await mira.table.draw(
                    {
                        "action": "stroke",
                        "stroke": {"tool": "line", "points": [[1, 1], [2, 2]], "color": "#000", "width": 1},
                    }
                )
                names = (gm.client.tokens, mira.client.tokens)
        with run_bridge(data_dir) as second:
            async with BridgeClient(second.base_url) as client:
                assert names[1] is not None
                await client.login(names[1].user["name"], "password123")
                campaigns = await client.list_campaigns()
                assert [(c["id"], c["role"]) for c in campaigns] == [(campaign_id, "player")]
                async with client.connect() as table:
                    snapshot = await table.join(campaign_id)
            state = snapshot["state"]
            assert state["shared_notes"] == "Remember the ferryman."
            assert [r["purpose"] for r in state["dice_rolls"]] == ["damage"]
            assert len(snapshot["canvas"]) == 1
            assert snapshot["seq"] >= 5
