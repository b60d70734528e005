"""A campaign's table across several bridge nodes, for end-to-end tests of a cluster.

Two real ``ttrpg-bridge serve`` nodes on one fresh PostgreSQL database and a ``redis-server`` of
the test's own (:mod:`cluster`), and a table whose seats sit on whichever nodes a test names.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge_process import RunningBridge, run_bridge
from cluster import RedisServer, cluster_env, postgres_database, redis_server
from tables import until

from ttrpg_mcp.client import BridgeClient, BridgeConnection

__all__ = ["Cluster", "Seat", "is_roll", "rolls", "table_across", "two_nodes"]


@dataclass
class Cluster:
    redis: RedisServer
    env: dict[str, str]
    nodes: list[RunningBridge]
    folder: Path


@contextmanager
def two_nodes(folder: Path) -> Iterator[Cluster]:
    """Two nodes (data directories ``a`` and ``b`` in ``folder``) on a new database and Redis."""
    with postgres_database() as database_url, redis_server(folder) as redis:
        env = cluster_env(database_url, redis.url)
        (folder / "a").mkdir()
        (folder / "b").mkdir()
        with run_bridge(folder / "a", env) as first, run_bridge(folder / "b", env) as second:
            yield Cluster(redis, env, [first, second], folder)


@dataclass
class Seat:
    client: BridgeClient
    table: BridgeConnection
    node: RunningBridge
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def user_id(self) -> str:
        assert self.client.tokens is not None
        return str(self.client.tokens.user["id"])


def is_roll(purpose: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event.get("type") == "dice_roll" and event["data"].get("purpose") == purpose


def rolls(events: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(event["seq"], event["data"]["purpose"]) for event in events if event["type"] == "dice_roll"]


@asynccontextmanager
async def table_across(nodes: list[RunningBridge]) -> AsyncIterator[tuple[str, list[Seat]]]:
    """A new campaign whose GM sits on the first node and one player on each node listed after."""
    async with AsyncExitStack() as stack:
        seats: list[Seat] = []
        campaign_id = ""
        for index, node in enumerate(nodes):
            client = await stack.enter_async_context(BridgeClient(node.base_url))
            await client.register(f"seat{index}-{uuid.uuid4().hex[:8]}", "password123")
            if index == 0:
                campaign_id = (await client.create_campaign(f"Table {uuid.uuid4().hex[:6]}"))["id"]
            else:
                code = (await seats[0].client.create_invite(campaign_id, role="player"))["code"]
                await client.join_campaign(code)
            table = await stack.enter_async_context(
                client.connect(transport="websocket", campaign_id=campaign_id)
            )
            seats.append(Seat(client, table, node))
        # Everyone has seen everyone arrive (through whichever node): start clean from a marker.
        await seats[0].table.roll_dice("1d4", purpose="seated")
        for seat in seats:
            await until(seat.table, is_roll("seated"))
        yield campaign_id, seats
