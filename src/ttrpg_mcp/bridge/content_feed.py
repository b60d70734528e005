"""The change feed's reading side: the bridge follows the content store's change log.

Every write to campaign content, from any ``ttrpg-mcp`` process on the data directory (the
pool's children, Claude Desktop's own server), records a row in ``content_changes`` in its own
transaction (:mod:`ttrpg_mcp.server.store.changes`). :class:`ContentFeed` notices new rows,
reads each changed entity as it now is, and publishes one table event per change through
:meth:`ttrpg_mcp.bridge.rooms.Rooms.publish`, which gives it the campaign's next ``seq`` (so
replay after a reconnect covers it) and renders it per viewer
(:func:`ttrpg_mcp.bridge.content_events.mask_content_event`). It also tells the read cache that
the campaign changed, whoever changed it.

This is the *only* path by which content changes reach seats: table actions that write content
through the MCP tools (``campaign_update``, ``character_update``, ``initiative_update``, a
``tool_call``) publish nothing themselves, so each change reaches every seat exactly once.

Noticing is behind :class:`ChangeSignal`. On SQLite, :class:`SqliteNewestIdPoll` asks for
the newest change id every :data:`POLL_INTERVAL` seconds on one open connection: an indexed
``max(id)`` that costs microseconds, far under 1 % of a core when idle. On PostgreSQL,
:class:`~ttrpg_mcp.bridge.content_notify.PostgresChangeListener` waits on ``LISTEN``/``NOTIFY``
instead, with a slow safety poll.

Exactly once, across restarts: the id of the last change handled is a
:class:`~ttrpg_mcp.bridge.store.models.FeedCursor` in the bridge's store, saved in the same
transaction that logs the change's event. A restarted bridge resumes right after it, so a change
Claude made while the bridge was down still reaches the table (and the replay of a client that
reattaches), and none is published twice. The first start begins at the newest change. Nodes
that share one content store (PostgreSQL) share the cursor too: each change is claimed in the
transaction that logs its event, so exactly one node publishes it.
Cancellation: :meth:`ContentFeed.stop` cancels the task; an interrupted change is handled again
on the next start, since its cursor was not saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import structlog
from sqlalchemy import make_url, select
from sqlalchemy.exc import OperationalError

from ttrpg_mcp.bridge.campaigns import add_roll
from ttrpg_mcp.bridge.content_events import event_type_for
from ttrpg_mcp.bridge.content_notify import PostgresChangeListener
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.store.models import FeedCursor, utcnow
from ttrpg_mcp.server.store.database import Database
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
from ttrpg_mcp.server.views import (
    CampaignView,
    CharacterView,
    Combatant,
    ItemView,
    LocationView,
    NoteView,
    NpcView,
)
from ttrpg_mcp.storage_faults import STORAGE_UNAVAILABLE, storage_failure

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ttrpg_mcp.bridge.rooms import Rooms
    from ttrpg_mcp.bridge.store import BridgeStore

__all__ = ["POLL_INTERVAL", "ChangeSignal", "ContentChangeEvent", "ContentFeed", "SqliteNewestIdPoll"]

log = structlog.get_logger("ttrpg_mcp.bridge.content_feed")

# 50 ms: a change made over stdio reaches the seats well within the 250 ms budget even on a
# loaded machine, and twenty indexed reads a second cost next to nothing.
POLL_INTERVAL = 0.05
# At most this many changes are read and published per step, so a burst (an import) is paced.
_BATCH = 500
# Failed attempts at the same change before it is skipped (a store that is busy recovers sooner).
_MAX_FAILURES = 5


class ChangeSignal(Protocol):
    """How the feed learns that the change log has grown past an id."""

    async def newest(self) -> int:
        """The newest change id now (0 when there is none yet)."""
        ...

    async def wait_past(self, after: int) -> int:
        """Return the newest change id once it is greater than ``after``."""
        ...

    def close(self) -> None: ...


class SqliteNewestIdPoll:
    """A :class:`ChangeSignal` that polls ``max(id)`` of the change log on one SQLite connection."""

    def __init__(self, path: Path, interval: float = POLL_INTERVAL) -> None:
        self._path = path
        self._interval = interval
        self._connection: sqlite3.Connection | None = None

    def _query(self) -> int:
        if self._connection is None:
            if not self._path.exists():
                return 0  # the MCP server creates it; until then there is nothing to follow
            # mode=rw: never create the file (that is the server's job, with its migrations).
            self._connection = sqlite3.connect(
                f"file:{self._path}?mode=rw", uri=True, isolation_level=None, check_same_thread=False
            )
        try:
            row = self._connection.execute("SELECT max(id) FROM content_changes").fetchone()
        except sqlite3.OperationalError:  # not migrated yet, or busy for a moment: ask again later
            return 0
        return int(row[0] or 0)

    async def newest(self) -> int:
        return self._query()

    async def wait_past(self, after: int) -> int:
        # A read of the newest rowid takes microseconds and never waits on writers (WAL), so
        # it runs on the loop itself: no thread hop twenty times a second.
        while True:
            newest = self._query()
            if newest > after:
                return newest
            await anyio.sleep(self._interval)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass(frozen=True)
class ContentChangeEvent:
    """One change of the log, as the table event it becomes (``event_type`` empty: none)."""

    change_id: int
    campaign_id: str
    event_type: str
    payload: dict[str, Any]
    # A tool roll as the table's dice log keeps it (result, expression, purpose), else None.
    roll: dict[str, Any] | None = None


def _change_info(change: ContentChange) -> dict[str, Any]:
    return {
        "id": change.id,
        "kind": change.entity_kind,
        "entity_id": change.entity_id,
        "version": change.version,
        "operation": change.operation,
        "by_role": change.actor_role,
    }


def _combat(session: PlaySession) -> dict[str, Any]:
    order = [Combatant.model_validate(entry).model_dump(mode="json") for entry in session.initiative]
    turn = session.active_turn
    return {
        "session_id": session.id,
        "number": session.number,
        "title": session.title,
        "live": session.ended_at is None,
        "round_number": session.round_number,
        "active_turn": turn,
        "current": order[turn] if 0 <= turn < len(order) else None,
        "order": order,
    }


def _roll(entry: RollLogEntry, actor: str) -> dict[str, Any]:
    result = entry.result
    return {
        "roll_id": entry.id,
        "player_id": actor,
        "player_name": actor if actor != "local" else "GM",
        "expression": entry.expression,
        "results": [die.get("value") for die in result.get("dice", []) if isinstance(die, dict)],
        "total": result.get("total"),
        "purpose": entry.purpose,
        "visibility": entry.visibility,
        "crit": bool(result.get("crit")),
        "fumble": bool(result.get("fumble")),
        "text": result.get("text", ""),
        "source": "tool",
    }


def _entity_payload(db: Session, change: ContentChange) -> dict[str, Any] | None:
    """The changed entity as it is now, under the event's key; None when it is gone."""
    kind, entity_id = change.entity_kind, change.entity_id
    match kind:
        case "campaign":
            campaign = db.get(Campaign, entity_id)
            return None if campaign is None else {"campaign": CampaignView.model_validate(campaign)}
        case "character":
            character = db.get(Character, entity_id)
            return None if character is None else {"character": CharacterView.model_validate(character)}
        case "npc":
            npc = db.get(Npc, entity_id)
            return None if npc is None else {"npc": NpcView.model_validate(npc)}
        case "location":
            location = db.get(Location, entity_id)
            return None if location is None else {"location": LocationView.model_validate(location)}
        case "item":
            item = db.get(Item, entity_id)
            return None if item is None else {"item": ItemView.model_validate(item)}
        case "note":
            note = db.get(Note, entity_id)
            return None if note is None else {"note": NoteView.model_validate(note)}
        case "play_session":
            session = db.get(PlaySession, entity_id)
            return None if session is None else _combat(session)
        case "roll":
            entry = db.get(RollLogEntry, entity_id)
            return None if entry is None else _roll(entry, change.actor)
    return None


