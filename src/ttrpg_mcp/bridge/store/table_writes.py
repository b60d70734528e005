"""A batch's table writes: held while its changes run, then written with one statement per table.

A group commit (:mod:`.group_commit`) runs many table changes in one transaction. Each change
used to write its own rows as it ran: a dice log insert and its trim, an ``UPDATE`` of the
campaign's ``last_seq`` and an insert per event, its stored reply and its audit entry, each in
a savepoint of its own. Here they are collected instead (:class:`TableWrites`) and written when
the batch's changes have all run: one ``executemany`` per table, the batch's ``seq`` range with
one ``UPDATE`` per campaign, the dice log trimmed once per campaign. A change that raises has
its collected rows dropped (:meth:`TableWrites.mark`, :meth:`TableWrites.undo`), so it fails
alone without a savepoint when it wrote nothing else.

What a change needs back at once is assigned here without a statement: an event's ``seq``
comes from the campaign's ``last_seq`` read (and on PostgreSQL locked) once per batch; a
roll's id from a block of ids taken once per batch (``max(id)`` under SQLite's write lock, the
table's sequence on PostgreSQL). Outside a group commit (:func:`table_writes` is ``None``)
callers write at once, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge.store.models import (
    AuditEntry,
    Campaign,
    CampaignEvent,
    DiceLogEntry,
    RequestReply,
)

__all__ = ["CampaignLog", "Mark", "TableWrites", "table_writes", "trim_rolls"]

_KEY = "ttrpg_table_writes"  # where a batch's writes hang on its session (Session.info)
_EVENTS = cast("Table", CampaignEvent.__table__)
_DICE_LOG = cast("Table", DiceLogEntry.__table__)
_AUDIT = cast("Table", AuditEntry.__table__)
_INSERT_EVENTS = insert(_EVENTS)
_INSERT_ROLLS = insert(_DICE_LOG)
_INSERT_AUDIT = insert(_AUDIT)
_REPLY_TABLE = cast("Table", RequestReply.__table__)
_REPLIES = {  # a resend's reply stored twice keeps the first, as events.store_reply does
    "postgresql": pg_insert(_REPLY_TABLE).on_conflict_do_nothing(),
    "sqlite": sqlite_insert(_REPLY_TABLE).on_conflict_do_nothing(),
}
_NEXT_ROLL_IDS = text("SELECT nextval(pg_get_serial_sequence('dice_log', 'id')) FROM generate_series(1, :n)")


def table_writes(db: Session) -> TableWrites | None:
    """The writes of the group commit ``db`` runs, or ``None`` outside one (write at once)."""
    return cast("TableWrites | None", db.info.get(_KEY))


@dataclass
class CampaignLog:
    """A campaign's event log as this batch sees it: its epoch, and the last ``seq`` given."""

    epoch: str
    stored_seq: int  # last_seq as read at the batch's start
    last_seq: int  # the newest seq given to an event of this batch


@dataclass(frozen=True)
class Mark:
    """How much had been collected before a change ran: :meth:`TableWrites.undo` goes back to it."""

    events: int
    rolls: int
    replies: int
    audit: int
    seqs: dict[str, int]
    roll_ids: int


