"""The memory behind ``/mcp``'s resumable streams: what an agent missed while its stream was down.

The SDK's Streamable HTTP transport gives each SSE event an id from an :class:`EventStore` and,
when a client reconnects with ``Last-Event-ID``, asks the store to replay what followed on that
stream. The SDK ships only the interface; this is a bounded in-memory one: the newest
:data:`EVENTS_PER_STREAM` events of each stream, and at most :data:`MAX_STREAMS` streams (the
oldest are forgotten first). A client that comes back after its events were dropped gets no
replay and learns the outcome of its requests by asking again, which every ``/mcp`` read allows
and every change answers once (dispatch keeps the replies of changes).

One bridge process keeps its own; the MCP session is bound to that process anyway.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp_types import JSONRPCMessage

__all__ = ["EVENTS_PER_STREAM", "MAX_STREAMS", "BoundedEventStore"]

# An agent's stream carries replies and a few notifications: a reconnect within seconds
# misses a handful of them; 256 is far beyond that yet a few hundred KiB per stream at most.
EVENTS_PER_STREAM = 256
# Streams are per request (and one standalone GET per session): bounded by recent traffic.
MAX_STREAMS = 4096


class BoundedEventStore(EventStore):
    """Per-stream rings of recent events, ids unique in this process."""

    def __init__(self, events_per_stream: int = EVENTS_PER_STREAM, max_streams: int = MAX_STREAMS) -> None:
        self._events_per_stream = events_per_stream
        self._max_streams = max_streams
        self._streams: OrderedDict[StreamId, deque[tuple[int, JSONRPCMessage | None]]] = OrderedDict()
        self._stream_of: dict[int, StreamId] = {}
        self._ids = itertools.count(1)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        number = next(self._ids)
        ring = self._streams.get(stream_id)
        if ring is None:
            ring = self._streams[stream_id] = deque()
            while len(self._streams) > self._max_streams:
                _old, dropped = self._streams.popitem(last=False)
                for dropped_number, _message in dropped:
                    self._stream_of.pop(dropped_number, None)
        else:
            self._streams.move_to_end(stream_id)
        ring.append((number, message))
        self._stream_of[number] = stream_id
        if len(ring) > self._events_per_stream:
            dropped_number, _message = ring.popleft()
            self._stream_of.pop(dropped_number, None)
        return str(number)

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        try:
            last = int(last_event_id)
        except ValueError:
            return None
        stream_id = self._stream_of.get(last)
        if stream_id is None:
            return None
        for number, message in list(self._streams.get(stream_id, ())):
            if number > last and message is not None:
                await send_callback(EventMessage(message, str(number)))
        return stream_id
