"""Fuzzing a live connection: thousands of generated and mutated messages, and nobody else hurt.

Hypothesis generates arbitrary JSON values, mutations of valid messages and raw text; each batch
goes down one spectator's live WebSocket, followed by a heartbeat whose ``ack`` proves the
connection handled everything before it and is still open. The bridge must answer every object
(and every item of a batch) that had an id, never crash, and leave the GM at the same table
working and seeing nothing but the well-formed messages it would get anyway.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.from_thread
import pytest
from bridge_process import RunningBridge, run_bridge
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttrpg_mcp.bridge.protocol import SERVER_TYPES, request_id_of
from ttrpg_mcp.client import BridgeClient, BridgeConnection

TEST_TIMEOUT = 30.0
# No rate limits here: the fuzzer is not abusive by volume, only by content.
ENV = {"TTRPG_RATE_MESSAGES_PER_SECOND": "100000", "TTRPG_RATE_MESSAGES_BURST": "100000"}

SEEDS: list[dict[str, Any]] = [
    {"type": "tool_call", "method": "roll_dice", "params": {"expression": "1d6"}},
    {"type": "dice_roll", "data": {"expression": "2d6+1", "visibility": "public"}},
    {"type": "state_update", "data": {"path": ["shared_notes"], "operation": "set", "value": "x"}},
    {
        "type": "canvas_draw",
        "data": {
            "action": "stroke",
            "stroke": {"tool": "pen", "points": [[0, 0]], "color": "#000", "width": 1},
        },
    },
    {"type": "initiative_update", "data": {"action": "next"}},
    {"type": "session_attach", "campaign_id": "camp_x", "last_seq": 3},
    {"type": "resource_get", "params": {"uri": "rules://starter/grappling"}},
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=30,
)


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A valid-looking message with one field replaced, removed or added."""
    message = dict(draw(st.sampled_from(SEEDS)))
    key = draw(st.sampled_from([*message.keys(), "data", "params", "__proto__", "id", "type"]))
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "remove":
        message.pop(key, None)
    else:
        message[key] = draw(json_values)
    return message


frames = st.one_of(
    json_values.map(json.dumps),
    mutated().map(json.dumps),
    st.text(max_size=200),  # not JSON at all, mostly
)


@pytest.fixture(scope="module")
def table(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[anyio.from_thread.BlockingPortal, Any, Any]]:
    """A GM and a spectator (the fuzzer) at one table, connections kept open across examples."""
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir, ENV) as running, anyio.from_thread.start_blocking_portal() as portal:
        gm_client = portal.call(_client, running)
        fuzz_client = portal.call(_client, running)
        campaign_id = portal.call(lambda: gm_client.create_campaign("Fuzz"))["id"]
        code = portal.call(lambda: gm_client.create_invite(campaign_id, role="spectator"))["code"]
        portal.call(fuzz_client.join_campaign, code)
        gm_cm = gm_client.connect(campaign_id=campaign_id)
        fuzz_cm = fuzz_client.connect(campaign_id=campaign_id)
        gm = portal.call(gm_cm.__aenter__)
        fuzzer = portal.call(fuzz_cm.__aenter__)
        portal.call(_settle, gm)  # the GM's snapshot and the fuzzer's arrival: before the fuzzing
        yield portal, gm, fuzzer
        portal.call(fuzz_cm.__aexit__, None, None, None)
        portal.call(gm_cm.__aexit__, None, None, None)
        portal.call(fuzz_client.aclose)
        portal.call(gm_client.aclose)


async def _client(running: RunningBridge) -> BridgeClient:
    client = BridgeClient(running.base_url)
    await client.register(f"f{uuid.uuid4().hex[:10]}", "password123")
    return client


# A client's messages that the protocol answers with nothing (docs/protocol.md).
_UNANSWERED = {"cursor_move", "disconnect"}
_MAX_BATCH = 10  # the max_batch default


def _ids_to_answer(frame: str) -> set[str]:
    """The ids the bridge must answer for one frame: an object's usable id, each batch item's."""
    try:
        value = json.loads(frame)
    except ValueError:
        return set()
    items = value if isinstance(value, list) and 0 < len(value) <= _MAX_BATCH else [value]
    return {
        request_id
        for item in items
        if (request_id := request_id_of(item)) is not None and item.get("type") not in _UNANSWERED
    }


async def _pending_events(connection: BridgeConnection) -> list[dict[str, Any]]:
    """What has already arrived on ``connection`` (the caller has waited for a later marker)."""
    received: list[dict[str, Any]] = []
    with anyio.move_on_after(0.2):
        async for event in connection.events():
            received.append(event)
    return received


async def _settle(connection: BridgeConnection) -> None:
    """Take everything queued for ``connection`` so far, behind its own heartbeat as a marker."""
    assert (await connection.heartbeat())["type"] == "ack"
    await _pending_events(connection)


async def _fuzz(fuzzer: BridgeConnection, batch: list[str]) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        expected: set[str] = set()
        for frame in batch:
            expected |= _ids_to_answer(frame)
            await fuzzer.send_text(frame)
        ack = await fuzzer.request_raw({"id": f"probe-{uuid.uuid4().hex}", "type": "heartbeat"})
        assert ack["type"] == "ack", ack
        # Every id is answered (tool calls may finish after the probe: wait for them).
        async for message in fuzzer.events():
            expected.discard(message.get("request_id") or "")
            if not expected:
                break


# The table's connections live in the portal's thread while Hypothesis draws here; their
# keepalive pings take payloads from the global `random` (websockets does), which Hypothesis
# would otherwise report as randomness inside a strategy.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(frames, min_size=20, max_size=60))
def test_a_live_connection_survives_any_message(table: tuple[Any, Any, Any], batch: list[str]) -> None:
    """Whatever is sent, every message with an id is answered and the connection stays open."""
    portal, _gm, fuzzer = table
    portal.call(_fuzz, fuzzer, batch)


def test_the_rest_of_the_table_saw_nothing_but_well_formed_messages(table: tuple[Any, Any, Any]) -> None:
    """After the fuzzing, the GM's connection works, and all it got from a spectator's garbage is
    what it would get anyway: well-formed heartbeats, no event the spectator caused, no error."""
    portal, gm, fuzzer = table

    async def check() -> list[dict[str, Any]]:
        with anyio.fail_after(TEST_TIMEOUT):
            # Markers: the fuzzer's last frames are handled, then the GM's own heartbeat is
            # answered after every event already queued for it.
            assert (await fuzzer.heartbeat())["type"] == "ack"
            assert (await gm.heartbeat())["type"] == "ack"
            return await _pending_events(gm)

    received = portal.call(check)
    for event in received:
        assert event["type"] in SERVER_TYPES, event
        assert {"id", "timestamp", "version"} <= event.keys(), event
    assert {event["type"] for event in received} <= {"heartbeat"}, received
