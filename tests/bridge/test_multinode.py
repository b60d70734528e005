"""Several bridge nodes on one PostgreSQL and one Redis: any node serves any seat, none loses one.

Real processes throughout: each node is ``ttrpg-bridge serve`` with its own data directory (its
MCP children and content store), the nodes share the bridge store (a fresh PostgreSQL database)
and a ``redis-server`` the test starts, stops and kills at will.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from bridge_process import RunningBridge, run_bridge
from node_tables import Cluster, Seat, is_roll, rolls, table_across, two_nodes
from tables import until

from ttrpg_mcp.client import BridgeClient, BridgeClientError

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 180.0
# The promise: a dead node's seats are gone for everyone within this many seconds.
PRESENCE_DEADLINE = 10.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with two_nodes(tmp_path_factory.mktemp("cluster")) as running:
        yield running


async def test_every_seat_on_either_node_sees_every_event_once_in_one_seq_order(cluster: Cluster) -> None:
    first, second = cluster.nodes
    with anyio.fail_after(TEST_TIMEOUT):
        async with table_across([first, first, second, second]) as (_campaign_id, seats):

            async def roll_five(seat: Seat, index: int) -> None:
                for turn in range(5):
                    await seat.table.roll_dice("1d20", purpose=f"seat{index}-{turn}")

            async with anyio.create_task_group() as group:
                for index, seat in enumerate(seats):
                    group.start_soon(roll_five, seat, index)
            await seats[0].table.roll_dice("1d4", purpose="end")
            seen = [rolls(await until(seat.table, is_roll("end"))) for seat in seats]
    expected = {f"seat{index}-{turn}" for index in range(4) for turn in range(5)} | {"end"}
    for view in seen:
        assert [purpose for _, purpose in view].count("end") == 1
        assert sorted(purpose for _, purpose in view) == sorted(expected), "a roll missing or doubled"
        seqs = [seq for seq, _ in view]
        assert seqs == sorted(set(seqs)), f"not in one increasing seq order: {seqs}"
    assert all(view == seen[0] for view in seen), "two seats saw the rolls in different orders"


async def test_a_stale_change_on_one_node_conflicts_with_a_change_made_on_the_other(cluster: Cluster) -> None:
    first, second = cluster.nodes
    with anyio.fail_after(TEST_TIMEOUT):
        async with table_across([first, second, first]) as (_campaign_id, (gm, on_second, on_first)):
            base = (await gm.table.update_state(["custom", "weather"], "rain"))["version"]
            changed = await on_second.table.update_state(["custom", "weather"], "sun", previous_version=base)
            assert changed["version"] > base
            with pytest.raises(BridgeClientError) as refused:
                await on_first.table.update_state(["custom", "weather"], "snow", previous_version=base)
            updates = await until(
                on_first.table,
                lambda event: event.get("type") == "state_update" and event["data"]["value"] == "sun",
            )
    assert refused.value.code == "conflict"
    values = [event["data"]["value"] for event in updates if event["type"] == "state_update"]
    assert values == ["rain", "sun"], "the refused change reached the table"


async def test_a_content_change_reaches_every_seat_once_though_both_nodes_follow_the_feed(
    cluster: Cluster,
) -> None:
    """Both nodes follow the one content store's change log; one of them publishes each change."""
    first, second = cluster.nodes
    with anyio.fail_after(TEST_TIMEOUT):
        async with table_across([first, second, first]) as (_campaign_id, seats):
            await seats[0].table.update_campaign(description="The fog lifts.")
            # The feed is followed apart from table changes: a second content change is the
            # marker, since the feed delivers changes in the order of the content store's log.
            await seats[0].table.update_campaign(description="Night falls.")
            seen = [await until(seat.table, mentions("Night falls.")) for seat in seats]
    for events in seen:
        updates = [event for event in events if event["type"] == "campaign_update"]
        fog = [event for event in updates if "The fog lifts." in json.dumps(event["data"])]
        assert len(fog) == 1, f"the change reached a seat {len(fog)} times"
        assert len(updates) == 2, f"{len(updates)} campaign updates for two changes"


