"""Opening a session straight into a table (``/ws?token=...&campaign_id=...``), with a real bridge.

That connect checks the token, the membership and the snapshot in one trip to the store: a
token withdrawn since its last use, or a member removed since their last visit, must be refused
on the very next connect all the same, and a refused seat must leave the session and the table
as they were.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from bridge_process import RunningBridge, run_bridge
from tables import party, places, until

from ttrpg_mcp.client import BridgeClientError, ConnectionClosed

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("connect") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


async def test_a_token_logged_out_is_refused_on_its_next_connect_into_a_table(bridge: RunningBridge) -> None:
    """The same access token seats its player again and again, until its login is ended."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, seats):
            player = seats[1].client
            assert player.tokens is not None
            token = player.tokens.access_token
            for _ in range(2):
                async with player.connect(
                    campaign_id=campaign_id, token=token, transport="websocket"
                ) as table:
                    assert (await table.next_event("campaign_snapshot", timeout=60))["data"][
                        "campaign_id"
                    ] == campaign_id
            await player.logout()
            with pytest.raises(ConnectionClosed) as closed:
                async with player.connect(campaign_id=campaign_id, token=token, transport="websocket"):
                    pass
    assert closed.value.close_code == 1008
    assert "revoked" in closed.value.reason


async def test_a_removed_member_is_refused_on_the_next_connect_and_takes_no_seat(
    bridge: RunningBridge,
) -> None:
    """After removal the connect authenticates but the seat is refused; the table never sees them."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, seats):
            gm, player = seats
            async with player.client.connect(campaign_id=campaign_id, transport="websocket"):
                pass
            await gm.client.remove_member(campaign_id, player.user_id)
            with pytest.raises(BridgeClientError) as refused:
                async with player.client.connect(campaign_id=campaign_id, transport="websocket"):
                    pass
            # The GM's own roll comes after the refused connect: nobody joined in between.
            await gm.table.roll_dice("1d4", purpose="marker")
            seen = await until(gm.table, lambda event: event["type"] == "dice_roll")
            async with gm.client.connect(campaign_id=campaign_id, transport="websocket") as again:
                participants = (await again.next_event("campaign_snapshot", timeout=60))["data"][
                    "participants"
                ]
    assert refused.value.code == "forbidden"
    assert [event for event in seen if event["type"] == "participant_joined"] == []
    assert player.user_id not in {p["user_id"] for p in participants}
