"""``tool_discover`` lists the concrete resources of the caller's seat, not the shared catalog's.

The bridge caches the server's catalog for everyone, asked anonymously; the campaigns and
character sheets in it depend on who asks, so they are listed per seat through the pool with
the caller's viewer in ``_meta``: a player sees their table's campaign and characters and
nothing of a campaign they do not sit at.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from bridge_process import RunningBridge, run_bridge
from tables import party, places

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("listing") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


async def test_a_seat_discovers_its_own_campaign_and_characters_only(bridge: RunningBridge) -> None:
    """A player's and a GM's tool_discover list their table's campaign and sheets, no other table's."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            party(bridge.base_url, places("player")) as (campaign_id, (gm, player)),
            party(bridge.base_url, places()) as (other_id, (other_gm,)),
        ):
            mira = await gm.table.call_tool(
                "create_character",
                {"campaign_id": campaign_id, "name": "Mira", "character_class": "Rogue", "level": 2},
            )
            vex = await other_gm.table.call_tool("create_character", {"campaign_id": other_id, "name": "Vex"})
            seen_by_player = await player.table.discover()
            seen_by_gm = await gm.table.discover()
            seen_elsewhere = await other_gm.table.discover()
    ours = {f"campaign://{campaign_id}", f"character://{mira['id']}"}
    for seen in (seen_by_player, seen_by_gm):
        uris = {resource["uri"] for resource in seen["resources"]}
        assert uris == ours
        assert seen["tools"]  # the shared part of the catalog is still there
        assert {t["uriTemplate"] for t in seen["resource_templates"]} >= {"character://{character_id}"}
    sheet = next(r for r in seen_by_player["resources"] if r["uri"] == f"character://{mira['id']}")
    assert sheet["title"] == "Mira (level 2 Rogue)"
    assert {resource["uri"] for resource in seen_elsewhere["resources"]} == {
        f"campaign://{other_id}",
        f"character://{vex['id']}",
    }
