"""Hostile messages on a live connection, over both transports: refused by name, nobody else hurt."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any, cast

import anyio
import httpx
import pytest
from bridge_process import RunningBridge, run_bridge
from tables import Transport, drain, events_of, party, until

from ttrpg_mcp.client import BridgeConnection

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("attacks") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


@pytest.fixture(params=["websocket", "sse"])
def transport(request: pytest.FixtureRequest) -> Transport:
    return cast(Transport, request.param)


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"x": value}
    return value


ATTACKS: list[tuple[dict[str, Any], str]] = [
    ({"id": "a1", "type": "tool_call", "method": "search", "params": _deep(40)}, "message_too_deep"),
    (
        {"id": "a2", "type": "tool_call", "method": "search", "params": {"q": list(range(6000))}},
        "value_too_long",
    ),
    (
        {
            "id": "a3",
            "type": "tool_call",
            "method": "search",
            "params": {"query": {"__proto__": {"gm": True}}},
        },
        "dangerous_key",
    ),
    (
        {"id": "a4", "type": "state_update", "data": {"path": ["custom", "constructor"], "operation": "set"}},
        "dangerous_key",
    ),
]


async def test_hostile_messages_are_refused_by_name_and_the_table_carries_on(
    bridge: RunningBridge, transport: Transport
) -> None:
    """Deep, long and poisoned messages each get their code; the sender and the others keep playing."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, [("gm", "websocket"), ("player", transport)]) as (
            _campaign_id,
            seats,
        ):
            gm, attacker = seats
            for message, code in ATTACKS:
                reply = await attacker.table.request_raw(message)
                assert reply["error"]["code"] == code, reply
                assert reply["request_id"] == message["id"]
            roll = await attacker.table.roll_dice("1d6", purpose="still welcome")
            assert 1 <= roll["total"] <= 6
            # The roll after the attacks is the marker: no state changed before it.
            seen = await until(gm.table, lambda e: e["type"] == "dice_roll")
            assert [e for e in seen if e["type"] == "state_update"] == []
            assert seen[-1]["data"]["purpose"] == "still welcome"


async def test_a_batch_is_answered_message_by_message_and_an_oversized_batch_is_refused(
    bridge: RunningBridge, transport: Transport
) -> None:
    """Three messages in one frame: three replies; eleven: batch_too_large, nothing applied."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, [("gm", transport)]) as (_campaign_id, seats):
            (gm,) = seats
            batch = [
                {"id": "b1", "type": "dice_roll", "data": {"expression": "1d4"}},
                {"id": "b2", "type": "heartbeat"},
                {"id": "b3", "type": "teleport"},
            ]
            seen: list[dict[str, Any]] = []
            replies = await _send_batch(gm, batch, seen)
            assert [(r["request_id"], r["type"]) for r in replies] == [
                ("b1", "dice_roll_result"),
                ("b2", "ack"),
                ("b3", "error"),
            ]
            too_many = [
                {"id": f"c{n}", "type": "dice_roll", "data": {"expression": "1d4"}} for n in range(11)
            ]
            refused = await _send_batch(gm, too_many, seen)
            assert [r["error"]["code"] for r in refused] == ["batch_too_large"]
            rolls = [e for e in seen if e["type"] == "dice_roll"] + await events_of(gm.table, "dice_roll")
            assert len(rolls) == 1


async def _send_batch(
    seat: Any, batch: list[dict[str, Any]], seen: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Send a batch in one frame (WebSocket) or one POST (SSE); the replies, in order.

    Events that arrive meanwhile on the WebSocket are added to ``seen``."""
    table = seat.table
    if isinstance(table, BridgeConnection):
        await table.send_text(json.dumps(batch))
        wanted = len(batch) if len(batch) <= 10 else 1
        replies: list[dict[str, Any]] = []
        async for event in table.events():
            if event["type"] in ("dice_roll_result", "ack", "error"):
                replies.append(event)
                if len(replies) == wanted:
                    return replies
            else:
                seen.append(event)
        raise AssertionError("the connection ended before every reply came")
    assert seat.client.tokens is not None
    headers = {"Authorization": f"Bearer {seat.client.tokens.access_token}"}
    for message in batch:
        message["session_id"] = table.session_id
    async with httpx.AsyncClient(base_url=seat.client.base_url) as http:
        response = await http.post("/api/messages", json=batch, headers=headers)
    body = response.json()
    return body if isinstance(body, list) else [body]


