"""The change feed's writing side: every write to campaign content records a change with it.

One SQLAlchemy ``before_flush`` hook on the write sessions looks at what the flush is about to
insert, update or delete and adds a :class:`~ttrpg_mcp.server.store.models.ContentChange` row
for each campaign entity among them, in the same flush and so in the same transaction: a
change is never committed without its record, nor the reverse, whichever code path (a tool,
a rollback, a future importer) made it. Several flushes of one transaction that touch the same
entity share one record, so a follower sees one change per entity per commit.

Change ids are what the bridge follows (``id > last``), so they must be committed in the order
they are given. SQLite's single writer does that by itself; on PostgreSQL, where writers run
side by side, a transaction that records a change first takes an advisory lock (held to its
commit), so a change with a smaller id is never committed after one with a larger id.

Who made the change comes from :func:`acting_as`, a context variable the MCP server sets for
each request from its ``_meta`` (the bridge passes the table user there); without it the
actor is ``local``: a stdio client such as Claude Desktop, the local GM.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from ttrpg_mcp.postgres import advisory_xact_lock, is_postgres
from ttrpg_mcp.server.store.models import (
    Campaign,
    Character,
    ContentChange,
    Item,
    Location,
    Note,
    Npc,
    PlaySession,
    RollLogEntry,
)

__all__ = [
    "CHANGE_LOG_KEEP",
    "LOCAL",
    "Actor",
    "acting_as",
    "current_actor",
    "entity_kind",
    "prune_changes",
    "track_changes",
]

# Changes kept in the log: hours of the busiest table for a follower that was away. Older ones
# go, except each entity's newest, which carries its version.
CHANGE_LOG_KEEP = 100_000


@dataclass(frozen=True)
class Actor:
    """Who is writing: a bridge user (with their role at the table) or the local stdio client."""

    user: str = "local"
    role: str = "gm"


LOCAL = Actor()
_ACTOR: ContextVar[Actor] = ContextVar("content_actor", default=LOCAL)
_PENDING = "content_changes"
_ORDER_LOCK = "ttrpg_content_changes"

_KINDS: dict[type[Any], str] = {
    Campaign: "campaign",
    Character: "character",
    Npc: "npc",
    Location: "location",
    Item: "item",
    Note: "note",
    PlaySession: "play_session",
    RollLogEntry: "roll",
}


def current_actor() -> Actor:
    return _ACTOR.get()


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Attribute the writes made inside the block (worker threads inherit it) to ``actor``."""
    token = _ACTOR.set(actor)
    try:
        yield actor
    finally:
        _ACTOR.reset(token)


def entity_kind(instance: object) -> str | None:
    """The change-log kind of an ORM object, or None for what is not campaign content."""
    return _KINDS.get(type(instance))


def _next_version(session: Session, kind: str, entity_id: str) -> int:
    with session.no_autoflush:
        last = session.scalar(
            select(func.max(ContentChange.version)).where(
                ContentChange.entity_id == entity_id, ContentChange.entity_kind == kind
            )
        )
    return (last or 0) + 1


def _record(session: Session, _context: Any, _instances: Any) -> None:
    pending: dict[tuple[str, str], ContentChange] = session.info.setdefault(_PENDING, {})
    actor = current_actor()
    batches = (("created", session.new), ("updated", session.dirty), ("deleted", session.deleted))
    for operation, objects in batches:
        for instance in list(objects):
            kind = entity_kind(instance)
            if kind is None:
                continue
            if operation == "updated" and not session.is_modified(instance):
                continue
            entity_id = str(instance.id)
            campaign_id = entity_id if kind == "campaign" else str(instance.campaign_id)
            known = pending.get((kind, entity_id))
            if known is not None:
                # Another flush of the same transaction: one record per entity per commit.
                if operation == "deleted":
                    known.operation = "deleted"
                if kind == "campaign":
                    known.version = instance.version
                continue
            if kind == "campaign":
                version = int(instance.version or 1)
            elif operation == "created":
                version = 1
            else:
                version = _next_version(session, kind, entity_id)
            if not pending and is_postgres(session):
                advisory_xact_lock(session, _ORDER_LOCK)  # ids commit in the order given
            change = ContentChange(
                campaign_id=campaign_id,
                entity_kind=kind,
                entity_id=entity_id,
                version=version,
                operation=operation,
                actor=actor.user[:100],
                actor_role=actor.role[:20],
            )
            session.add(change)
            pending[(kind, entity_id)] = change


def _forget(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def track_changes(sessions: sessionmaker[Session]) -> None:
    """Record a change for every write made through ``sessions``."""
    event.listen(sessions, "before_flush", _record)
    event.listen(sessions, "after_transaction_end", _forget)


def prune_changes(db: Session, keep: int = CHANGE_LOG_KEEP) -> int:
    """Delete all but the newest ``keep`` changes (each entity's newest stays); how many went."""
    newest = db.scalar(select(func.max(ContentChange.id))) or 0
    latest = select(func.max(ContentChange.id)).group_by(ContentChange.entity_kind, ContentChange.entity_id)
    result = db.execute(
        delete(ContentChange).where(ContentChange.id <= newest - keep, ContentChange.id.not_in(latest))
    )
    return int(getattr(result, "rowcount", 0) or 0)
