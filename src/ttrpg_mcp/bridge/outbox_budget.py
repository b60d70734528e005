"""How many bytes a connection's outbox holds, so a client that stops reading costs a bounded
amount of memory.

Counting messages alone is not enough: 1,024 canvas strokes of 50 KB are 50 MB for one client
that never reads. Each transport asks :meth:`OutboxBudget.admit` before queueing a message and
calls :meth:`OutboxBudget.release` once the message has left the queue (sent, or dropped when
the connection ends); a message that does not fit means the client is too slow, and it is
disconnected (close 1013) to reconnect and resume from its last ``seq``. One message larger
than the whole budget still goes out when the queue is empty, so no message is undeliverable.

The size is that of the message's compact JSON text, in characters: what the writer is about
to put on the socket, near enough for a memory bound.
"""

from __future__ import annotations

from typing import Any

from ttrpg_mcp.bridge import frames

__all__ = ["OutboxBudget", "encoded_size"]


def encoded_size(message: dict[str, Any]) -> int:
    # The transport's own encoding: a shared or batched frame's JSON is ready-made, not redone.
    return len(frames.encode(message))


class OutboxBudget:
    """The bytes queued for one connection, against its limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.queued = 0
        # One fan-out message object may be queued more than once; sizes are kept per object.
        self._sizes: dict[int, list[int]] = {}

    def admit(self, message: dict[str, Any]) -> bool:
        """Count ``message`` in, or False (nothing counted) when it would overflow the budget."""
        size = encoded_size(message)
        if self.queued and self.queued + size > self.limit:
            return False
        self.queued += size
        self._sizes.setdefault(id(message), []).append(size)
        return True

    def release(self, message: object) -> None:
        """``message`` has left the queue; forget it (a message never admitted is ignored)."""
        sizes = self._sizes.get(id(message))
        if not sizes:
            return
        self.queued -= sizes.pop(0)
        if not sizes:
            del self._sizes[id(message)]
