"""Campaign rooms: who is at each table, and how an event reaches them.

A :class:`CampaignRoom` holds the participants of one campaign that are connected to this node:
one :class:`Participant` per user, however many tabs (sessions) they have open, so presence
shows people, not sockets. :class:`Rooms` is the registry and the fan-out:

- :meth:`Rooms.publish` writes a campaign event to the durable log (which gives it the next
  ``seq``), then hands it to every session in the room, rendered once per visibility class
  (:mod:`ttrpg_mcp.bridge.visibility`). Changes that arrive while the room's transaction runs
  share the next one (:mod:`~ttrpg_mcp.bridge.store.group_commit`: twenty players rolling at
  once cost one commit, not twenty), and each is delivered and answered only after that commit.
  A per-room lock covers a batch's transaction and its delivery, so sessions receive events in
  ``seq`` order. Sending only queues (each transport drains its own queue), so one slow client
  never holds the lock.
- With several nodes (a shared :mod:`~ttrpg_mcp.bridge.backplane`), :meth:`Rooms.commit` logs
  the event and hands it to the backplane; every node's follower of the campaign delivers it
  to that node's seats through :meth:`Rooms.deliver_shared`, in ``seq`` order and once each.
  The sender's reply waits until its own node has delivered the event, so a client still sees
  the event before the answer to its change, as on one node.
- Cursor moves are disposable: :meth:`Rooms.move_cursor` keeps the latest position per user and
  a ticker sends each room's pending positions as one ``cursor_move`` batch every
  :data:`CURSOR_TICK` seconds. They are never stored and carry no ``seq``.

Scopes: ``campaign`` events go through the log to the room; ``user`` and ``session`` messages go
straight to one user's sessions or one session; ``global`` goes to every connected session.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from ttrpg_mcp.bridge import audit, campaigns, frames, protocol, requests
from ttrpg_mcp.bridge import events as events_log
from ttrpg_mcp.bridge.auth import api_keys
from ttrpg_mcp.bridge.backplane import Backplane, LocalBackplane, LoggedEvent
from ttrpg_mcp.bridge.content_events import CONTENT_EVENTS, mask_content_event
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.permissions import ROLES
from ttrpg_mcp.bridge.recent_events import RecentEvent, RecentEvents
from ttrpg_mcp.bridge.store.group_commit import GroupCommit
from ttrpg_mcp.bridge.visibility import Viewer, can_see_roll, render_event

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ttrpg_mcp.bridge.permissions import Role
    from ttrpg_mcp.bridge.session import BridgeSession
    from ttrpg_mcp.bridge.settings import BridgeSettings
    from ttrpg_mcp.bridge.store import BridgeStore
    from ttrpg_mcp.bridge.store.table_writes import TableWrites

__all__ = ["CURSOR_TICK", "CampaignRoom", "Participant", "Rooms"]

T = TypeVar("T")
Logged = tuple[str, dict[str, Any], int]  # an event as stored: type, payload, seq

log = structlog.get_logger("ttrpg_mcp.bridge.rooms")

# About 20 updates a second: smooth enough for a pointer, and one frame per tick per client
# however many people move at once.
CURSOR_TICK = 0.05
# With a shared backplane, the longest a reply waits for its own events to reach this node's
# seats; past it the reply goes anyway (the events follow, from the stream or from SQL).
DELIVERY_WAIT = 5.0
PRESENCE_STATUSES = ("online", "away", "typing")
# The presence field naming an agent seat's credentials (kept from every participant's view).
CREDENTIALS = "credentials"


def view_class(event_type: str, data: dict[str, Any], viewer: Viewer) -> object:
    """What decides ``viewer``'s rendering of an event: viewers of one class see the same bytes.

    A roll differs only by whether the viewer may see it; hidden combatants only by whether
    the viewer reveals them; content events are redacted per entity and viewer, so each viewer
    is its own class there; every other event looks the same to everyone.
    """
    if event_type == "dice_roll":
        return can_see_roll(data.get("visibility", "public"), data.get("player_id", ""), viewer)
    if event_type == "state_update":
        return viewer.reveal_hidden
    if event_type in CONTENT_EVENTS:
        return viewer
    return None


def seen_alike(event_type: str, data: dict[str, Any]) -> bool:
    """Whether every viewer gets the same rendering of an event (see :func:`view_class`).

    Then the fan-out renders it once and asks nothing of each seat: a public roll to a table of
    a hundred costs one rendering, not a hundred class lookups.
    """
    if event_type == "dice_roll":
        return bool(data.get("visibility", "public") == "public")
    return event_type != "state_update" and event_type not in CONTENT_EVENTS


@dataclass(eq=False)
class Participant:
    """One seat at one campaign's table, over any number of sessions.

    A person's seat is their user id; an agent (an MCP client acting for a user) has a seat of
    its own, ``kind="agent"``, whose ``user_id`` is the user it acts for: it sees what that
    user's role lets it see, and its changes are that user's, yet the table shows it apart.

    Each session holds its own role (``session_roles``): a session opened with an API key acts
    with at most the key's role, beside the same person's wider sessions. ``role`` is the seat's
    role as others see it in the participant list: the widest of its sessions'.
    """

    user_id: str
    name: str
    display_name: str
    role: Role
    status: str = "online"
    character_id: str | None = None
    character_name: str | None = None
    sessions: set[BridgeSession] = field(default_factory=set)
    session_roles: dict[BridgeSession, Role] = field(default_factory=dict)
    participant_id: str = ""
    kind: str = "person"
    client: str | None = None

    def __post_init__(self) -> None:
        if not self.participant_id:
            self.participant_id = self.user_id

    def role_of(self, session: BridgeSession) -> Role:
        """The role ``session`` acts and sees with (its credential's, at most the member's)."""
        return self.session_roles.get(session, self.role)

    def viewer_of(self, session: BridgeSession) -> Viewer:
        return Viewer(self.user_id, self.role_of(session))

    def view(self) -> dict[str, Any]:
        return {
            "participant_id": self.participant_id,
            "kind": self.kind,
            "client": self.client,
            "user_id": self.user_id,
            "username": self.name,
            "display_name": self.display_name,
            "role": self.role,
            "status": self.status,
            "character_id": self.character_id,
            "character_name": self.character_name,
            "sessions": len(self.sessions),
        }

    def presence(self) -> dict[str, Any]:
        """What the backplane keeps of this seat: its view and, for an agent, its credentials.

        Another node that is asked to take the agent from the table revokes these (the API
        keys or OAuth grants its sessions came with); they never reach another participant.
        """
        if self.kind != "agent":
            return self.view()
        keys = {s.user.scope.key_id for s in self.sessions if s.user is not None and s.user.scope is not None}
        return self.view() | {CREDENTIALS: sorted(keys)}

    def seat(self, session: BridgeSession, role: Role) -> None:
        self.sessions.add(session)
        self.session_roles[session] = role
        self._widest()

    def unseat(self, session: BridgeSession) -> None:
        self.sessions.discard(session)
        self.session_roles.pop(session, None)
        self._widest()

    def _widest(self) -> None:
        if self.session_roles:
            self.role = min(self.session_roles.values(), key=ROLES.index)  # ROLES: widest first


@dataclass(eq=False)
class CampaignRoom:
    """The connected participants of one campaign on this node."""

    campaign_id: str
    participants: dict[str, Participant] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    cursors: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Shared backplane only: the last seq delivered here, whether the campaign is followed, the
    # seq each newly seated session's snapshot covers (it gets only later events), and a
    # condition that replies wait on until their events are delivered.
    delivered: int = 0
    following: bool = False
    floors: dict[BridgeSession, int] = field(default_factory=dict)
    progress: asyncio.Condition = field(default_factory=asyncio.Condition)
    # The events the room delivered lately, gap-free: a resume that they cover is served from them.
    recent: RecentEvents = field(default_factory=lambda: RecentEvents(0))

    def sessions(self) -> list[tuple[Participant, BridgeSession]]:
        return [(p, s) for p in self.participants.values() for s in list(p.sessions)]


def _lock_log(campaign_id: str, writes: TableWrites) -> None:
    writes.lock_log(campaign_id)


class Rooms:
    """Every campaign room of this node, and the fan-out of their events."""

    def __init__(
        self, store: BridgeStore, settings: BridgeSettings, backplane: Backplane | None = None
    ) -> None:
        self._store = store
        self._settings = settings
        self.backplane: Backplane = backplane or LocalBackplane()
        self._rooms: dict[str, CampaignRoom] = {}
        # Per campaign, the changes that arrive while its transaction runs share the next one
        # (see group_commit); kept while a change waits on it.
        self._groups: weakref.WeakValueDictionary[str, GroupCommit] = weakref.WeakValueDictionary()
        self._sessions_by_user: dict[str, set[BridgeSession]] = {}
        self._ticker: asyncio.Task[None] | None = None
        # (campaign, user) -> the seat that last sent a change through the MCP server for that
        # user: the content store knows only the user, the table shows the person or the agent.
        self._last_actor: dict[tuple[str, str], str] = {}
        # The campaign's combat from the content store (the one initiative tracker), for snapshots.
        self.combat_of: Callable[[str], Awaitable[dict[str, Any] | None]] | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self._cursor_loop(), name="cursor-ticker")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    def _room(self, campaign_id: str) -> CampaignRoom:
        """The campaign's room, made on first use."""
        room = self._rooms.get(campaign_id)
        if room is None:
            recent = RecentEvents(self._settings.replay_limit)
            room = self._rooms[campaign_id] = CampaignRoom(campaign_id, recent=recent)
        return room

    def room(self, campaign_id: str) -> CampaignRoom | None:
        return self._rooms.get(campaign_id)

    def participant(self, session: BridgeSession) -> Participant:
        """The participant a session speaks for; an error if it has not joined a campaign."""
        room = self._rooms.get(session.campaign_id or "")
        seat = session.seat_id
        participant = room.participants.get(seat) if room and seat else None
        if participant is None or session not in participant.sessions:
            raise BridgeError("forbidden", "join a campaign first (session_create with a campaign_id)")
        return participant

    # -- sessions -----------------------------------------------------------------------------

    def register(self, session: BridgeSession) -> None:
        """Count an authenticated session against its user's limit."""
        assert session.user is not None
        sessions = self._sessions_by_user.setdefault(session.user.user_id, set())
        if session not in sessions and len(sessions) >= self._settings.max_sessions_per_user:
            raise BridgeError(
                "limit_reached",
                f"at most {self._settings.max_sessions_per_user} sessions per user; close another tab",
                {"limit": self._settings.max_sessions_per_user, "kind": "sessions_per_user"},
            )
        sessions.add(session)

    async def unregister(self, session: BridgeSession) -> None:
        await self.leave(session)
        if session.user is not None:
            sessions = self._sessions_by_user.get(session.user.user_id, set())
            sessions.discard(session)
            if not sessions:
                self._sessions_by_user.pop(session.user.user_id, None)

    async def join(
        self,
        session: BridgeSession,
        campaign_id: str,
        *,
        last_seq: int | None = None,
        epoch: str | None = None,
        batch: bool = False,
    ) -> tuple[Participant, dict[str, Any]]:
        """Seat a session at a campaign's table (members only, within the participant limit).

        Returns the participant and the table as it is: shared state, canvas, recent rolls,
        participants and the current ``seq``. The snapshot is taken under the room's lock, in
        the same step that adds the session, so the session receives exactly the events after it.
        With ``batch`` the events it missed go out as ``event_batch`` frames.
        """
        user = session.user
        assert user is not None
        role = await self._store.run(
            lambda db: campaigns.require_role(db, campaign_id, user.user_id), readonly=True
        )
        role = api_keys.scoped_role(user.scope, campaign_id, role)  # an API key may narrow it
        if session.campaign_id and session.campaign_id != campaign_id:
            await self.leave(session)
        async with self._current_room(campaign_id) as room:
            seat = session.seat_id
            assert seat is not None
            participant = room.participants.get(seat)
            if participant is None:
                limit = self._settings.max_participants_per_campaign
                if len(room.participants) >= limit:
                    raise BridgeError(
                        "limit_reached",
                        f"this table is full ({limit} participants)",
                        {"limit": limit, "kind": "participants_per_campaign"},
                    )
                agent = session.agent
                participant = Participant(
                    user.user_id,
                    user.name,
                    agent.label if agent else user.display_name,
                    role,
                    participant_id=seat,
                    kind="agent" if agent else "person",
                    client=agent.client if agent else None,
                )
                room.participants[seat] = participant
            first = not participant.sessions
            seat_role = participant.role
            viewer = Viewer(user.user_id, role)
            snapshot = await self._resume(session, campaign_id, viewer, last_seq, epoch, batch)
            if self.backplane.shared:
                await self._seat_shared(room, session, viewer, snapshot["epoch"], snapshot["seq"], batch)
            participant.seat(session, role)
            session.campaign_id = campaign_id
            await self._share(campaign_id, participant)
            snapshot["participants"] = await self.everyone(campaign_id)
        if first:
            await self.publish(campaign_id, "participant_joined", participant.view())
        elif participant.role != seat_role:  # a wider session joined the seat
            await self.publish(campaign_id, "presence_update", participant.view())
        log.info("campaign_joined", campaign_id=campaign_id, role=role, sessions=len(participant.sessions))
        return participant, snapshot

    async def _resume(
        self,
        session: BridgeSession,
        campaign_id: str,
        viewer: Viewer,
        last_seq: int | None,
        epoch: str | None,
        batch: bool,
    ) -> dict[str, Any]:
        """Replay what a reconnecting session missed, or give it the whole table (caller holds the lock).

        The missed events come from the room's memory when it holds them all (the log is then
        asked only for its epoch and head), else from the log; either way the room's memory is
        anchored again at the point the session continues from.
        """
        room = self._rooms[campaign_id]
        reason = None
        if last_seq is not None:
            limit = self._settings.replay_limit
            held = self._held(room)
            plan = await self._store.run(
                lambda db: events_log.plan_replay(db, campaign_id, last_seq, epoch, limit=limit, held=held),
                readonly=True,
            )
            if plan.recovered:
                if not plan.from_memory:
                    self._anchor(room, plan.epoch, plan.seq, plan.events)
                recent = room.recent
                if recent.covers(plan.epoch, last_seq) and recent.head == plan.seq:
                    missed = recent.since(last_seq)
                else:  # a shared room whose delivery is behind the log: from the log, unkept
                    missed = [RecentEvent(event.seq, event.type, event.data) for event in plan.events]
                messages = self._rendered(campaign_id, viewer, session, missed)
                await self._replay(session, campaign_id, messages, batch)
                log.info(
                    "session_recovered",
                    campaign_id=campaign_id,
                    replayed=len(missed),
                    from_memory=plan.from_memory,
                )
                return {
                    "campaign_id": campaign_id,
                    "role": viewer.role,
                    "epoch": plan.epoch,
                    "seq": plan.seq,
                    "recovered": True,
                    "replayed": len(missed),
                }
            reason = plan.reason
            log.info("session_not_recovered", campaign_id=campaign_id, reason=reason)
        snapshot = await self._store.run(lambda db: self._snapshot(db, campaign_id, viewer), readonly=True)
        self._anchor(room, snapshot["epoch"], snapshot["seq"], [])
        await self._add_combat(snapshot, campaign_id, viewer)
        if reason is not None:
            snapshot["reason"] = reason
        return snapshot

    def _held(self, room: CampaignRoom) -> events_log.Held | None:
        """What the room's memory can serve a resume from, if anything (caller holds the lock).

        On one node the room's lock covers every commit and its delivery, so the memory must
        end at the log's head. With a shared backplane it ends where this node's follower is,
        and serves a resume up to there: the follower brings the rest to the seated session.
        """
        recent = room.recent
        if recent.epoch is None:
            return None
        if self.backplane.shared and (not room.following or recent.head != room.delivered):
            return None
        return events_log.Held(recent.epoch, recent.base, recent.head, exact=not self.backplane.shared)

    def _anchor(self, room: CampaignRoom, epoch: str, seq: int, events: list[LoggedEvent]) -> None:
        """Line the room's memory up with the log after a read of it (caller holds the lock).

        ``seq`` is the log's head as read under the lock, ``events`` the run of events read up
        to it. One node: that head is the room's too. Shared backplane: the room continues from
        its follower's ``delivered`` (or from ``seq`` when its first seat starts the follower),
        so only the events up to there are kept. Memory already anchored there keeps its events
        unless the log's run reaches further back.
        """
        recent = room.recent
        head = room.delivered if self.backplane.shared and room.following else seq
        if recent.epoch == epoch and recent.head == head and (not events or events[0].seq > recent.base):
            return
        recent.reset(epoch, head, ((e.seq, e.type, e.data) for e in events if e.seq <= head))

    def _rendered(
        self, campaign_id: str, viewer: Viewer, session: BridgeSession, events: list[RecentEvent]
    ) -> list[dict[str, Any]]:
        """Each event as ``session`` may see it: rendered and encoded once per visibility class.

        The rendering is kept on the event, so the next resume by a viewer of the same class
        only splices its message id and session id in front of the JSON (see frames).
        """
        bodies = []
        body_of = self._event_body
        for event in events:
            kind, data = event.type, event.data
            key = None if seen_alike(kind, data) else view_class(kind, data, viewer)
            render = functools.partial(body_of, kind, data, event.seq, campaign_id, viewer)
            bodies.append(event.view(key, render))
        copies = frames.session_copies(bodies, session_id=session.session_id, new_id=protocol.new_message_id)
        return list(copies)

    @classmethod
    def _event_body(
        cls, event_type: str, data: dict[str, Any], seq: int, campaign_id: str, viewer: Viewer
    ) -> dict[str, Any]:
        """An event's message as ``viewer`` sees it, less the per-seat ``id`` and ``session_id``."""
        body = protocol.envelope(
            event_type,
            data=(
                mask_content_event(event_type, data, viewer)
                if event_type in CONTENT_EVENTS
                else render_event(event_type, data, viewer)
            ),
            scope="campaign",
            campaign_id=campaign_id,
            seq=seq,
        )
        del body["id"]
        return body

    @staticmethod
    async def _replay(
        session: BridgeSession, campaign_id: str, messages: list[dict[str, Any]], batch: bool
    ) -> None:
        """Send a session the events it missed: as ``event_batch`` frames if it reads them."""
        if not batch:
            for message in messages:
                await session.send(message)
            return

        def head() -> dict[str, Any]:
            return protocol.envelope(
                "event_batch", session_id=session.session_id, scope="campaign", campaign_id=campaign_id
            )

        for frame in frames.event_batches(head, messages):
            await session.send(frame)

    async def _seat_shared(
        self,
        room: CampaignRoom,
        session: BridgeSession,
        viewer: Viewer,
        epoch: str,
        seq: int,
        batch: bool,
    ) -> None:
        """Line a new seat up with this node's follower of the campaign (caller holds the lock).

        The session's snapshot (or replay) covers the log up to ``seq``. The follower may be
        behind it (the seat then skips what it already has) or ahead (the seat gets the events
        in between from the log now); a room's first seat starts the follower at ``seq``.
        """
        campaign_id = room.campaign_id
        if not room.following:
            room.following, room.delivered = True, seq
            self.backplane.follow(campaign_id, epoch, seq)
        elif room.delivered < seq:
            room.floors[session] = seq
        elif room.delivered > seq:
            upto = room.delivered
            missed = [
                self.event_message(event.type, event.data, event.seq, campaign_id, viewer, session)
                for event in await self.backfill(campaign_id, seq, upto - seq)
                if event.seq <= upto
            ]
            await self._replay(session, campaign_id, missed, batch)

    async def everyone(self, campaign_id: str) -> list[dict[str, Any]]:
        """Everyone at the table, as participants see them: on every live node when shared."""
        return [
            {key: value for key, value in view.items() if key != CREDENTIALS}
            for view in await self._presence(campaign_id)
        ]

    async def _presence(self, campaign_id: str) -> list[dict[str, Any]]:
        """The seats at the table: on every live node when the backplane knows, else this node's."""
        shared = await self.backplane.participants(campaign_id)
        if shared is not None:
            return shared
        room = self._rooms.get(campaign_id)
        return [p.presence() for p in room.participants.values()] if room else []

    async def agent_credentials(self, campaign_id: str, participant_id: str) -> set[str] | None:
        """The API keys or grants an agent seat came with, on whichever node; None: no such agent."""
        room = self._rooms.get(campaign_id)
        seat = room.participants.get(participant_id) if room is not None else None
        views = [seat.presence()] if seat is not None else await self._presence(campaign_id)
        for view in views:
            if view.get("participant_id") == participant_id and view.get("kind") == "agent":
                return set(view.get(CREDENTIALS) or ())
        return None

    def seated_users(self) -> list[tuple[str, str]]:
        """Each (campaign, user) with a seat on this node: a person's or one of their agents'."""
        rooms = self._rooms.values()
        return sorted({(room.campaign_id, p.user_id) for room in rooms for p in room.participants.values()})

    async def _share(self, campaign_id: str, participant: Participant) -> None:
        """Tell the backplane what this node's seat looks like now."""
        await self.backplane.set_presence(campaign_id, participant.participant_id, participant.presence())

    async def _add_combat(self, snapshot: dict[str, Any], campaign_id: str, viewer: Viewer) -> None:
        """The initiative in a snapshot is the content store's combat, masked for the viewer."""
        state = snapshot["state"]
        combat = None if self.combat_of is None else await self.combat_of(campaign_id)
        if combat is None:
            state.update(initiative_order=[], active_turn=0, round_number=1)
            snapshot["combat"] = None
            return
        shown = mask_content_event("combat_update", combat, viewer)
        state.update(
            initiative_order=shown["order"],
            active_turn=shown["active_turn"],
            round_number=max(1, shown["round_number"]),
        )
        snapshot["combat"] = shown

    @staticmethod
    def _snapshot(db: Session, campaign_id: str, viewer: Viewer) -> dict[str, Any]:
        epoch, seq = campaigns.campaign_epoch_and_seq(db, campaign_id)
        state = campaigns.load_state(db, campaign_id).snapshot()
        state["dice_rolls"] = campaigns.recent_rolls(
            db, campaign_id, viewer_id=viewer.user_id, reveal_hidden=viewer.reveal_hidden
        )
        return {
            "campaign_id": campaign_id,
            "role": viewer.role,
            "epoch": epoch,
            "seq": seq,
            "state": state,
            "canvas": campaigns.canvas(db, campaign_id),
            "recovered": False,
        }

    async def leave(self, session: BridgeSession) -> None:
        """Take a session from its table; the participant leaves with their last session."""
        campaign_id = session.campaign_id
        room = self._rooms.get(campaign_id or "")
        if room is None or session.user is None:
            return
        participant = room.participants.get(session.seat_id or "")
        if participant is None or session not in participant.sessions:
            return
        seat_role = participant.role
        participant.unseat(session)
        room.floors.pop(session, None)
        if participant.sessions:
            if participant.role != seat_role and campaign_id is not None:  # the widest session left
                await self._share(campaign_id, participant)
                await self.publish(campaign_id, "presence_update", participant.view())
            return
        room.participants.pop(participant.participant_id, None)
        if self._last_actor.get((campaign_id or "", participant.user_id)) == participant.participant_id:
            del self._last_actor[(campaign_id or "", participant.user_id)]
        room.cursors.pop(participant.participant_id, None)
        assert campaign_id is not None
        await self.backplane.set_presence(campaign_id, participant.participant_id, None)
        await self.publish(
            campaign_id,
            "participant_left",
            {
                "participant_id": participant.participant_id,
                "kind": participant.kind,
                "user_id": participant.user_id,
                "username": participant.name,
            },
        )
        if not room.participants:
            async with room.lock:  # never while a change is being delivered through it
                self._retire_if_empty(campaign_id, room)

    async def membership_changed(self, campaign_id: str, user_id: str, role: Role | None) -> None:
        """A GM changed someone's role or removed them: apply it to their live sessions now."""
        room = self._rooms.get(campaign_id)
        # The person's seat and those of the agents acting for them.
        seats = [p for p in room.participants.values() if p.user_id == user_id] if room else []
        for participant in seats:
            if role is not None:
                before = participant.view()
                for session in list(participant.sessions):  # sessions opened by an API key keep its cap
                    scope = session.user.scope if session.user else None
                    participant.seat(session, api_keys.scoped_role(scope, campaign_id, role))
                if participant.view() == before:  # told twice (the request, then the ledger)
                    continue
                await self._share(campaign_id, participant)
                await self.publish(campaign_id, "presence_update", participant.view())
                continue
            error = BridgeError(
                "forbidden", "you were removed from this campaign", {"campaign_id": campaign_id}
            )
            await self.unseat(participant, error)

    async def unseat(self, participant: Participant, error: BridgeError) -> None:
        """Take every session of a seat from its table, telling each why."""
        for session in list(participant.sessions):
            await session.send(protocol.error_message(error, session_id=session.session_id))
            await self.leave(session)
            session.campaign_id = None

    def note_actor(self, session: BridgeSession) -> None:
        """A session is about to change content through the MCP server: name its seat for it."""
        if session.campaign_id is not None and session.user is not None and session.seat_id is not None:
            self._last_actor[(session.campaign_id, session.user.user_id)] = session.seat_id

    def seat_of_user(self, campaign_id: str, user_id: str) -> Participant | None:
        """Who at the table made a change the content store credits to ``user_id``.

        The seat (the person's or one of their agents') that last sent a change for that user,
        while it is still seated; else the person; else one of their agents. A person and their
        agent changing things at the very same moment may see each other's name on a change.
        """
        room = self._rooms.get(campaign_id)
        if room is None:
            return None
        last = room.participants.get(self._last_actor.get((campaign_id, user_id), ""))
        if last is not None and last.user_id == user_id:
            return last
        person = room.participants.get(user_id)
        if person is not None:
            return person
        return next((p for p in room.participants.values() if p.user_id == user_id), None)

    # -- fan-out ------------------------------------------------------------------------------

    async def publish(self, campaign_id: str, event_type: str, data: dict[str, Any]) -> int:
        """Log one campaign event (its ``seq``), then deliver it to the room, rendered per viewer."""
        _, seqs, _ = await self.commit(
            campaign_id, lambda db: None, lambda _: [(event_type, data)], isolate=False
        )
        return seqs[0]

    async def commit(
        self,
        campaign_id: str,
        work: Callable[[Session], T],
        events: Callable[[T], list[tuple[str, dict[str, Any]]]],
        reply: Callable[[T, list[int]], dict[str, Any]] | None = None,
        *,
        isolate: bool = True,
    ) -> tuple[T, list[int], dict[str, Any] | None]:
        """Run a change, log its events and keep its reply in one transaction, then deliver.

        Changes to one campaign that arrive while its transaction runs are committed together
        in the next one (each in a savepoint of its own, so one that fails fails alone), then
        delivered in ``seq`` order. The room's lock spans a batch's transaction and its
        delivery, so no other event of the room can be logged between them: every session sees
        changes in the order they were made, nothing is sent before it is stored, and a change
        is never stored without its events (or the reverse). With a shared backplane
        the delivery is the followers' (in ``seq`` order on every node); the reply waits until
        this node's seats have the events. When the current request
        can be resent after a reconnect (see :mod:`ttrpg_mcp.bridge.requests`), its reply is
        stored in the same transaction, so a resend is answered and never applied twice.

        The batch's events, replies and audit entries are written together once its changes
        have run (see :mod:`~ttrpg_mcp.bridge.store.table_writes`). ``isolate=False`` says
        ``work`` writes only that way too (a roll, or nothing), so the change needs no savepoint.
        """
        request = requests.current()
        epochs: list[str] = []  # the log's epoch, for the backplane's stream

        def unit(db: Session) -> tuple[T, list[Logged], dict[str, Any] | None]:
            result = work(db)
            logged: list[Logged] = []
            for kind, data in events(result):
                seq, epoch = campaigns.log_event(db, campaign_id, kind, data)
                logged.append((kind, data, seq))
                epochs[:] = [epoch]
            message = reply(result, [seq for _, _, seq in logged]) if reply is not None else None
            if message is not None and request is not None:
                events_log.store_reply(db, request.user_id, request.request_id, message)
                request.stored = True
                if request.audit is not None:
                    audit.record_entry(db, request.audit, user_id=request.user_id, result="ok")
                    request.audited = True
            return result, logged, message

        group = self._groups.get(campaign_id)
        if group is None:
            # With a shared backplane the flusher alone appends the campaign's batches and
            # publishes them, one after the other, so the stream has them in commit order;
            # delivery is the followers' (under the room's lock). Else the batch holds the room.
            guard = None if self.backplane.shared else functools.partial(self._locked_room, campaign_id)
            # Each batch reads (and on PostgreSQL locks) the campaign's log first, outside the
            # changes' savepoints, and gives its events their seqs from there.
            group = self._groups[campaign_id] = GroupCommit(
                self._store.run, guard, functools.partial(_lock_log, campaign_id)
            )

        async def deliver(outcome: tuple[T, list[Logged], dict[str, Any] | None]) -> None:
            room = self._rooms[campaign_id]  # the batch's guard holds this room's lock
            for event_type, data, seq in outcome[1]:
                await self._deliver(room, event_type, data, seq)

        async def publish(outcome: tuple[T, list[Logged], dict[str, Any] | None]) -> None:
            shared = [LoggedEvent(seq, kind, data) for kind, data, seq in outcome[1]]
            await self.backplane.publish(campaign_id, epochs[0] if epochs else "", shared)

        result, logged, message = await group(
            unit, publish if self.backplane.shared else deliver, isolate=isolate
        )
        if self.backplane.shared:
            # Every node's follower delivers it, this one's included: the reply waits for ours.
            room = self._rooms.get(campaign_id)
            if room is not None and room.following and logged:
                await self._wait_delivered(room, logged[-1][2])
        return result, [seq for _, _, seq in logged], message

    async def _wait_delivered(self, room: CampaignRoom, seq: int) -> None:
        """Until this node's seats have ``seq`` (or the room is gone), at most DELIVERY_WAIT."""

        def done() -> bool:
            return room.delivered >= seq or self._rooms.get(room.campaign_id) is not room

        try:
            async with asyncio.timeout(DELIVERY_WAIT), room.progress:
                await room.progress.wait_for(done)
        except TimeoutError:
            log.warning("delivery_wait_timed_out", campaign_id=room.campaign_id, seq=seq)

    async def deliver_shared(self, campaign_id: str, events: list[LoggedEvent]) -> None:
        """The backplane's follower hands over the campaign's next events, in ``seq`` order."""
        room = self._rooms.get(campaign_id)
        if room is None:
            return
        async with room.lock:
            if self._rooms.get(campaign_id) is not room:
                return
            for event in events:
                if event.seq <= room.delivered:
                    continue
                await self._deliver(room, event.type, event.data, event.seq)
                room.delivered = event.seq
            room.floors = {s: floor for s, floor in room.floors.items() if floor > room.delivered}
        async with room.progress:
            room.progress.notify_all()

    async def backfill(self, campaign_id: str, after_seq: int, limit: int) -> list[LoggedEvent]:
        """The campaign's logged events after ``after_seq`` (at most ``limit``), from the store."""
        if limit <= 0:
            return []
        return await self._store.run(
            lambda db: campaigns.logged_since(db, campaign_id, after_seq, limit=limit), readonly=True
        )

    async def reap(self, campaign_id: str, gone: list[dict[str, Any]]) -> None:
        """People whose every seat was on a node that died: they left the table."""
        for view in gone:
            left = {
                "participant_id": view.get("participant_id") or view["user_id"],
                "kind": view.get("kind", "person"),
                "user_id": view["user_id"],
                "username": view.get("username"),
            }
            await self.publish(campaign_id, "participant_left", left)

    @contextlib.asynccontextmanager
    async def _locked_room(self, campaign_id: str) -> AsyncIterator[CampaignRoom]:
        """A group commit's guard: the room's lock over a batch's transaction and its delivery.

        No join can take its snapshot between an event's commit and its delivery, and no other
        batch of the room can interleave, so seats get the room's events in ``seq`` order. A
        change at a table nobody sits at (the content feed, an HTTP route) leaves no room.
        """
        async with self._current_room(campaign_id) as room:
            try:
                yield room
            finally:
                self._retire_if_empty(campaign_id, room)

    @contextlib.asynccontextmanager
    async def _current_room(self, campaign_id: str) -> AsyncIterator[CampaignRoom]:
        """The campaign's room as it is once its lock is held, with the lock held.

        A room is retired when its last participant leaves. A change or a join that waited on
        a retired room's lock would deliver its events to nobody, or seat a session where no
        event arrives any more (a session joining the new room would then miss them): so the
        room is looked up again once the lock is held, and a retired one is let go.
        """
        while True:
            room = self._room(campaign_id)
            await room.lock.acquire()
            if self._rooms.get(campaign_id) is room:
                break
            room.lock.release()
        try:
            yield room
        finally:
            room.lock.release()

    def _retire_if_empty(self, campaign_id: str, room: CampaignRoom) -> None:
        """Drop an empty room (the caller holds its lock); the next change or join makes a new one."""
        if not room.participants and self._rooms.get(campaign_id) is room:
            del self._rooms[campaign_id]
            if room.following:
                self.backplane.unfollow(campaign_id)

    async def _deliver(self, room: CampaignRoom, event_type: str, data: dict[str, Any], seq: int) -> None:
        """Send one logged event to every seat: rendered and encoded once per visibility class.

        Seats that may see the same thing share one rendering and its JSON; each seat's copy
        differs only in its envelope id and session id (see :mod:`ttrpg_mcp.bridge.frames`).
        The envelope ids stay unique per message, as the protocol asks, but cost one fresh id
        per event, with the seat's number appended (see :func:`ttrpg_mcp.bridge.frames.seat_ids`).
        """
        room.recent.append(seq, event_type, data)
        bodies: dict[object, tuple[dict[str, Any], str]] = {}
        alike = seen_alike(event_type, data)
        floors = room.floors
        shared_frame = frames.shared_frame
        seat_ids = frames.seat_ids(protocol.new_message_id())
        for participant, session in room.sessions():
            if floors:
                floor = floors.get(session)
                if floor is not None and seq <= floor:
                    continue  # its snapshot already holds this event
            key = None if alike else view_class(event_type, data, participant.viewer_of(session))
            shared = bodies.get(key)
            if shared is None:
                viewer = participant.viewer_of(session)
                body = self._event_body(event_type, data, seq, room.campaign_id, viewer)
                shared = bodies[key] = (body, frames.encode_body(body))
            await session.send(
                shared_frame(shared[0], shared[1], message_id=next(seat_ids), session_id=session.session_id)
            )

    @classmethod
    def event_message(
        cls,
        event_type: str,
        data: dict[str, Any],
        seq: int,
        campaign_id: str,
        viewer: Viewer,
        session: BridgeSession,
    ) -> dict[str, Any]:
        """An event's message for one session: its body as ``viewer`` sees it, with ids of its own."""
        body = cls._event_body(event_type, data, seq, campaign_id, viewer)
        return {"id": protocol.new_message_id(), "session_id": session.session_id} | body

    async def send_to_user(self, user_id: str, message: dict[str, Any]) -> None:
        """A ``user``-scoped message: every session of one user, on this node."""
        for session in list(self._sessions_by_user.get(user_id, ())):
            await session.send(message | {"scope": "user", "session_id": session.session_id})

    async def broadcast(self, message: dict[str, Any]) -> None:
        """A ``global`` message: every connected session."""
        for sessions in list(self._sessions_by_user.values()):
            for session in list(sessions):
                await session.send(message | {"scope": "global", "session_id": session.session_id})

    # -- presence and cursors -----------------------------------------------------------------

    async def update_presence(self, participant: Participant, campaign_id: str, data: dict[str, Any]) -> None:
        status = data.get("status")
        if status is not None:
            participant.status = status
        if "character_id" in data:
            participant.character_id = data["character_id"]
        if "character_name" in data:
            participant.character_name = data["character_name"]
        await self._share(campaign_id, participant)
        await self.publish(campaign_id, "presence_update", participant.view())

    def move_cursor(self, participant: Participant, campaign_id: str, position: dict[str, Any]) -> None:
        room = self._rooms.get(campaign_id)
        if room is not None:
            room.cursors[participant.user_id] = {
                "user_id": participant.user_id,
                "username": participant.name,
                "position": position,
            }

    async def _cursor_loop(self) -> None:
        while True:
            await asyncio.sleep(CURSOR_TICK)
            for room in list(self._rooms.values()):
                if not room.cursors:
                    continue
                cursors, room.cursors = list(room.cursors.values()), {}
                # One batch, the same for every seat: encoded once (see frames).
                body = protocol.envelope(
                    "cursor_move", data={"cursors": cursors}, scope="campaign", campaign_id=room.campaign_id
                )
                del body["id"]
                body_json = frames.encode_body(body)
                for _participant, session in room.sessions():
                    await session.send(
                        frames.shared_frame(
                            body,
                            body_json,
                            message_id=protocol.new_message_id(),
                            session_id=session.session_id,
                        )
                    )