def _load_cursor(db: Session, source: str) -> int | None:
    cursor = db.get(FeedCursor, source)
    return None if cursor is None else cursor.last_id


def _save_cursor(db: Session, source: str, last_id: int, *, forward_only: bool = True) -> None:
    """Move the cursor to ``last_id``; never back (another node may be ahead), but at start."""
    cursor = db.get(FeedCursor, source)
    if cursor is None:
        db.add(FeedCursor(source=source, last_id=last_id, updated_at=utcnow()))
    else:
        last_id = max(cursor.last_id, last_id) if forward_only else last_id
        cursor.last_id, cursor.updated_at = last_id, utcnow()
    db.flush()


def _claim_change(db: Session, source: str, change_id: int) -> bool:
    """Move the cursor past a change unless it is already past it: True when this node publishes it.

    Several nodes on one content store follow the same change log with one cursor. The cursor's
    row is locked for the rest of the transaction (PostgreSQL), so of two nodes handling the
    same change, one logs its event and the other finds the cursor moved and logs nothing:
    each change reaches every seat once, whichever node publishes it.
    """
    cursor = db.scalars(select(FeedCursor).where(FeedCursor.source == source).with_for_update()).one_or_none()
    if cursor is not None and cursor.last_id >= change_id:
        return False
    _save_cursor(db, source, change_id)
    return True


