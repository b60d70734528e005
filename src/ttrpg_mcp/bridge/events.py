"""The durable side of delivery: replay after a reconnect, dedupe of resent requests, retention.

Every campaign event is in the log (``campaign_events``) before anyone receives it, numbered
by a gap-free ``seq`` per campaign, under an ``epoch`` that changes only if the log is reset.
A client that reconnects says which ``seq`` (and epoch) it saw last:

- :func:`plan_replay` returns exactly the events after it, when the log still holds every one
  of them and the epoch matches: the client is *recovered*. When the caller's room already
  holds those events in memory (:mod:`ttrpg_mcp.bridge.recent_events`), the plan only checks
  that memory against the log's head and reads no event;
- otherwise (a gap older than the retained log, another epoch, a ``seq`` from the future) the
  client gets a full snapshot instead and continues from the current ``seq``, and it is told
  which case it was.

A request that changed something leaves its reply in ``request_replies``, written in the same
transaction as the change: a request resent after a reconnect (same user, same ``id``) gets
that reply back and changes nothing a second time (:func:`stored_reply`, :func:`store_reply`).

Retention (:func:`prune`) keeps, per campaign, the newest ``keep`` events and none older than
``max_age``, and forgets request replies older than the dedupe window. Pure database work, no
network I/O: the caller runs it in the store's worker threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge import campaigns
from ttrpg_mcp.bridge.backplane.base import LoggedEvent
from ttrpg_mcp.bridge.store import Campaign, CampaignEvent, RequestReply, utcnow
from ttrpg_mcp.bridge.store.database import affected_rows
from ttrpg_mcp.bridge.store.table_writes import table_writes

if TYPE_CHECKING:
    from sqlalchemy import Table

__all__ = ["Held", "Replay", "plan_replay", "prune", "store_reply", "stored_reply"]


@dataclass(frozen=True)
class Replay:
    """What a reconnecting client gets: the missed events, or the reason it gets a snapshot."""

    recovered: bool
    events: list[LoggedEvent]
    epoch: str
    seq: int
    reason: str | None = None
    # Recovered from the caller's memory: ``events`` is empty, the caller has (last_seq, seq].
    from_memory: bool = False


@dataclass(frozen=True)
class Held:
    """The events a caller holds in memory: every one of ``epoch`` in ``(base, head]``.

    ``exact``: the memory must end at the log's head (one node: the room's lock is held, so
    nothing is committed that the room has not delivered). Without it (a shared backplane) the
    memory ends where this node's delivery is, and the events after it come from the follower.
    """

    epoch: str
    base: int
    head: int
    exact: bool = True


def plan_replay(
    db: Session, campaign_id: str, last_seq: int, epoch: str | None, *, limit: int, held: Held | None = None
) -> Replay:
    """The events after ``last_seq`` if the log holds all of them (at most ``limit``).

    With ``held`` covering them, only the log's epoch and head are read (one primary key row):
    the caller serves the events from memory up to ``held.head`` (``from_memory``).
    """
    current_epoch, current_seq = campaigns.campaign_epoch_and_seq(db, campaign_id)

    def snapshot(reason: str) -> Replay:
        return Replay(False, [], current_epoch, current_seq, reason)

    if epoch is not None and epoch != current_epoch:
        return snapshot("the event log was reset (epoch changed)")
    if last_seq > current_seq:
        return snapshot(f"seq {last_seq} is ahead of the log ({current_seq})")
    missed = current_seq - last_seq
    if missed > limit:
        return snapshot(f"{missed} events missed; more than the replay limit ({limit})")
    if (
        held is not None
        and held.epoch == current_epoch
        and held.base <= last_seq <= held.head
        and (held.head == current_seq if held.exact else held.head <= current_seq)
    ):
        return Replay(True, [], current_epoch, held.head, from_memory=True)
    events = campaigns.logged_since(db, campaign_id, last_seq, limit=missed) if missed else []
    if len(events) != missed or (events and events[0].seq != last_seq + 1):
        return snapshot(f"events after seq {last_seq} are no longer retained")
    return Replay(True, events, current_epoch, current_seq)


def stored_reply(db: Session, user_id: str, request_id: str) -> dict[str, Any] | None:
    """The reply already given to this user's request, if it changed something before."""
    row = db.get(RequestReply, (user_id, request_id))
    return dict(row.reply) if row is not None else None


# Built once per dialect, executed with the values as parameters: building the statement with
# ``.values(...)`` per reply made SQLAlchemy coerce, walk and cache-key it anew each time,
# most of the CPU of storing a relayed tool call's reply.
_REPLIES = cast("Table", RequestReply.__table__)
_STORE_REPLY = {
    "postgresql": pg_insert(_REPLIES).on_conflict_do_nothing(),
    "sqlite": sqlite_insert(_REPLIES).on_conflict_do_nothing(),
}


def store_reply(db: Session, user_id: str, request_id: str, reply: dict[str, Any]) -> None:
    """Remember a reply; a second store of the same request keeps the first (idempotent)."""
    values = {"user_id": user_id, "request_id": request_id, "reply": reply, "created_at": utcnow()}
    writes = table_writes(db)
    if writes is not None:  # in a group commit: written with the batch's other replies
        writes.reply(values)
        return
    statement = _STORE_REPLY.get(db.get_bind().dialect.name, _STORE_REPLY["sqlite"])
    db.execute(statement, values)


def prune(db: Session, *, keep: int, max_age: timedelta, dedupe_window: timedelta) -> dict[str, int]:
    """Apply retention to every campaign's log and to the request replies; counts removed."""
    now = utcnow()
    removed_events = affected_rows(
        db.execute(delete(CampaignEvent).where(CampaignEvent.created_at < now - max_age))
    )
    over = db.execute(
        select(CampaignEvent.campaign_id, func.count())
        .group_by(CampaignEvent.campaign_id)
        .having(func.count() > keep)
    ).all()
    for campaign_id, _count in over:
        removed_events += campaigns.prune_events(db, campaign_id, keep=keep)
    removed_replies = affected_rows(
        db.execute(delete(RequestReply).where(RequestReply.created_at < now - dedupe_window))
    )
    return {"events": removed_events, "request_replies": removed_replies, "campaigns": _count_campaigns(db)}


def _count_campaigns(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(Campaign)) or 0)
