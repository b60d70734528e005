"""The bounded event store behind /mcp's resumable streams: replay after an id, within bounds."""

from __future__ import annotations

import mcp_types as types
import pytest
from mcp.server.streamable_http import EventMessage

from ttrpg_mcp.bridge.mcp_endpoint.event_store import BoundedEventStore

pytestmark = pytest.mark.anyio


def _note(n: int) -> types.JSONRPCMessage:
    return types.JSONRPCNotification(jsonrpc="2.0", method="notifications/message", params={"n": n})


async def _replay(store: BoundedEventStore, after: str) -> tuple[str | None, list[int]]:
    seen: list[int] = []

    async def collect(event: EventMessage) -> None:
        seen.append(int(str(event.event_id)))

    stream = await store.replay_events_after(after, collect)
    return stream, seen


async def test_a_stream_replays_only_its_own_events_after_the_given_id() -> None:
    """Events of other streams and the priming event (no message) are never replayed."""
    store = BoundedEventStore()
    first = await store.store_event("a", None)
    a1 = await store.store_event("a", _note(1))
    await store.store_event("b", _note(2))
    a2 = await store.store_event("a", _note(3))
    assert await _replay(store, first) == ("a", [int(a1), int(a2)])
    assert await _replay(store, a1) == ("a", [int(a2)])


async def test_events_past_the_bounds_are_forgotten_and_an_unknown_id_replays_nothing() -> None:
    """The oldest events of a stream, and the oldest streams, go first; garbage ids are no stream."""
    store = BoundedEventStore(events_per_stream=2, max_streams=2)
    ids = [await store.store_event("a", _note(n)) for n in range(4)]
    assert await _replay(store, ids[0]) == (None, [])  # dropped: the client cannot resume from it
    assert await _replay(store, ids[2]) == ("a", [int(ids[3])])
    await store.store_event("b", _note(9))
    await store.store_event("c", _note(10))  # a third stream pushes out the oldest, "a"
    assert await _replay(store, ids[3]) == (None, [])
    assert await _replay(store, "not-a-number") == (None, [])