def read_changes(db: Session, after: int, limit: int = _BATCH) -> list[ContentChangeEvent]:
    """The changes after id ``after``, oldest first, each with its event and payload."""
    changes = db.scalars(
        select(ContentChange).where(ContentChange.id > after).order_by(ContentChange.id).limit(limit)
    )
    found: list[ContentChangeEvent] = []
    for change in changes:
        if change.entity_kind == "campaign" and change.operation == "created":
            # No table exists before its campaign: the creator learns of it from the API's reply.
            found.append(ContentChangeEvent(change.id, change.campaign_id, "", {}))
            continue
        event_type = event_type_for(change.entity_kind, change.operation)
        if change.operation == "deleted":
            payload: dict[str, Any] | None = {"kind": change.entity_kind, "id": change.entity_id}
        else:
            payload = _entity_payload(db, change)
        if payload is None:  # created and deleted between two reads: nothing left to show
            payload = {"kind": change.entity_kind, "id": change.entity_id}
            event_type = "content_deleted"
        if event_type != "dice_roll":
            payload = {
                key: value.model_dump(mode="json") if hasattr(value, "model_dump") else value
                for key, value in payload.items()
            }
            payload |= {"by": change.actor, "change": _change_info(change)}
        roll = None
        if event_type == "dice_roll":
            entry = db.get(RollLogEntry, change.entity_id)
            if entry is not None:
                roll = entry.result | {"purpose": entry.purpose, "source": "tool"}
        found.append(ContentChangeEvent(change.id, change.campaign_id, event_type, payload, roll))
    return found


def _source_name(location: Path | str) -> str:
    """The feed cursor's key for a content store, never holding a password."""
    if isinstance(location, Path):
        return str(location)[-200:]
    url = make_url(location)
    return f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/{url.database or ''}"[-200:]


def _storage_fault(error: Exception) -> bool:
    if isinstance(error, BridgeError):
        return error.code == STORAGE_UNAVAILABLE
    return storage_failure(error) is not None