def mentions(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event.get("type") == "campaign_update" and text in json.dumps(event["data"])


async def _readiness(node: RunningBridge) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{node.base_url}/readyz", timeout=5)
    return response.status_code, response.json()


async def _wait_readiness(
    node: RunningBridge, accept: Callable[[int, dict[str, Any]], bool]
) -> dict[str, Any]:
    while True:
        status, body = await _readiness(node)
        if accept(status, body):
            return body
        await anyio.sleep(0.1)


async def test_redis_restarted_during_play_is_reported_and_no_event_is_lost(cluster: Cluster) -> None:
    first, second = cluster.nodes
    with anyio.fail_after(TEST_TIMEOUT):
        async with table_across([first, second]) as (_campaign_id, (gm, player)):
            await gm.table.roll_dice("1d6", purpose="before")
            cluster.redis.stop()
            for node in (first, second):
                body = await _wait_readiness(node, lambda status, _body: status == 503)
                assert body["checks"]["redis"].startswith("unreachable")
            await gm.table.roll_dice("1d6", purpose="during-gm")
            await player.table.roll_dice("1d6", purpose="during-player")
            cluster.redis.start()
            for node in (first, second):
                await _wait_readiness(node, lambda status, _body: status == 200)
            await player.table.roll_dice("1d6", purpose="after-player")
            await gm.table.roll_dice("1d6", purpose="end")
            seen = [rolls(await until(seat.table, is_roll("end"))) for seat in (gm, player)]
    for view in seen:
        purposes = [purpose for _, purpose in view]
        assert sorted(purposes) == sorted(["before", "during-gm", "during-player", "after-player", "end"])
        seqs = [seq for seq, _ in view]
        assert seqs == sorted(set(seqs))
    assert seen[0] == seen[1]


async def _collect(seat: Seat) -> None:
    """Every event the seat's connection gets until it ends (its node dies)."""
    async for event in seat.table.events():
        seat.received.append(event)


async def test_a_killed_nodes_seats_resume_on_the_other_node_losing_and_doubling_nothing(
    cluster: Cluster,
) -> None:
    """SIGKILL one node mid-play: its player resumes elsewhere, its onlooker's seat goes away."""
    survivor = cluster.nodes[0]
    folder = cluster.folder / f"doomed-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    acked: list[str] = []
    playing = anyio.Event()  # set once play has gone on a while
    with run_bridge(folder, cluster.env) as doomed, anyio.fail_after(TEST_TIMEOUT):
        async with table_across([survivor, doomed, doomed]) as (campaign_id, (gm, player, onlooker)):

            async def play() -> None:
                with_errors = (BridgeClientError, OSError)
                for turn in range(10_000):
                    try:
                        await player.table.roll_dice("1d20", purpose=f"p{turn}")
                    except with_errors:
                        return
                    acked.append(f"p{turn}")
                    if len(acked) == 10:
                        playing.set()

            async with anyio.create_task_group() as group:
                group.start_soon(_collect, player)
                group.start_soon(play)
                await playing.wait()
                os.kill(doomed.process.pid, signal.SIGKILL)
                killed_at = anyio.current_time()
            doomed.process.wait()
            # The onlooker never comes back: everyone left sees it leave within the deadline.
            with anyio.fail_after(PRESENCE_DEADLINE - (anyio.current_time() - killed_at)):
                gm_seen = await until(
                    gm.table,
                    lambda event: (
                        event.get("type") == "participant_left"
                        and event["data"]["user_id"] == onlooker.user_id
                    ),
                )
            # The player reconnects to the surviving node and resumes from what it saw last.
            seqs = [event["seq"] for event in player.received if isinstance(event.get("seq"), int)]
            assert player.client.tokens is not None
            token = player.client.tokens.access_token  # issued by the dead node, valid on every node
            async with (
                BridgeClient(survivor.base_url) as client,
                client.connect(transport="websocket", token=token) as resumed,
            ):
                snapshot = (
                    await resumed.request(
                        {"type": "session_attach", "campaign_id": campaign_id, "last_seq": max(seqs)}
                    )
                )["data"]
                await gm.table.roll_dice("1d4", purpose="end")
                after = await until(resumed, is_roll("end"))
            everything_gm = rolls(gm_seen + await until(gm.table, is_roll("end")))
    assert snapshot["recovered"] is True
    seen = player.received + after
    numbered = [event["seq"] for event in seen if isinstance(event.get("seq"), int)]
    assert len(numbered) == len(set(numbered)), "an event reached the resumed player twice"
    assert numbered == sorted(numbered)
    assert set(range(min(numbered), max(numbered) + 1)) <= set(numbered), "an event never reached the player"
    player_rolls = {purpose for _, purpose in rolls(seen)}
    gm_rolls = [purpose for _, purpose in everything_gm]
    assert set(acked) <= player_rolls, "an acknowledged roll is missing for the player"
    assert set(acked) <= set(gm_rolls), "an acknowledged roll is missing at the table"
    assert len(gm_rolls) == len(set(gm_rolls)), "a roll reached the table twice"
