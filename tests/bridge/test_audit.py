"""The audit log: every change and tool call recorded with its outcome, readable by the GM only."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest
from bridge_process import RunningBridge, run_bridge
from tables import party

from ttrpg_mcp.client import BridgeClientError

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("audit") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


async def test_changes_and_tool_calls_are_audited_for_the_gm_and_no_one_else(bridge: RunningBridge) -> None:
    """Who, what, on what, and how it ended; a player asking to read it is refused."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, [("gm", "websocket"), ("player", "sse")]) as (campaign_id, seats):
            gm, player = seats
            await player.table.roll_dice("1d20", purpose="audit me")
            await player.table.update_state(["shared_notes"], "a note")
            await gm.table.call_tool("get_campaign", {"campaign_id": campaign_id})
            with pytest.raises(BridgeClientError):
                await player.table.call_tool("create_npc", {"campaign_id": campaign_id, "name": "Nope"})
            assert gm.client.tokens is not None
            assert player.client.tokens is not None
            async with httpx.AsyncClient(base_url=bridge.base_url) as http:
                as_gm = {"Authorization": f"Bearer {gm.client.tokens.access_token}"}
                as_player = {"Authorization": f"Bearer {player.client.tokens.access_token}"}
                page = (await http.get(f"/api/campaigns/{campaign_id}/audit", headers=as_gm)).json()
                refused = await http.get(f"/api/campaigns/{campaign_id}/audit", headers=as_player)
    rows = [(e["user_id"], e["action"], e["target"], e["result"]) for e in reversed(page["entries"])]
    assert (player.user_id, "dice_roll", "1d20", "ok") in rows
    assert (player.user_id, "state_update", "shared_notes", "ok") in rows
    assert (gm.user_id, "tool_call", "get_campaign", "ok") in rows
    assert (player.user_id, "tool_call", "create_npc", "forbidden") in rows
    assert refused.status_code == 403
    assert "a note" not in str(page)  # targets, not contents
