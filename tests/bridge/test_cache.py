"""The read-only tool cache: reuse within the TTL, never for writes, cleared by a write."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest
from bridge_process import RunningBridge, run_bridge
from tables import party

from ttrpg_mcp.bridge.cache import ResponseCache
from ttrpg_mcp.server.secrecy import Viewer

TEST_TIMEOUT = 60.0


def test_entries_expire_and_writes_clear_their_campaign() -> None:
    """A hit within the TTL, a miss after it; invalidation is per campaign; rolls are never kept."""
    cache = ResponseCache(ttl=10, max_entries=10)
    key = cache.key("camp_a", "get_campaign", {"campaign_id": "camp_a"})
    other = cache.key("camp_b", "get_campaign", {"campaign_id": "camp_b"})
    cache.put(key, {"v": 1}, now=0)
    cache.put(other, {"v": 2}, now=0)
    assert cache.get(key, now=5) == {"v": 1}
    assert cache.get(key, now=11) is None
    cache.put(key, {"v": 1}, now=20)
    cache.invalidate_campaign("camp_a")
    assert cache.get(key, now=21) is None
    assert cache.get(other, now=5) == {"v": 2}
    roll = cache.key("camp_a", "roll_dice", {"expression": "1d6"})
    cache.put(roll, {"total": 3}, now=0)
    assert cache.get(roll, now=1) is None


def test_parameters_in_any_order_are_one_key() -> None:
    """Canonical parameters: key order does not matter."""
    assert ResponseCache.key("c", "search", {"query": "x", "limit": 3}) == ResponseCache.key(
        "c", "search", {"limit": 3, "query": "x"}
    )


def test_a_gm_answer_is_never_a_player_answer() -> None:
    """GMs share answers; each player and spectator has their own (a note may be for one player)."""
    params = {"campaign_id": "c", "kind": "notes"}
    gm = ResponseCache.key("c", "list_items", params, Viewer("gm", "usr_a", "c"))
    other_gm = ResponseCache.key("c", "list_items", params, Viewer("gm", "usr_b", "c"))
    player = ResponseCache.key("c", "list_items", params, Viewer("player", "usr_p", "c"))
    other_player = ResponseCache.key("c", "list_items", params, Viewer("player", "usr_q", "c"))
    spectator = ResponseCache.key("c", "list_items", params, Viewer("spectator", "usr_p", "c"))
    assert gm == other_gm
    assert len({gm, player, other_player, spectator}) == 4
    cache = ResponseCache(ttl=10, max_entries=10)
    cache.put(gm, {"secret": True}, now=0)
    assert cache.get(player, now=1) is None
    cache.invalidate_campaign("c")
    assert cache.get(gm, now=1) is None


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("cache") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


def _tool_calls(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith('mcp_request_duration_seconds_count{method="tools/call"}'):
            return float(line.rpartition(" ")[2])
    return 0.0


@pytest.mark.anyio
async def test_a_repeated_read_is_served_from_the_cache_until_a_write(bridge: RunningBridge) -> None:
    """Two get_campaign calls reach the child once; after campaign_update the next one sees the change."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            party(bridge.base_url, [("gm", "websocket")]) as (campaign_id, seats),
            httpx.AsyncClient(base_url=bridge.base_url) as http,
        ):
            (gm,) = seats
            params = {"campaign_id": campaign_id}
            start = _tool_calls((await http.get("/metrics")).text)
            first = await gm.table.call_tool("get_campaign", params)
            second = await gm.table.call_tool("get_campaign", params)
            after_reads = _tool_calls((await http.get("/metrics")).text)
            await gm.table.update_campaign(setting="The Drowned Coast")
            third = await gm.table.call_tool("get_campaign", params)
    assert first == second
    assert after_reads - start == 1
    assert third["setting"] == "The Drowned Coast"
