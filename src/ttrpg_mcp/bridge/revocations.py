"""The revocation ledger: withdrawals reach every bridge node's live connections and seats.

A revoked API key or agent authorization, a disabled or deleted account, an agent a GM took
from the table, a member removed (or given another role) must not keep an open WebSocket, SSE
stream or MCP session on any node, whoever withdrew it: the HTTP API on this node or on
another, or ``ttrpg-bridge`` on the command line while a bridge serves the same store. Each
withdrawal appends a :class:`Revocation` row in the same transaction as the withdrawal itself
(:func:`record`, called by the functions that revoke, disable, delete and remove);
:class:`RevocationFollower` on every node polls the newest id, as the content feed does, and
hands each new row to the node, which applies it to its own connections: it closes those of a
key, a user or an agent seat (1008, with the row's reason) and re-reads the membership of a
member's seats (a removed member leaves the table, a new role applies at once). One
mechanism for every node, the one that took the request included; that node also applies the
withdrawal at once, so its own people do not wait for the next poll.

The subject is a digest of ``key:ID``, ``user:ID``, ``seat:CAMPAIGN:SEAT`` or
``member:CAMPAIGN:USER``, compared with the digests of the live connections' ids, so a deleted
account's id is not left in the ledger; rows are pruned after :data:`KEEP_FOR` (a node that was
down longer has no connection left to close anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
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
    "AGENT_REMOVED",
    "AGENT_REVOKED",
    "KEEP_FOR",
    "KEY_REVOKED",
    "MEMBERSHIP_CHANGED",
    "POLL_INTERVAL",
    "Apply",
    "RevocationFollower",
    "key_subject",
    "member_subject",
    "prune",
    "record",
    "seat_subject",
    "user_subject",
]

log = structlog.get_logger("ttrpg_mcp.bridge.revocations")

KEY_REVOKED = "the API key was revoked"
ACCOUNT_DELETED = "the account was deleted"
ACCOUNT_DISABLED = "the account was disabled"
AGENT_REVOKED = "the agent's authorization was revoked"
AGENT_REMOVED = "a GM took this agent from the table"
MEMBERSHIP_CHANGED = "the membership changed"

# A quarter second: a withdrawn credential's connections close well within a second on every
# node, for one indexed max(id) read four times a second.
POLL_INTERVAL = 0.25
KEEP_FOR = timedelta(hours=1)

# Applies one withdrawal (subject digest, reason) to this node's connections; returns how many.
Apply = Callable[[str, str], Awaitable[int]]


def key_subject(key_id: str) -> str:
    return secret_digest(f"key:{key_id}")


def user_subject(user_id: str) -> str:
    return secret_digest(f"user:{user_id}")


def seat_subject(campaign_id: str, seat_id: str) -> str:
    """One seat at one table (an agent's): its sessions close, wherever they are."""
    return secret_digest(f"seat:{campaign_id}:{seat_id}")


def member_subject(campaign_id: str, user_id: str) -> str:
    """A membership that changed: the member's seats at that table take their new role or leave."""
    return secret_digest(f"member:{campaign_id}:{user_id}")


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
    """Polls the ledger's newest id; on news, applies each row to this node's connections."""

    def __init__(self, store: BridgeStore, apply: Apply, interval: float = POLL_INTERVAL) -> None:
        self._store = store
        self._apply = apply
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
        """Handle every row past the last one seen; returns how many connections it touched."""
        if await self._store.run(_newest, readonly=True) <= self._seen:
            return 0
        cut = 0
        rows = await self._store.run(lambda db: _after(db, self._seen), readonly=True)
        for row_id, subject, reason in rows:
            try:
                cut += await self._apply(subject, reason)
            except Exception:  # one row that cannot be applied must not hold back the rows after it
                log.exception("revocation_apply_failed")
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