class ContentFeed:
    """Follows one content store's change log and publishes each change at its table."""

    def __init__(
        self,
        content_db: Path | str,
        rooms: Rooms,
        store: BridgeStore,
        *,
        on_change: Callable[[str], None] | None = None,
        signal: ChangeSignal | None = None,
    ) -> None:
        self._location = content_db  # a SQLite file, or a PostgreSQL URL
        self._source = _source_name(content_db)
        self._rooms = rooms
        self._store = store
        self._on_change = on_change
        if signal is None:
            signal = (
                SqliteNewestIdPoll(content_db)
                if isinstance(content_db, Path)
                else PostgresChangeListener(content_db)
            )
        self._signal = signal
        self._database: Database | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_id = 0
        self.published = 0

    def _open(self) -> Database:
        if self._database is None:
            self._database = Database(self._location)
        return self._database

    async def combat_of(self, campaign_id: str) -> dict[str, Any] | None:
        """The combat of the campaign's running play session (as a ``combat_update`` has it), if any."""
        if isinstance(self._location, Path) and not self._location.exists():
            return None
        database = self._open()

        def read() -> dict[str, Any] | None:
            with database.read() as db:
                session = db.scalar(
                    select(PlaySession).where(
                        PlaySession.campaign_id == campaign_id, PlaySession.ended_at.is_(None)
                    )
                )
                return None if session is None else _combat(session)

        try:
            return await anyio.to_thread.run_sync(read)
        except OperationalError:  # not migrated yet: no combat to show
            return None

    async def start(self) -> None:
        """Resume after the last change published, or (first start) after the newest one."""
        newest = await self._signal.newest()
        source = self._source
        saved = await self._store.run(lambda db: _load_cursor(db, source), readonly=True)
        # A cursor past the newest change belongs to another (replaced) content store.
        self.last_id = saved if saved is not None and saved <= newest else newest
        if saved != self.last_id:
            await self._save_cursor(self.last_id, forward_only=False)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="content-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._signal.close()
        if self._database is not None:
            self._database.close()
            self._database = None

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._signal.wait_past(self.last_id)
                await self.step()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a failed step is retried from the same id; the feed goes on
                # A store that cannot serve now (a restarting server) is waited out, never
                # taken for a change that cannot be shown.
                if not _storage_fault(error):
                    failures += 1
                log.exception("content_feed_step_failed", last_id=self.last_id, failures=failures)
                if failures >= _MAX_FAILURES:
                    # One change that cannot be shown must not stop every later one: skip it.
                    self.last_id += 1
                    failures = 0
                await anyio.sleep(POLL_INTERVAL * 10)

    async def _save_cursor(self, last_id: int, *, forward_only: bool = True) -> None:
        source = self._source
        await self._store.run(lambda db: _save_cursor(db, source, last_id, forward_only=forward_only))

    async def _publish(self, change: ContentChangeEvent) -> None:
        """Log the change's event (and move the cursor) in one transaction, then deliver it."""
        source = self._source

        def work(db: Session) -> bool:
            return _claim_change(db, source, change.change_id)

        await self._rooms.commit(
            change.campaign_id, work, lambda mine: [(change.event_type, change.payload)] if mine else []
        )

    async def _publish_roll(self, change: ContentChangeEvent, roll: dict[str, Any]) -> None:
        """A tool roll joins the table's dice log (what late joiners see) with its event."""
        source = self._source
        payload = dict(change.payload)
        actor = str(payload.get("player_id") or "local")
        # An agent's roll is its owner's in the content store: the table names who made it.
        participant = self._rooms.seat_of_user(change.campaign_id, actor)
        if participant is not None:
            payload["player_name"] = participant.display_name
        user_id = None if actor == "local" or participant is None else actor
        name, visibility = str(payload.get("player_name") or "GM"), str(payload.get("visibility"))

        def work(db: Session) -> dict[str, Any] | None:
            if not _claim_change(db, source, change.change_id):
                return None  # another node published it
            return add_roll(db, change.campaign_id, user_id, name, roll, visibility)

        await self._rooms.commit(
            change.campaign_id, work, lambda stored: [("dice_roll", payload)] if stored is not None else []
        )

    async def step(self) -> int:
        """Publish the changes logged since the last step; how many there were."""
        database = self._open()

        def read() -> list[ContentChangeEvent]:
            with database.read() as db:
                return read_changes(db, self.last_id)

        found = await anyio.to_thread.run_sync(read)
        unsaved = False  # changes handled without an event: their cursor is saved once at the end
        for change in found:
            if self._on_change is not None:
                self._on_change(change.campaign_id)
            if not change.event_type:  # nothing to show at a table
                self.last_id, unsaved = change.change_id, True
                continue
            try:
                if change.roll is not None:
                    await self._publish_roll(change, change.roll)
                else:
                    await self._publish(change)
                self.published += 1
                unsaved = False
            except BridgeError as error:
                # A campaign nobody has opened at a table yet (made over stdio, not claimed).
                log.debug("content_change_not_published", code=error.code, campaign_id=change.campaign_id)
                unsaved = True
            self.last_id = change.change_id
        if unsaved:
            await self._save_cursor(self.last_id)
        return len(found)
