"""The fan-out bench's python-socketio peer: a roll one seat sends reaches every seat of the room, once.

The peer runs as the bench runs it (its own process, python-socketio under uvicorn) and the
seats connect with the bench's own client, so a bench row of this peer measures a working room.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))

from socketio_peer import running_peer, seats_at  # bench/ is not a package

SEATS = 3


async def _rolls_seen(url: str) -> list[str]:
    seen: list[str] = []
    every_seat_has_the_marker = asyncio.Event()

    def on_roll(purpose: str) -> None:
        seen.append(purpose)
        if seen.count("marker") == SEATS:
            every_seat_has_the_marker.set()

    async with seats_at(url, SEATS, on_roll) as send:
        await send(1, "roll")
        await send(2, "marker")  # sent later: once every seat has it, a duplicate would be in
        async with asyncio.timeout(60):
            await every_seat_has_the_marker.wait()
    return seen


def test_a_roll_reaches_every_seat_in_the_room_once() -> None:
    with running_peer() as url:
        seen = asyncio.run(_rolls_seen(url))
    assert seen.count("roll") == SEATS
    assert seen.count("marker") == SEATS
    assert len(seen) == 2 * SEATS
