"""Group commit: the changes that arrive while one transaction runs share the next one.

At a busy table many small changes arrive at once (twenty players rolling, a burst of tool
calls), and each used to pay for its own transaction: SQLite's write lock, a commit, a worker
thread hop. :class:`GroupCommit` queues each change (a *unit*: a function of the session) and
one flusher runs everything queued so far in a single transaction, each unit inside its own
savepoint so that a unit that raises undoes only itself and fails only its caller. After the
commit, and only then, each unit's ``after`` step runs in queue order (a room delivers its
events there), so nothing is sent before it is stored and a room's events go out in the order
their ``seq`` was given. A flusher that finds the queue empty ends; the next unit starts one.
When the commit itself fails, every unit of that batch fails with the error and nothing of it
is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["GroupCommit"]

T = TypeVar("T")

Run = Callable[[Callable[["Session"], Any]], Awaitable[Any]]
Guard = Callable[[], contextlib.AbstractAsyncContextManager[Any]]


@dataclass
class _Queued(Generic[T]):
    unit: Callable[[Session], T]
    after: Callable[[T], Awaitable[None]] | None
    result: asyncio.Future[T]


def _attempt(db: Session, unit: Callable[[Session], Any], alone: bool) -> tuple[bool, Any]:
    """Run one unit; in a batch, inside a savepoint so that its failure undoes only itself.

    A unit alone raises straight through: its transaction rolls back whole, as it always did.
    """
    if alone:
        return True, unit(db)
    try:
        with db.begin_nested():
            return True, unit(db)
    except Exception as error:
        return False, error


class GroupCommit:
    """Units queued while a transaction runs are committed together in the next one."""

    def __init__(self, run: Run, guard: Guard | None = None) -> None:
        self._run = run  # runs a function of the session as one committed transaction
        self._guard = guard or contextlib.nullcontext  # held around a batch and its after steps
        self._queue: list[_Queued[Any]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(
        self, unit: Callable[[Session], T], after: Callable[[T], Awaitable[None]] | None = None
    ) -> T:
        """``unit``'s result once it is committed and its ``after`` step has run."""
        result: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(unit, after, result))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await result

    async def _flush(self) -> None:
        while self._queue:
            # A caller cancelled before its batch started has its change dropped, as before.
            batch = [queued for queued in self._queue if not queued.result.cancelled()]
            self._queue = []
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[_Queued[Any]]) -> None:
        alone = len(batch) == 1
        async with self._guard():
            try:
                outcomes = await self._run(lambda db: [_attempt(db, q.unit, alone) for q in batch])
            except Exception as error:  # rolled back (a lone unit raised, or the commit failed)
                for queued in batch:
                    if not queued.result.done():
                        queued.result.set_exception(error)
                return
            for queued, (ok, value) in zip(batch, outcomes, strict=True):
                if not ok:
                    if not queued.result.done():
                        queued.result.set_exception(value)
                    continue
                if queued.after is not None:
                    try:
                        await queued.after(value)
                    except Exception as error:  # stored, but its delivery failed: say so
                        if not queued.result.done():
                            queued.result.set_exception(error)
                        continue
                if not queued.result.done():
                    queued.result.set_result(value)
