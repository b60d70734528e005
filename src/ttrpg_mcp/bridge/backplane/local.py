"""The backplane of one self-contained node: the room delivers its own events in-process.

Nothing crosses a process boundary, so there is nothing to publish, follow or expire: the room
hands each event to its seats while it still holds its lock (see ``Rooms.commit``).
"""

from __future__ import annotations

from typing import Any

from ttrpg_mcp.bridge.backplane.base import Backfill, Deliver, LoggedEvent, Reap

__all__ = ["LocalBackplane"]


class LocalBackplane:
    """In-process fan-out: every method is a no-op, and presence is the room's own."""

    shared = False

    async def start(self, deliver: Deliver, backfill: Backfill, reap: Reap) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, campaign_id: str, epoch: str, events: list[LoggedEvent]) -> None:
        return None

    def follow(self, campaign_id: str, epoch: str, after_seq: int) -> None:
        return None

    def unfollow(self, campaign_id: str) -> None:
        return None

    async def set_presence(self, campaign_id: str, seat_id: str, view: dict[str, Any] | None) -> None:
        return None

    async def participants(self, campaign_id: str) -> list[dict[str, Any]] | None:
        return None

    def problem(self) -> str | None:
        return None
