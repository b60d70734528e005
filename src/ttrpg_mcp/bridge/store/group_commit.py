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

The rows of table changes (events, dice log, stored replies, audit entries) are not written by
each unit as it runs but collected (:mod:`.table_writes`) and written once the batch's units
have run, one statement per table. A unit queued with ``isolate=False`` promises to write only
that way (it may read): it runs without a savepoint, and if it raises, what it collected is
dropped, so it still fails alone. Other units keep their savepoint. Should the database
refuse one of the collected rows (a constraint), the batch is run again one unit per
transaction, so that only the unit it belongs to fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy.exc import DataError, IntegrityError

from ttrpg_mcp.bridge.store.table_writes import TableWrites

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["GroupCommit"]

T = TypeVar("T")

Run = Callable[[Callable[["Session"], Any]], Awaitable[Any]]
Guard = Callable[[], contextlib.AbstractAsyncContextManager[Any]]
Begin = Callable[[TableWrites], None]


@dataclass
class _Queued(Generic[T]):
    unit: Callable[[Session], T]
    after: Callable[[T], Awaitable[None]] | None
    result: asyncio.Future[T]
    isolate: bool = True


def _attempt(db: Session, writes: TableWrites, queued: _Queued[Any], alone: bool) -> tuple[bool, Any]:
    """Run one unit so that its failure undoes only itself.

    A unit alone raises straight through: its transaction rolls back whole, as it always did.
    In a batch, a unit that may write at the database runs in a savepoint; one that only
    collects rows (``isolate=False``) needs none: its collected rows are dropped.
    """
    if alone:
        return True, queued.unit(db)
    mark = writes.mark()
    try:
        if not queued.isolate:
            return True, queued.unit(db)
        with db.begin_nested():
            return True, queued.unit(db)
    except Exception as error:
        writes.undo(mark)
        return False, error


class GroupCommit:
    """Units queued while a transaction runs are committed together in the next one."""

    def __init__(
        self,
        run: Run,
        guard: Guard | None = None,
        begin: Begin | None = None,
    ) -> None:
        self._run = run  # runs a function of the session as one committed transaction
        self._guard = guard or contextlib.nullcontext  # held around a batch and its after steps
        # Run first in each batch's transaction, outside the savepoints (a room locks its log).
        self._begin = begin
        self._queue: list[_Queued[Any]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(
        self,
        unit: Callable[[Session], T],
        after: Callable[[T], Awaitable[None]] | None = None,
        *,
        isolate: bool = True,
    ) -> T:
        """``unit``'s result once it is committed and its ``after`` step has run.

        ``isolate=False``: the unit writes only through :func:`.table_writes.table_writes`
        (it may read), so it needs no savepoint of its own.
        """
        result: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(unit, after, result, isolate))
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
        async with self._guard():
            try:
                outcomes = await self._run(functools.partial(self._transaction, batch))
            except (IntegrityError, DataError):
                if len(batch) == 1:
                    raise
                # A collected row the database refuses (a constraint) fails the batch's
                # statement: run each unit again alone, so that it fails alone.
                outcomes = [await self._alone(queued) for queued in batch]
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

    async def _alone(self, queued: _Queued[Any]) -> tuple[bool, Any]:
        """One unit in a transaction of its own: its result, or what it failed with."""
        try:
            outcomes: list[tuple[bool, Any]] = await self._run(functools.partial(self._transaction, [queued]))
        except Exception as error:
            return False, error
        return outcomes[0]

    def _transaction(self, batch: list[_Queued[Any]], db: Session) -> list[tuple[bool, Any]]:
        """The batch's units, then their collected rows: one statement per table."""
        with TableWrites(db, expected=len(batch)) as writes:
            if self._begin is not None:
                self._begin(writes)
            outcomes = [_attempt(db, writes, queued, len(batch) == 1) for queued in batch]
            writes.flush()
        return outcomes