def _tool_calls_counted(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith('mcp_request_duration_seconds_count{method="tools/call"}'):
            return float(line.rpartition(" ")[2])
    return 0.0


async def test_arguments_that_break_the_tools_schema_never_reach_the_child(
    bridge: RunningBridge, transport: Transport
) -> None:
    """invalid_params names the field; the pool's tools/call count does not move."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, [("gm", transport)]) as (_campaign_id, seats):
            (gm,) = seats
            async with httpx.AsyncClient(base_url=bridge.base_url) as http:
                before = _tool_calls_counted((await http.get("/metrics")).text)
                reply = await gm.table.request_raw(
                    {
                        "id": "bad-args",
                        "type": "tool_call",
                        "method": "roll_dice",
                        "params": {"expression": 20},
                    }
                )
                missing = await gm.table.request_raw(
                    {"id": "no-args", "type": "tool_call", "method": "search"}
                )
                after = _tool_calls_counted((await http.get("/metrics")).text)
    assert reply["error"]["code"] == "invalid_params"
    assert "expression" in reply["error"]["message"]
    assert missing["error"]["code"] == "invalid_params"
    assert after == before


async def test_an_unknown_tool_argument_is_refused_before_the_child_with_a_suggestion(
    bridge: RunningBridge, transport: Transport
) -> None:
    """``class`` for create_character: invalid_params naming it and character_class; no child call."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, [("gm", transport)]) as (campaign_id, seats):
            (gm,) = seats
            async with httpx.AsyncClient(base_url=bridge.base_url) as http:
                before = _tool_calls_counted((await http.get("/metrics")).text)
                reply = await gm.table.request_raw(
                    {
                        "id": "typo",
                        "type": "tool_call",
                        "method": "create_character",
                        "params": {"campaign_id": campaign_id, "name": "Ada", "class": "Wizard"},
                    }
                )
                after = _tool_calls_counted((await http.get("/metrics")).text)
    error = reply["error"]
    assert error["code"] == "invalid_params"
    assert "unknown argument 'class'; did you mean 'character_class'?" in error["message"]
    assert error["data"]["unknown"] == ["class"]
    assert "character_class" in error["data"]["accepted"]
    assert after == before


async def test_the_tool_policy_is_configuration(data_dir: Any) -> None:
    """With players limited to search, a player's get_campaign is forbidden; search still works."""
    env = {"TTRPG_TOOL_POLICY": '{"player": ["search"]}'}
    with run_bridge(data_dir, env) as running, anyio.fail_after(TEST_TIMEOUT):
        async with party(running.base_url, [("gm", "websocket"), ("player", "websocket")]) as (
            campaign_id,
            seats,
        ):
            _gm, player = seats
            refused = await player.table.request_raw(
                {
                    "id": "p1",
                    "type": "tool_call",
                    "method": "get_campaign",
                    "params": {"campaign_id": campaign_id},
                }
            )
            assert refused["error"]["code"] == "forbidden"
            found = await player.table.call_tool("search", {"query": "grapple"})
            assert found["hits"]


async def test_user_html_is_relayed_as_inert_text(bridge: RunningBridge) -> None:
    """A name, a purpose and a note full of markup reach others as the same plain JSON strings."""
    markup = '<img src=x onerror="alert(1)"><script>steal()</script>'
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, [("gm", "websocket"), ("player", "sse")]) as (_campaign_id, seats):
            gm, player = seats
            await player.table.roll_dice("1d4", purpose=markup)
            await player.table.update_state(["shared_notes"], markup)
            events = [e for e in await drain(gm.table) if e["type"] in ("dice_roll", "state_update")]
            async with httpx.AsyncClient(base_url=bridge.base_url) as http:
                body = {"name": f"x{uuid.uuid4().hex[:6]}", "password": "password123", "display_name": markup}
                response = await http.post("/api/auth/register", json=body)
    assert [e["data"].get("purpose", e["data"].get("value")) for e in events] == [markup, markup]
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.json()["user_info"]["display_name"] == markup
