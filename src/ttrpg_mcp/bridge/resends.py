"""Which requests already have a stored reply, known in memory so a new request needs no read.

Every change a client sends may be a resend after a reconnect (see :mod:`.events`), so before
running one the bridge must know whether the store holds a reply for that user and request id.
Almost never does it; asking the database each time costs a transaction and a worker-thread
hop on every dice roll and tool call. :class:`StoredRequests` keeps the keys (never the
replies) of the replies stored since start, plus those still inside the dedupe window at
start, so "not stored" is answered from memory; a key it knows is read from the store as
before, which stays the source of truth for the reply itself.

Memory can only say "not stored" when this process is the store's only writer: SQLite, which
one bridge holds at a time (the data directory lock). On a shared database (PostgreSQL, several
bridges) another node may have stored the reply, so :meth:`StoredRequests.may_hold` is always
true there and every check reads the store. Past ``capacity`` keys the oldest are forgotten,
and for one dedupe window after that every unknown key is read from the store too.

Errs one way only: a key is added before its reply is known to be committed, so a failed write
costs a needless read later, never a change applied twice.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge.store import RequestReply, utcnow

__all__ = ["DEFAULT_CAPACITY", "StoredRequests", "recent_keys"]

# Keys held at most: about 25 MB at the worst (two ids of up to 128 characters each); a busy
# bridge storing 300 changes a second for a whole day's window would pass it, and then reads.
DEFAULT_CAPACITY = 100_000

Key = tuple[str, str]  # (user_id, request_id)


def recent_keys(db: Session, window: timedelta, limit: int) -> list[Key]:
    """The newest ``limit`` (user, request) keys stored within ``window``, oldest first."""
    rows = db.execute(
        select(RequestReply.user_id, RequestReply.request_id)
        .where(RequestReply.created_at >= utcnow() - window)
        .order_by(RequestReply.created_at.desc())
        .limit(limit)
    ).all()
    return [(user_id, request_id) for user_id, request_id in reversed(rows)]


class StoredRequests:
    """The keys of stored replies, in memory; see the module docstring for when it may answer."""

    def __init__(self, *, window: float, sole_writer: bool, capacity: int = DEFAULT_CAPACITY) -> None:
        self._window = window
        self._capacity = capacity
        self._sole_writer = sole_writer
        self._keys: OrderedDict[Key, float] = OrderedDict()
        # Until this monotonic time an unknown key may still be in the store: not loaded yet,
        # or forgotten for room. Infinite until :meth:`load`, and forever on a shared store.
        self._unsure_until = float("inf")

    def load(self, keys: list[Key], *, complete: bool) -> None:
        """The keys found in the store at start (oldest first); ``complete`` if that was all of them."""
        now = time.monotonic()
        for key in keys:
            self._keys[key] = now
        if self._sole_writer:
            self._unsure_until = 0.0 if complete else now + self._window

    def may_hold(self, user_id: str, request_id: str) -> bool:
        """False only when the store certainly holds no reply for this request."""
        return (user_id, request_id) in self._keys or time.monotonic() < self._unsure_until

    def add(self, user_id: str, request_id: str) -> None:
        """A reply for this request is being stored (call before the commit is known to succeed)."""
        now = time.monotonic()
        self._keys[(user_id, request_id)] = now
        self._keys.move_to_end((user_id, request_id))
        horizon = now - self._window
        while self._keys:
            added = next(iter(self._keys.values()))
            if added >= horizon and len(self._keys) <= self._capacity:
                break
            self._keys.popitem(last=False)
            if added >= horizon:  # forgotten for room inside the window: unknown keys may be stored
                self._unsure_until = max(self._unsure_until, now + self._window)

    def __len__(self) -> int:
        return len(self._keys)
