"""People at a campaign's table, for end-to-end tests: a new campaign, its seats, their events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anyio

from ttrpg_mcp.client import BridgeClient, BridgeConnection, SseConnection

__all__ = ["QUIET", "Seat", "Table", "Transport", "drain", "events_of", "party", "places", "until"]

Transport = Literal["websocket", "sse"]
Table = BridgeConnection | SseConnection
QUIET = 0.5  # how long "nothing more arrives" is watched for


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


async def drain(table: Table, quiet: float = QUIET) -> list[dict[str, Any]]:
    """Every event that arrives until the connection has been quiet for a moment (or ends)."""
    events: list[dict[str, Any]] = []
    while True:
        received = False
        with anyio.move_on_after(quiet):
            async for event in table.events():
                events.append(event)
                received = True
                break
        if not received:
            return events


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


async def events_of(table: Table, kind: str) -> list[dict[str, Any]]:
    return [event for event in await drain(table) if event["type"] == kind]
