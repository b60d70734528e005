"""Arrival order for one connection's messages: changes are applied in the order they were sent.

A transport hands each message to the dispatcher in a task of its own, so that a slow MCP tool
call does not hold up a dice roll. Tasks, though, reach the store in whatever order the event
loop and the store's threads let them, and two ``state_update``s or canvas strokes of one
player could land (and be numbered) the wrong way round. So each message takes a
:class:`Turn` from its connection's :class:`ArrivalOrder` the moment it is read, in the
reading task, before anything awaits. The dispatcher waits for the turn before it looks at the
message, and gives the turn up

* at once, once parsed, when the message only reads or goes to the MCP server (tool calls,
  discovery, resources, prompts, heartbeats): those may run side by side;
* when it is done, for everything else: a change is applied, numbered and answered before the
  next message of the same connection starts.

Releasing is idempotent and may happen in any order; a turn released before it came up (its
task was cancelled, say) is skipped when it does. Waiting for a turn is cancellable and holds
nothing, so a closing connection never leaves a turn held.
"""

from __future__ import annotations

import anyio

__all__ = ["ArrivalOrder", "Turn", "unordered"]


class ArrivalOrder:
    """Hands out turns in arrival order; a turn comes up once every earlier one is released."""

    def __init__(self) -> None:
        self._issued = 0
        self._current = 0  # the lowest turn not yet released
        self._released: set[int] = set()
        self._waiting: dict[int, anyio.Event] = {}

    def take(self) -> Turn:
        """The next turn; call it where messages are read, before any ``await``."""
        turn = Turn(self, self._issued)
        self._issued += 1
        return turn

    @property
    def pending(self) -> int:
        """Turns handed out and not yet released."""
        return self._issued - self._current - len(self._released)

    async def _wait(self, number: int) -> None:
        if number <= self._current:
            return
        event = self._waiting.setdefault(number, anyio.Event())
        await event.wait()

    def _release(self, number: int) -> None:
        if number < self._current or number in self._released:
            return
        self._released.add(number)
        skipped = self._waiting.pop(number, None)
        if skipped is not None:  # released while waiting (cancelled): nobody is left to wake
            skipped.set()
        while self._current in self._released:
            self._released.discard(self._current)
            self._current += 1
        event = self._waiting.pop(self._current, None)
        if event is not None:
            event.set()


class Turn:
    """One message's place in its connection's order."""

    __slots__ = ("_number", "_order", "released")

    def __init__(self, order: ArrivalOrder, number: int) -> None:
        self._order = order
        self._number = number
        self.released = False

    async def wait(self) -> None:
        """Return once every message read before this one has released its turn."""
        if not self.released:
            await self._order._wait(self._number)  # the two classes are one unit

    def release(self) -> None:
        """Let the next message go; safe to call more than once."""
        if not self.released:
            self.released = True
            self._order._release(self._number)


def unordered() -> Turn:
    """A turn that is already up, for a message that belongs to no sequence (a one-off POST)."""
    return ArrivalOrder().take()
