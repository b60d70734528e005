"""One connection's changes are applied and numbered in the order they were sent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from bridge_process import RunningBridge, run_bridge
from tables import Table, party, places

from ttrpg_mcp.bridge.ordering import ArrivalOrder
from ttrpg_mcp.client import SseConnection

pytestmark = pytest.mark.anyio

# 200 changes, each a store write, on a machine shared with other test runs.
TEST_TIMEOUT = 120.0
CHANGES = 200


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("ordering") / "data"
    data_dir.mkdir()
    budget = {"TTRPG_RATE_MESSAGES_PER_SECOND": "2000", "TTRPG_RATE_MESSAGES_BURST": "2000"}
    with run_bridge(data_dir, budget) as running:
        yield running


# -- the turn keeper, without sockets ----------------------------------------------------------


async def test_turns_come_up_in_the_order_they_were_taken() -> None:
    """Tasks that start in any order still run their turns in the order the turns were taken."""
    order = ArrivalOrder()
    turns = [order.take() for _ in range(5)]
    ran: list[int] = []

    async def run(index: int) -> None:
        await turns[index].wait()
        ran.append(index)
        turns[index].release()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            for index in (4, 2, 3, 0, 1):
                group.start_soon(run, index)
    assert ran == [0, 1, 2, 3, 4]
    assert order.pending == 0


async def test_a_turn_released_early_lets_later_ones_pass_without_waiting_for_it() -> None:
    """Releasing out of order (a read, a cancelled task) skips the turn when it comes up."""
    order = ArrivalOrder()
    first, second, third = order.take(), order.take(), order.take()
    third.release()  # released before it came up
    second.release()
    second.release()  # idempotent
    with anyio.fail_after(5):
        await first.wait()
        first.release()
        fourth = order.take()
        await fourth.wait()  # up at once: every earlier turn is released
    assert order.pending == 1


# -- over the wire --------------------------------------------------------------------------------


def _change(index: int) -> dict[str, Any]:
    """The index-th change of a mixed run: a roll, a state change, a stroke or a presence change."""
    message_id = f"m{index:03d}-{uuid.uuid4().hex[:6]}"
    if index % 4 == 3:
        data = {"status": "typing" if index % 8 == 3 else "online", "character_name": str(index)}
        return {"id": message_id, "type": "presence_update", "data": data, "ack": True}
    match index % 3:
        case 0:
            return {
                "id": message_id,
                "type": "dice_roll",
                "data": {"expression": "1d6", "purpose": str(index)},
            }
        case 1:
            data = {"path": ["custom", "order"], "operation": "set", "value": index}
            return {"id": message_id, "type": "state_update", "data": data}
        case _:
            stroke = {"tool": "pen", "points": [[index, 0], [index, 1]], "color": "#112233", "width": 2}
            return {"id": message_id, "type": "canvas_draw", "data": {"action": "stroke", "stroke": stroke}}


def _index_of(event: dict[str, Any], strokes: dict[str, int]) -> int | None:
    """Which change of the run an event reports, if any."""
    data = event.get("data") or {}
    match event.get("type"):
        case "dice_roll":
            return int(data["purpose"])
        case "state_update" if data.get("path") == ["custom", "order"]:
            return int(data["value"])
        case "presence_update" if str(data.get("character_name", "")).isdigit():
            return int(data["character_name"])
        case "canvas_draw" if data.get("action") == "stroke":
            return strokes.get(str((data.get("stroke") or {}).get("id")))
        case _:
            return None


async def _send_back_to_back(table: Table, messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Send every message without waiting in between; return the replies by request id."""
    replies: dict[str, dict[str, Any]] = {}

    async def one(message: dict[str, Any]) -> None:
        replies[message["id"]] = await table.request_raw(message, timeout=TEST_TIMEOUT)

    async with anyio.create_task_group() as group:
        # Each task sends at once and then waits for its reply: the sends go out one after
        # the other, in list order, without waiting for any reply.
        for message in messages:
            group.start_soon(one, message)
            await anyio.lowlevel.checkpoint()
    return replies


async def _applied_in_send_order(table: Table, messages: list[dict[str, Any]]) -> list[int]:
    replies = await _send_back_to_back(table, messages)
    for message in messages:
        reply = replies[message["id"]]
        assert "error" not in reply or not reply["error"], reply
    strokes = {
        str((replies[m["id"]].get("data") or {}).get("stroke_id")): index
        for index, m in enumerate(messages)
        if m["type"] == "canvas_draw"
    }
    seen: dict[int, int] = {}
    async for event in table.events():
        index = _index_of(event, strokes)
        if index is not None:
            seen[index] = int(event["seq"])
        if len(seen) == len(messages):
            break
    return [index for index, _seq in sorted(seen.items(), key=lambda item: item[1])]


async def test_two_hundred_changes_sent_back_to_back_get_seq_in_send_order(bridge: RunningBridge) -> None:
    """Rolls, state changes, strokes and presence from one WebSocket get their seq in the order sent."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places()) as (_campaign, (gm,)):
            messages = [_change(index) for index in range(CHANGES)]
            by_seq = await _applied_in_send_order(gm.table, messages)
    assert by_seq == list(range(CHANGES))


async def test_changes_posted_one_after_another_over_sse_keep_their_order(bridge: RunningBridge) -> None:
    """POSTs of one SSE session, sent without waiting for each other, are applied as they arrive."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places(transport="sse")) as (_campaign, (gm,)):
            assert isinstance(gm.table, SseConnection)
            messages = [_change(index) for index in range(30)]
            by_seq = await _applied_in_send_order(gm.table, messages)
    assert by_seq == list(range(30))
