"""People at a campaign's table, for end-to-end tests: a new campaign, its seats, their events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from ttrpg_mcp.client import BridgeClient, BridgeConnection, SseConnection

__all__ = ["Seat", "Table", "Transport", "drain", "events_of", "party", "places", "through_the_feed", "until"]

Transport = Literal["websocket", "sse"]
Table = BridgeConnection | SseConnection


@dataclass
class Seat:
    """One person at a table: their HTTP client, their connection and the snapshot they got."""

    client: BridgeClient
    table: Table
    snapshot: dict[str, Any]

    @property
    def user_id(self) -> str:
        assert self.client.tokens is not None
        return str(self.client.tokens.user["id"])


def places(*roles: str, transport: Transport = "websocket") -> list[tuple[str, Transport]]:
    """A GM and one seat per role, all over one transport."""
    return [("gm", transport)] + [(role, transport) for role in roles]


@asynccontextmanager
async def party(base_url: str, people: list[tuple[str, Transport]]) -> AsyncIterator[tuple[str, list[Seat]]]:
    """A new campaign: the first place is its GM, each place joined over its own transport."""
    async with AsyncExitStack() as stack:
        joined: list[Seat] = []
        campaign_id = ""
        for index, (role, transport) in enumerate(people):
            client = await stack.enter_async_context(BridgeClient(base_url))
            await client.register(f"{role}{index}-{uuid.uuid4().hex[:8]}", "password123")
            if index == 0:
                campaign_id = (await client.create_campaign(f"Table {uuid.uuid4().hex[:6]}"))["id"]
            else:
                code = (await joined[0].client.create_invite(campaign_id, role=role))["code"]
                await client.join_campaign(code)
            table = await stack.enter_async_context(client.connect(transport=transport))
            joined.append(Seat(client, table, await table.join(campaign_id)))
        for seat in joined:  # everyone has seen everyone arrive: start clean
            await drain(seat.table)
        yield campaign_id, joined


async def drain(table: Table) -> list[dict[str, Any]]:
    """Every event the bridge sent ``table`` up to now, checked against a later marker.

    On a WebSocket the marker is a heartbeat: its ack travels on the same ordered socket, so once
    it is in, every event sent before it has been received. An SSE stream carries no replies, so
    the marker is a cursor of the stream's own at a unique element: cursor batches are never
    logged (no ``seq`` is used up) and reach every seat, the sender too, through the same queue
    as the events before them. The marker's cursor is left out of what is returned."""
    if isinstance(table, BridgeConnection):
        await table.heartbeat()
        return table.received()
    marker = f"drain-{uuid.uuid4().hex}"
    await table.move_cursor(0, 0, element=marker)
    events = await until(table, lambda event: _has_cursor(event, marker))
    last = events.pop()
    others = [c for c in last["data"]["cursors"] if c["position"].get("element") != marker]
    if others:  # other people's cursors that shared the marker's batch
        events.append(last | {"data": last["data"] | {"cursors": others}})
    return events


def _has_cursor(event: dict[str, Any], element: str) -> bool:
    return event["type"] == "cursor_move" and any(
        cursor["position"].get("element") == element for cursor in event["data"]["cursors"]
    )


async def until(table: Table, marker: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Every event up to and including the first ``marker`` accepts; the test's deadline bounds it.

    "Nothing arrived" is checked this way: against a later event the table is sure to get, never
    against a quiet moment, which a loaded machine can stretch past any window."""
    events: list[dict[str, Any]] = []
    async for event in table.events():
        events.append(event)
        if marker(event):
            return events
    raise AssertionError(f"the connection ended before the marker; got {[e['type'] for e in events]}")


async def through_the_feed(gm: Table, watcher: Table, campaign_id: str) -> list[dict[str, Any]]:
    """Every event ``watcher`` got up to now, content changes included, against a later marker.

    Content events come through the change feed, after their write has been answered, so a
    heartbeat is no marker for them: the marker is a content change of its own, a new location
    with a unique name made by the GM, which the feed publishes after every earlier change (a new
    entity, so no later change can rewrite what its event shows). The marker's event is left out."""
    marker = f"marker {uuid.uuid4().hex}"
    await gm.call_tool("create_location", {"campaign_id": campaign_id, "name": marker})
    events = await until(
        watcher,
        lambda event: event["type"] == "location_update" and marker in str(event["data"]),
    )
    return events[:-1]


async def events_of(table: Table, kind: str) -> list[dict[str, Any]]:
    return [event for event in await drain(table) if event["type"] == kind]
