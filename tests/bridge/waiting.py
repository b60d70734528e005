"""Waiting on a condition with a deadline, for tests against real processes.

A test never sleeps a fixed time to let something happen: it asks again every ``POLL`` seconds
until the condition holds, and fails with what it last saw when the deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

__all__ = ["POLL", "eventually", "wait_until"]

T = TypeVar("T")

POLL = 0.05
DEADLINE = 60.0


def wait_until(condition: Callable[[], T], what: str, deadline: float = DEADLINE) -> T:
    """The first truthy value of ``condition()``; AssertionError naming ``what`` at the deadline."""
    end = time.monotonic() + deadline
    while not (value := condition()):
        if time.monotonic() > end:  # a deadline against a hang, not a speed check
            raise AssertionError(f"not within {deadline} s: {what}")
        time.sleep(POLL)
    return value


async def eventually(condition: Callable[[], Awaitable[T]], what: str, deadline: float = DEADLINE) -> T:
    """:func:`wait_until` for a condition that must be awaited (an HTTP call), without blocking the loop."""
    end = time.monotonic() + deadline
    while not (value := await condition()):
        if time.monotonic() > end:  # a deadline against a hang, not a speed check
            raise AssertionError(f"not within {deadline} s: {what}")
        await anyio.sleep(POLL)
    return value
