"""Re-attaching never doubles an event: after ``session_attach`` each event comes exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from bridge_process import RunningBridge, run_bridge
from tables import party, places
from websockets.asyncio.client import ClientConnection, connect

from ttrpg_mcp.bridge.delivered import DeliveredEvents

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("reattach") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


# -- the record of sent events, without sockets -------------------------------------------------


def _event(seq: int, campaign_id: str = "camp_a") -> dict[str, Any]:
    return {"type": "dice_roll", "campaign_id": campaign_id, "seq": seq, "data": {}}


def _snapshot(campaign_id: str, epoch: str) -> dict[str, Any]:
    return {"type": "campaign_snapshot", "data": {"campaign_id": campaign_id, "epoch": epoch, "seq": 0}}


def test_an_event_already_sent_is_not_sent_again_and_others_pass() -> None:
    """A replay overlapping the live events lets through only the ones not yet sent."""
    delivered = DeliveredEvents()
    assert delivered.admit(_snapshot("camp_a", "ep1"))
    assert delivered.admit(_event(35))
    replay = [seq for seq in range(4, 36) if delivered.admit(_event(seq))]
    assert replay == list(range(4, 35))
    assert not delivered.admit(_event(20))
    assert delivered.admit(_event(36))
    assert delivered.ranges("camp_a") == 1  # 4..36 merged into one run
    assert delivered.admit(_event(35, "camp_b"))  # another campaign has its own numbering
    assert delivered.admit({"type": "heartbeat"})


def test_a_new_epoch_forgets_what_was_sent() -> None:
    """After a snapshot of another epoch, the same seq names another event and is sent."""
    delivered = DeliveredEvents()
    assert delivered.admit(_snapshot("camp_a", "ep1"))
    assert delivered.admit(_event(5))
    assert delivered.admit(_snapshot("camp_a", "ep1"))
    assert not delivered.admit(_event(5))
    assert delivered.admit(_snapshot("camp_a", "ep2"))
    assert delivered.admit(_event(5))


def test_runs_of_seqs_merge_from_either_side() -> None:
    """Seqs arriving out of order still end as one run once the holes are filled."""
    delivered = DeliveredEvents()
    for seq in (10, 12, 14, 11, 13, 9, 15):
        assert delivered.admit(_event(seq))
    assert delivered.ranges("camp_a") == 1
    assert not any(delivered.admit(_event(seq)) for seq in range(9, 16))


# -- over the wire --------------------------------------------------------------------------------


async def _receive_until(socket: ClientConnection, done: Any, into: list[dict[str, Any]]) -> None:
    while True:
        message = json.loads(await socket.recv())
        into.append(message)
        if done(message):
            return


async def test_attaching_after_joining_replays_missed_events_once_in_order(bridge: RunningBridge) -> None:
    """The design document's flow: ?token=, authenticate with campaign_id, then session_attach."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with party(bridge.base_url, places("player")) as (campaign_id, (gm, player)):
            for index in range(3):
                await gm.table.roll_dice("1d6", purpose=f"early {index}")
            # The player's earlier connection saw events up to here.
            last_seq = int(
                (await gm.table.request({"type": "session_create", "campaign_id": campaign_id}))["data"][
                    "seq"
                ]
            )
            for index in range(3):
                await gm.table.roll_dice("1d6", purpose=f"missed {index}")
            assert player.client.tokens is not None
            token = player.client.tokens.access_token
            url = bridge.base_url.replace("http", "ws", 1) + f"/ws?token={token}"
            received: list[dict[str, Any]] = []
            async with connect(url, subprotocols=["mcp-ttrpg-v1"]) as socket:  # type: ignore[list-item]
                await socket.send(
                    json.dumps(
                        {"id": "auth", "type": "authenticate", "token": token, "campaign_id": campaign_id}
                    )
                )
                await _receive_until(
                    socket,
                    lambda m: m.get("type") == "campaign_snapshot" and m.get("request_id") == "auth",
                    received,
                )
                await gm.table.roll_dice("1d6", purpose="live before attach")
                await _receive_until(
                    socket, lambda m: (m.get("data") or {}).get("purpose") == "live before attach", received
                )
                before_attach = len(received)
                await socket.send(
                    json.dumps(
                        {
                            "id": "attach",
                            "type": "session_attach",
                            "campaign_id": campaign_id,
                            "last_seq": last_seq,
                        }
                    )
                )
                await _receive_until(
                    socket,
                    lambda m: m.get("type") == "campaign_snapshot" and m.get("request_id") == "attach",
                    received,
                )
                await gm.table.roll_dice("1d6", purpose="marker")
                await _receive_until(
                    socket, lambda m: (m.get("data") or {}).get("purpose") == "marker", received
                )
    after = [m["seq"] for m in received[before_attach:] if isinstance(m.get("seq"), int)]
    everything = [m["seq"] for m in received if isinstance(m.get("seq"), int)]
    assert after == sorted(set(after)), f"not strictly increasing after session_attach: {after}"
    assert len(everything) == len(set(everything)), f"an event came twice: {everything}"
    marker = after[-1]
    assert set(range(last_seq + 1, marker + 1)) <= set(everything), "an event after last_seq is missing"
    reply = next(m for m in received if m.get("request_id") == "attach")
    assert reply["data"]["recovered"] is True
