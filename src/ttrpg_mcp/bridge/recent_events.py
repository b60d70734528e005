"""A live room's recent events in memory, so a resume is served without reading the log.

A reconnecting client that missed a few hundred events used to have them read back from
``campaign_events``, and that read (rows, JSON decoding, records) was most of a resume's cost.
Yet every one of those events went through this node's room a moment before: the room keeps
them, in ``seq`` order, in a :class:`RecentEvents` ring as it delivers them (its own commits and
the events from the shared backplane alike), and a resume whose missed span the ring holds is
served from it.

The ring only ever holds a gap-free run of the room's events, ``(base, head]``, of one log
epoch. An event that does not follow its head (a delivery that failed part way, a follower that
skipped ahead) empties it and it knows nothing until the next resume that reads the log
re-anchors it (:meth:`RecentEvents.reset`). A retired room takes its ring with it. It is
bounded by a number of events (the bridge's ``replay_limit``: a longer gap gets a snapshot
anyway) and by bytes (:data:`MAX_BYTES` of payload and kept renderings, as JSON: a night of
large canvas strokes must not pin hundreds of megabytes), so memory per room stays bounded.

Each event also keeps what it looks like to each visibility class once a resume has rendered
it (the body without the per-seat ``id`` and ``session_id``, and that body's JSON): the next
resume by a viewer of the same class splices its two fields in front of it
(:func:`ttrpg_mcp.bridge.frames.shared_frame`) instead of rendering and encoding again. Pure
data structure: no I/O; the room's lock orders every call.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from ttrpg_mcp.bridge import frames

__all__ = ["MAX_BYTES", "RecentEvent", "RecentEvents"]

# The most JSON (payloads and kept renderings) one room keeps; the oldest events go first.
MAX_BYTES = 4 * 1024 * 1024

Body = tuple[dict[str, Any], str]  # a rendered body (no id, no session_id) and its JSON


class RecentEvent:
    """One logged event of the room, and its rendering per visibility class once made."""

    __slots__ = ("data", "ring", "seq", "size", "type", "views")

    def __init__(
        self, seq: int, type: str, data: dict[str, Any], ring: RecentEvents | None = None, size: int = 0
    ) -> None:
        self.seq = seq
        self.type = type
        self.data = data
        self.views: dict[object, Body] = {}
        self.ring = ring  # whose byte count the kept renderings add to
        self.size = size

    def view(self, key: object, render: Callable[[], dict[str, Any]]) -> Body:
        """The body a viewer of class ``key`` gets, rendered and encoded on first use only."""
        body = self.views.get(key)
        if body is None:
            rendered = render()
            body = self.views[key] = (rendered, frames.encode_body(rendered))
            if self.ring is not None:
                self.size += len(body[1])
                self.ring.grew(len(body[1]))
        return body


class RecentEvents:
    """The newest logged events of one room, gap-free, at most ``capacity`` of them."""

    def __init__(self, capacity: int, max_bytes: int = MAX_BYTES) -> None:
        self.capacity = max(0, capacity)
        self.max_bytes = max_bytes
        self.bytes = 0
        self.epoch: str | None = None  # None: nothing known (never anchored, or a gap was seen)
        self.head = 0  # the seq of the newest event delivered (or of the anchor)
        self._events: deque[RecentEvent] = deque()

    @property
    def base(self) -> int:
        """The seq just before the oldest event held: the ring covers ``(base, head]``."""
        return self.head - len(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def reset(self, epoch: str, head: int, events: Iterable[tuple[int, str, dict[str, Any]]] = ()) -> None:
        """Anchor the ring at the log's ``head`` of ``epoch``, holding ``events`` (gap-free, up to it).

        ``events`` are (seq, type, payload) in increasing ``seq`` ending at ``head``; any other
        run leaves the ring anchored but empty.
        """
        self._events.clear()
        self.epoch, self.head, self.bytes = epoch, head, 0
        held = list(events)
        gap_free = all(b[0] == a[0] + 1 for a, b in itertools.pairwise(held))
        if held and held[-1][0] == head and gap_free:
            for seq, kind, data in held[-self.capacity :] if self.capacity else []:
                self._keep(seq, kind, data)

    def append(self, seq: int, type: str, data: dict[str, Any]) -> None:
        """The room delivered its next event; anything but ``head + 1`` empties the ring."""
        if self.epoch is None:
            return
        if seq != self.head + 1:
            self.invalidate()
            return
        self.head = seq
        if self.capacity:
            self._keep(seq, type, data)

    def _keep(self, seq: int, type: str, data: dict[str, Any]) -> None:
        size = len(orjson.dumps(data, option=orjson.OPT_PASSTHROUGH_SUBCLASS, default=str))
        self._events.append(RecentEvent(seq, type, data, self, size))
        self.grew(size)
        while len(self._events) > self.capacity:
            self._drop_oldest()

    def grew(self, size: int) -> None:
        """``size`` more bytes held; the oldest events go while over :attr:`max_bytes`."""
        self.bytes += size
        while self.bytes > self.max_bytes and self._events:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        oldest = self._events.popleft()
        oldest.ring = None  # a rendering made for it later no longer counts here
        self.bytes -= oldest.size

    def invalidate(self) -> None:
        """Forget everything: the next resume reads the log and anchors the ring again."""
        self._events.clear()
        self.epoch, self.head, self.bytes = None, 0, 0

    def covers(self, epoch: str, after: int) -> bool:
        """Whether the ring holds every event of ``epoch`` after ``after`` up to its head."""
        return self.epoch is not None and self.epoch == epoch and self.base <= after <= self.head

    def since(self, after: int) -> list[RecentEvent]:
        """The events after ``after`` up to the head (call :meth:`covers` first)."""
        return list(itertools.islice(self._events, max(0, after - self.base), None))
