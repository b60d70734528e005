"""The lobby's campaign list: each campaign's game system and how many people sit at its table now."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from bridge_process import RunningBridge, run_bridge
from tables import party, places, until

from ttrpg_mcp.client import BridgeClient

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("lobby") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


async def _listed(client: BridgeClient, campaign_id: str) -> dict[str, object]:
    return next(c for c in await client.list_campaigns() if c["id"] == campaign_id)


async def test_the_campaign_list_shows_each_system_and_who_is_online(bridge: RunningBridge) -> None:
    """Two seats at the table count two online; when one leaves, one; the system comes from the content."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, (gm, player)):
            await gm.table.call_tool("save_campaign", {"campaign_id": campaign_id, "system": "Blades"})
            both = await _listed(player.client, campaign_id)
            await player.table.close()
            await until(gm.table, lambda event: event["type"] == "participant_left")
            alone = await _listed(gm.client, campaign_id)
    assert (both["system"], both["online"], both["role"]) == ("Blades", 2, "player")
    assert (alone["system"], alone["online"], alone["role"]) == ("Blades", 1, "gm")
