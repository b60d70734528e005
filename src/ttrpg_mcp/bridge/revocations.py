"""The revocation ledger: withdrawn keys and accounts reach every bridge node's live connections.

A revoked API key, a disabled or deleted account must not keep an open WebSocket or SSE stream,
whoever withdrew it: the HTTP API on this node or on another, or ``ttrpg-bridge`` on the command
line while a bridge serves the same store. Each withdrawal appends a :class:`Revocation` row in
the same transaction as the withdrawal itself (:func:`record`, called by the functions that
revoke, disable and delete); :class:`RevocationFollower` on every node polls the newest id, as
the content feed does, and closes the matching connections of its own node with the code and
message an HTTP revoke uses. No pid, no signal: it works wherever the store is shared.

The subject is a digest of ``key:ID`` or ``user:ID``, compared with the digests of the live
connections' ids, so a deleted account's id is not left in the ledger; rows are pruned after
:data:`KEEP_FOR` (a node that was down longer has no connection left to close anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import delete, func, select

from ttrpg_mcp.bridge.auth.digests import secret_digest
from ttrpg_mcp.bridge.store.database import affected_rows
from ttrpg_mcp.bridge.store.models import Revocation, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ttrpg_mcp.bridge.store import BridgeStore

__all__ = [
    "ACCOUNT_DELETED",
    "ACCOUNT_DISABLED",
    "KEEP_FOR",
    "KEY_REVOKED",
    "POLL_INTERVAL",
    "RevocationFollower",
    "key_subject",
    "prune",
    "record",
    "user_subject",
]

log = structlog.get_logger("ttrpg_mcp.bridge.revocations")

KEY_REVOKED = "the API key was revoked"
ACCOUNT_DELETED = "the account was deleted"
ACCOUNT_DISABLED = "the account was disabled"

# A quarter second: a withdrawn credential's connections close well within a second on every
# node, for one indexed max(id) read four times a second.
POLL_INTERVAL = 0.25
KEEP_FOR = timedelta(hours=1)

# Closes the live connections whose subject digest is given; returns how many.
Cutter = Callable[[str, str], int]


def key_subject(key_id: str) -> str:
    return secret_digest(f"key:{key_id}")


def user_subject(user_id: str) -> str:
    return secret_digest(f"user:{user_id}")


def record(db: Session, subject: str, reason: str) -> None:
    """Add one withdrawal to the ledger, in the caller's transaction."""
    db.add(Revocation(subject_digest=subject, reason=reason))


def prune(db: Session, keep_for: timedelta = KEEP_FOR) -> int:
    """Forget withdrawals older than ``keep_for``; returns how many."""
    return affected_rows(db.execute(delete(Revocation).where(Revocation.created_at < utcnow() - keep_for)))


def _newest(db: Session) -> int:
    return int(db.scalar(select(func.max(Revocation.id))) or 0)


def _after(db: Session, after: int) -> list[tuple[int, str, str]]:
    rows = db.execute(
        select(Revocation.id, Revocation.subject_digest, Revocation.reason)
        .where(Revocation.id > after)
        .order_by(Revocation.id)
    )
    return [(row.id, row.subject_digest, row.reason) for row in rows]


class RevocationFollower:
    """Polls the ledger's newest id; on news, closes this node's matching connections."""

    def __init__(self, store: BridgeStore, cut: Cutter, interval: float = POLL_INTERVAL) -> None:
        self._store = store
        self._cut = cut
        self._interval = interval
        self._seen = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin after the newest row: connections opened from now on were never withdrawn."""
        self._seen = await self._store.run(_newest, readonly=True)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="revocation-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def step(self) -> int:
        """Handle every row past the last one seen; returns how many connections closed."""
        if await self._store.run(_newest, readonly=True) <= self._seen:
            return 0
        cut = 0
        rows = await self._store.run(lambda db: _after(db, self._seen), readonly=True)
        for row_id, subject, reason in rows:
            cut += self._cut(subject, reason)
            self._seen = row_id
        return cut

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                await self.step()
                failing = False
            except Exception:  # a store that cannot answer now is asked again at the next poll
                if not failing:  # once per outage, not four times a second
                    log.exception("revocation_poll_failed")
                failing = True
            await asyncio.sleep(self._interval)
