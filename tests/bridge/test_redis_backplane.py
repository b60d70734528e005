"""The Redis backplane on a real ``redis-server``: one order for every node, whatever the race.

The committed log here is a list standing in for the SQL event log (the backplane reads it
only to fill gaps); Redis, the streams and the followers are real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from cluster import RedisServer, redis_server
from redis.asyncio import Redis
from waiting import eventually

from ttrpg_mcp.bridge.backplane import LoggedEvent
from ttrpg_mcp.bridge.backplane.redis_bus import NODE_TTL, RedisBackplane

pytestmark = pytest.mark.anyio

DEADLINE = 20.0


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


class Node:
    """What a node's rooms do with the backplane: keep what it delivers, read the record."""

    def __init__(self, record: list[LoggedEvent]) -> None:
        self.record = record
        self.delivered: list[int] = []
        self.gone: list[str] = []

    async def deliver(self, _campaign_id: str, events: list[LoggedEvent]) -> None:
        self.delivered.extend(event.seq for event in events)

    async def backfill(self, _campaign_id: str, after: int, limit: int) -> list[LoggedEvent]:
        return [event for event in self.record if event.seq > after][:limit]

    async def reap(self, _campaign_id: str, gone: list[dict[str, Any]]) -> None:
        self.gone.extend(view["user_id"] for view in gone)


def _event(seq: int) -> LoggedEvent:
    return LoggedEvent(seq, "dice_roll", {"total": seq})


async def _until(condition: Any) -> None:
    while not condition():  # noqa: ASYNC110  # a condition across two processes' followers
        await anyio.sleep(0.02)


async def test_a_late_append_is_taken_from_the_record_and_every_node_sees_one_order(
    redis: RedisServer,
) -> None:
    record: list[LoggedEvent] = []
    nodes = [Node(record), Node(record)]
    planes = [RedisBackplane(redis.url), RedisBackplane(redis.url)]
    try:
        for plane, node in zip(planes, nodes, strict=True):
            await plane.start(node.deliver, node.backfill, node.reap)
            plane.follow("camp", "ep1", 0)
        record.extend(_event(seq) for seq in (1, 2, 3))
        # Seq 2's node appends first; seq 1's append comes late and is refused by the stream.
        await planes[1].publish("camp", "ep1", [_event(2)])
        await planes[0].publish("camp", "ep1", [_event(1)])
        await planes[0].publish("camp", "ep1", [_event(3)])
        with anyio.fail_after(DEADLINE):
            await _until(lambda: all(len(node.delivered) >= 3 for node in nodes))
        # Nothing more arrives: a later event is the marker.
        record.append(_event(4))
        await planes[1].publish("camp", "ep1", [_event(4)])
        with anyio.fail_after(DEADLINE):
            await _until(lambda: all(4 in node.delivered for node in nodes))
    finally:
        for plane in planes:
            await plane.stop()
    assert [node.delivered for node in nodes] == [[1, 2, 3, 4], [1, 2, 3, 4]]


async def test_seats_of_both_nodes_are_listed_and_a_clean_stop_takes_its_seats_away(
    redis: RedisServer,
) -> None:
    nodes = [Node([]), Node([])]
    planes = [RedisBackplane(redis.url), RedisBackplane(redis.url)]
    for plane, node in zip(planes, nodes, strict=True):
        await plane.start(node.deliver, node.backfill, node.reap)
    try:
        await planes[0].set_presence("camp", "mira", {"user_id": "mira", "sessions": 1})
        await planes[1].set_presence("camp", "kai", {"user_id": "kai", "sessions": 2})
        await planes[1].set_presence("camp", "mira", {"user_id": "mira", "sessions": 1})
        both = await planes[0].participants("camp")
        await planes[1].stop()
        after = await planes[0].participants("camp")
    finally:
        await planes[0].stop()
    assert both is not None
    assert {view["user_id"]: view["sessions"] for view in both} == {"mira": 2, "kai": 2}
    assert after == [{"user_id": "mira", "sessions": 1}]


async def test_redis_gone_is_reported_and_events_still_come_from_the_record(redis: RedisServer) -> None:
    record: list[LoggedEvent] = []
    node = Node(record)
    plane = RedisBackplane(redis.url)
    await plane.start(node.deliver, node.backfill, node.reap)
    plane.follow("camp", "ep1", 0)
    try:
        assert plane.problem() is None
        redis.stop()
        record.append(_event(1))
        await plane.publish("camp", "ep1", [_event(1)])
        with anyio.fail_after(DEADLINE):
            await _until(lambda: plane.problem() is not None and node.delivered == [1])
        outage = plane.problem()
        redis.start()
        record.append(_event(2))
        await plane.publish("camp", "ep1", [_event(2)])
        with anyio.fail_after(DEADLINE):
            await _until(lambda: plane.problem() is None and node.delivered == [1, 2])
    finally:
        await plane.stop()
    assert outage is not None
    assert outage.startswith("unreachable")


async def _dead_seat(redis: RedisServer, seat: str) -> None:
    """A seat of a node that died at once: its node key expires in a moment, its seat stays."""
    client = Redis.from_url(redis.url)
    try:
        node = f"dead{seat}"
        await client.set(f"node:{node}", "1", px=50)
        await client.hset("presence:camp", f"{node}|{seat}", json.dumps({"user_id": seat, "sessions": 1}))
    finally:
        await client.aclose()


async def _just_beaten(client: Redis, node_id: str) -> None:
    """Return right after the node's heartbeat renewed its key (its TTL is whole again)."""

    async def renewed() -> bool:
        return bool(await client.pttl(f"node:{node_id}") >= NODE_TTL * 1000 - 300)

    await eventually(renewed, "the node's heartbeat renews its key")


async def test_a_redis_that_lost_everything_announces_no_seat_still_connected_as_gone(
    redis: RedisServer,
) -> None:
    """Redis empties under the nodes (a restart their retries hid): nobody seated is announced gone.

    A seat that changes before its node's next heartbeat is written with its node's key, and a
    node that finds a new Redis waits a full node TTL before it reaps; a dead node's seat is
    still reaped after (the marker: the ghosts before and after are the only ones announced).
    """
    watcher, seated = Node([]), Node([])
    planes = [RedisBackplane(redis.url), RedisBackplane(redis.url)]
    for plane, node in zip(planes, (watcher, seated), strict=True):
        await plane.start(node.deliver, node.backfill, node.reap)
    planes[0].follow("camp", "ep1", 0)  # a node reaps the tables it follows
    client = Redis.from_url(redis.url)
    try:
        await planes[1].set_presence("camp", "kai", {"user_id": "kai", "sessions": 1})
        await _dead_seat(redis, "ghost")
        with anyio.fail_after(DEADLINE):
            await _until(lambda: watcher.gone == ["ghost"])  # the watcher reaps by now
        with anyio.fail_after(DEADLINE):
            await _just_beaten(client, planes[1].node_id)  # its next heartbeat is the furthest off
        await client.flushall()
        await planes[1].set_presence("camp", "kai", {"user_id": "kai", "status": "away", "sessions": 1})
        await _dead_seat(redis, "late")
        with anyio.fail_after(DEADLINE):
            await _until(lambda: "late" in watcher.gone)
        listed = await planes[0].participants("camp")
    finally:
        await client.aclose()
        for plane in planes:
            await plane.stop()
    assert watcher.gone == ["ghost", "late"]
    assert listed == [{"user_id": "kai", "status": "away", "sessions": 1}]
