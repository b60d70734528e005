"""What the rooms need of a backplane: how a logged campaign event reaches every seat.

A campaign event is first committed to the bridge's SQL store, which gives it its ``seq`` (the
campaign row's counter, bumped in the same transaction, so ``seq`` is gap-free per campaign on
every node that shares the store). The backplane then carries it to the seats:

- :class:`~ttrpg_mcp.bridge.backplane.local.LocalBackplane` (one self-contained node): nothing to
  carry, the room delivers the event itself while it still holds its lock (``shared`` is False);
- :class:`~ttrpg_mcp.bridge.backplane.redis_bus.RedisBackplane` (several nodes): the event goes
  into the campaign's Redis stream and every node that has seats at that table reads it back
  from there and delivers it (``shared`` is True), along with presence kept under TTLs.

The SQL event log stays the record: the streams are the fast, recent path, and a node that finds
a gap in a stream (an event whose node died before publishing it, or a Redis that restarted
empty) takes the missing events from SQL. Pure types: no I/O here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Backfill", "Backplane", "Deliver", "LoggedEvent", "Reap"]


@dataclass(frozen=True)
class LoggedEvent:
    """A campaign event as committed: its ``seq``, its type and its payload."""

    seq: int
    type: str
    data: dict[str, Any]


# Hand events (in ``seq`` order, each once) to this node's seats at a campaign's table.
Deliver = Callable[[str, list[LoggedEvent]], Awaitable[None]]
# The committed events of a campaign after a ``seq`` (at most ``limit``), from the SQL record.
Backfill = Callable[[str, int, int], Awaitable[list[LoggedEvent]]]
# Users whose every seat was on dead nodes, per campaign: the rooms announce that they left.
Reap = Callable[[str, list[dict[str, Any]]], Awaitable[None]]


class Backplane(Protocol):
    """Fan-out of committed campaign events, and who sits at which table, across nodes."""

    @property
    def shared(self) -> bool:
        """True when events reach the seats through the backplane rather than in-process."""
        ...

    async def start(self, deliver: Deliver, backfill: Backfill, reap: Reap) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, campaign_id: str, epoch: str, events: list[LoggedEvent]) -> None:
        """Carry committed events of the log ``epoch`` to every node following it (never raises)."""
        ...

    def follow(self, campaign_id: str, epoch: str, after_seq: int) -> None:
        """Start delivering the campaign's events after ``after_seq`` to this node's seats."""
        ...

    def unfollow(self, campaign_id: str) -> None: ...

    async def set_presence(self, campaign_id: str, seat_id: str, view: dict[str, Any] | None) -> None:
        """One seat of this node at a table: a person or an agent (None: the seat left)."""
        ...

    async def participants(self, campaign_id: str) -> list[dict[str, Any]] | None:
        """Everyone seated at the table on a live node, or None when only this node knows."""
        ...

    def problem(self) -> str | None:
        """Why the backplane is not working right now (for ``/readyz``), or None."""
        ...
