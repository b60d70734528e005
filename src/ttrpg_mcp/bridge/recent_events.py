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
anyway), so memory per room stays bounded.

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

from ttrpg_mcp.bridge import frames

__all__ = ["RecentEvent", "RecentEvents"]

Body = tuple[dict[str, Any], str]  # a rendered body (no id, no session_id) and its JSON


class RecentEvent:
    """One logged event of the room, and its rendering per visibility class once made."""

    __slots__ = ("data", "seq", "type", "views")

    def __init__(self, seq: int, type: str, data: dict[str, Any]) -> None:
        self.seq = seq
        self.type = type
        self.data = data
        self.views: dict[object, Body] = {}

    def view(self, key: object, render: Callable[[], dict[str, Any]]) -> Body:
        """The body a viewer of class ``key`` gets, rendered and encoded on first use only."""
        body = self.views.get(key)
        if body is None:
            rendered = render()
            body = self.views[key] = (rendered, frames.encode_body(rendered))
        return body


class RecentEvents:
    """The newest logged events of one room, gap-free, at most ``capacity`` of them."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(0, capacity)
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
        self.epoch, self.head = epoch, head
        held = [RecentEvent(seq, kind, data) for seq, kind, data in events]
        gap_free = all(b.seq == a.seq + 1 for a, b in itertools.pairwise(held))
        if held and held[-1].seq == head and gap_free:
            self._events.extend(held[-self.capacity :] if self.capacity else [])

    def append(self, seq: int, type: str, data: dict[str, Any]) -> None:
        """The room delivered its next event; anything but ``head + 1`` empties the ring."""
        if self.epoch is None:
            return
        if seq != self.head + 1:
            self.invalidate()
            return
        self.head = seq
        if self.capacity:
            self._events.append(RecentEvent(seq, type, data))
            if len(self._events) > self.capacity:
                self._events.popleft()

    def invalidate(self) -> None:
        """Forget everything: the next resume reads the log and anchors the ring again."""
        self._events.clear()
        self.epoch, self.head = None, 0

    def covers(self, epoch: str, after: int) -> bool:
        """Whether the ring holds every event of ``epoch`` after ``after`` up to its head."""
        return self.epoch is not None and self.epoch == epoch and self.base <= after <= self.head

    def since(self, after: int) -> list[RecentEvent]:
        """The events after ``after`` up to the head (call :meth:`covers` first)."""
        return list(itertools.islice(self._events, max(0, after - self.base), None))