@dataclass
class TableWrites:
    """The rows a batch of table changes writes, collected in order and written by :meth:`flush`."""

    db: Session
    expected: int = 1  # changes in the batch: how many roll ids to take at once
    events: list[dict[str, Any]] = field(default_factory=list)
    rolls: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[str, CampaignLog | None] = field(default_factory=dict)
    keep_rolls: dict[str, int] = field(default_factory=dict)  # campaign -> rolls its log keeps
    _roll_ids: list[int] = field(default_factory=list)
    _roll_ids_used: int = 0
    _next_sqlite_id: int | None = None

    def __enter__(self) -> TableWrites:
        self.db.info[_KEY] = self
        return self

    def __exit__(self, *_exc: object) -> None:
        self.db.info.pop(_KEY, None)

    # -- a change's undo ------------------------------------------------------------------------

    def mark(self) -> Mark:
        return Mark(
            len(self.events),
            len(self.rolls),
            len(self.replies),
            len(self.audit),
            {campaign: log.last_seq for campaign, log in self.logs.items() if log is not None},
            self._roll_ids_used,
        )

    def undo(self, mark: Mark) -> None:
        """Drop what a failed change collected; its seqs go to the next change (no gap)."""
        del self.events[mark.events :]
        del self.rolls[mark.rolls :]
        del self.replies[mark.replies :]
        del self.audit[mark.audit :]
        for campaign, log in self.logs.items():
            if log is not None:
                log.last_seq = mark.seqs.get(campaign, log.stored_seq)
        # Roll ids need no such care: a failed change's id is skipped, as a rolled back insert's.

    # -- what a change writes -------------------------------------------------------------------

    def lock_log(self, campaign_id: str) -> CampaignLog | None:
        """The campaign's log, read once per batch and locked (PostgreSQL) until it commits.

        Called at the start of a batch, outside any change's savepoint: a row lock taken in a
        savepoint that is rolled back would be let go.
        """
        if campaign_id not in self.logs:
            row = self.db.execute(
                select(Campaign.epoch, Campaign.last_seq).where(Campaign.id == campaign_id).with_for_update()
            ).one_or_none()
            self.logs[campaign_id] = None if row is None else CampaignLog(row[0], row[1], row[1])
        return self.logs[campaign_id]

    def event(self, values: dict[str, Any]) -> tuple[int, str] | None:
        """Give an event (its row's values but ``seq`` and ``epoch``) the next seq; None: no campaign."""
        log = self.lock_log(values["campaign_id"])
        if log is None:
            return None
        log.last_seq += 1
        self.events.append(values | {"seq": log.last_seq, "epoch": log.epoch})
        return log.last_seq, log.epoch

    def roll(self, values: dict[str, Any], *, keep: int) -> int:
        """Collect a dice log row (its campaign's log keeps the newest ``keep``); its id.

        The id comes from this batch's block of ids; the log is trimmed once, at the flush.
        """
        self.keep_rolls[values["campaign_id"]] = keep
        entry_id = self._roll_id()
        self.rolls.append(values | {"id": entry_id})
        return entry_id

    def reply(self, values: dict[str, Any]) -> None:
        self.replies.append(values)

    def audit_entry(self, values: dict[str, Any]) -> None:
        self.audit.append(values)

    def _roll_id(self) -> int:
        if self.db.get_bind().dialect.name == "postgresql":
            if self._roll_ids_used == len(self._roll_ids):
                wanted = max(1, self.expected - self._roll_ids_used)
                self._roll_ids.extend(self.db.scalars(_NEXT_ROLL_IDS, {"n": wanted}))
            self._roll_ids_used += 1
            return self._roll_ids[self._roll_ids_used - 1]
        if self._next_sqlite_id is None:  # the file's write lock is held: nobody else inserts
            self._next_sqlite_id = (self.db.scalar(select(func.max(DiceLogEntry.id))) or 0) + 1
        entry_id = self._next_sqlite_id
        self._next_sqlite_id += 1
        self._roll_ids_used += 1
        return entry_id

    # -- the batch's statements -----------------------------------------------------------------

    def flush(self) -> None:
        """Write everything collected: one statement per table, one ``UPDATE`` per campaign's log."""
        db = self.db
        if self.rolls:
            db.execute(_INSERT_ROLLS, self.rolls)
            for campaign_id in dict.fromkeys(row["campaign_id"] for row in self.rolls):
                trim_rolls(db, campaign_id, self.keep_rolls[campaign_id])
        for campaign_id, log in self.logs.items():
            if log is not None and log.last_seq != log.stored_seq:
                db.execute(update(Campaign).where(Campaign.id == campaign_id).values(last_seq=log.last_seq))
        if self.events:
            db.execute(_INSERT_EVENTS, self.events)
        if self.replies:
            db.execute(_REPLIES[db.get_bind().dialect.name], self.replies)
        if self.audit:
            db.execute(_INSERT_AUDIT, self.audit)
        self.events, self.rolls, self.replies, self.audit = [], [], [], []
        for log in self.logs.values():
            if log is not None:
                log.stored_seq = log.last_seq


def trim_rolls(db: Session, campaign_id: str, limit: int) -> None:
    """Keep the campaign's newest ``limit`` rolls."""
    oldest_kept = db.scalar(
        select(DiceLogEntry.id)
        .where(DiceLogEntry.campaign_id == campaign_id)
        .order_by(DiceLogEntry.id.desc())
        .offset(limit - 1)
        .limit(1)
    )
    if oldest_kept is not None:
        db.execute(
            delete(DiceLogEntry).where(DiceLogEntry.campaign_id == campaign_id, DiceLogEntry.id < oldest_kept)
        )
