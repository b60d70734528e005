"""Campaign rooms: who is at each table, and how an event reaches them.

A :class:`CampaignRoom` holds the participants of one campaign that are connected to this node:
one :class:`Participant` per user, however many tabs (sessions) they have open, so presence
shows people, not sockets. :class:`Rooms` is the registry and the fan-out:

- :meth:`Rooms.publish` writes a campaign event to the durable log (which gives it the next
  ``seq``), then hands it to every session in the room, rendered for each viewer
  (:mod:`ttrpg_mcp.bridge.visibility`). A per-room lock covers both steps, so sessions receive
  events in ``seq`` order. Sending only queues (each transport drains its own queue), so one
  slow client never holds the lock.
- Cursor moves are disposable: :meth:`Rooms.move_cursor` keeps the latest position per user and
  a ticker sends each room's pending positions as one ``cursor_move`` batch every
  :data:`CURSOR_TICK` seconds. They are never stored and carry no ``seq``.

Scopes: ``campaign`` events go through the log to the room; ``user`` and ``session`` messages go
straight to one user's sessions or one session; ``global`` goes to every connected session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from ttrpg_mcp.bridge import audit, campaigns, frames, protocol, requests
from ttrpg_mcp.bridge import events as events_log
from ttrpg_mcp.bridge.auth import api_keys
from ttrpg_mcp.bridge.content_events import CONTENT_EVENTS, mask_content_event
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.permissions import ROLES
from ttrpg_mcp.bridge.visibility import Viewer, can_see_roll, render_event

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ttrpg_mcp.bridge.permissions import Role
    from ttrpg_mcp.bridge.session import BridgeSession
    from ttrpg_mcp.bridge.settings import BridgeSettings
    from ttrpg_mcp.bridge.store import BridgeStore

__all__ = ["CURSOR_TICK", "CampaignRoom", "Participant", "Rooms"]

T = TypeVar("T")
Logged = tuple[str, dict[str, Any], int]  # an event as stored: type, payload, seq

log = structlog.get_logger("ttrpg_mcp.bridge.rooms")

# About 20 updates a second: smooth enough for a pointer, and one frame per tick per client
# however many people move at once.
CURSOR_TICK = 0.05
PRESENCE_STATUSES = ("online", "away", "typing")


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


@dataclass(eq=False)
class Participant:
    """One user at one campaign's table, over any number of sessions.

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

    def role_of(self, session: BridgeSession) -> Role:
        """The role ``session`` acts and sees with (its credential's, at most the member's)."""
        return self.session_roles.get(session, self.role)

    def viewer_of(self, session: BridgeSession) -> Viewer:
        return Viewer(self.user_id, self.role_of(session))

    def view(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "username": self.name,
            "display_name": self.display_name,
            "role": self.role,
            "status": self.status,
            "character_id": self.character_id,
            "character_name": self.character_name,
            "sessions": len(self.sessions),
        }

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

    def sessions(self) -> list[tuple[Participant, BridgeSession]]:
        return [(p, s) for p in self.participants.values() for s in list(p.sessions)]


class Rooms:
    """Every campaign room of this node, and the fan-out of their events."""

    def __init__(self, store: BridgeStore, settings: BridgeSettings) -> None:
        self._store = store
        self._settings = settings
        self._rooms: dict[str, CampaignRoom] = {}
        self._sessions_by_user: dict[str, set[BridgeSession]] = {}
        self._ticker: asyncio.Task[None] | None = None
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
            room = self._rooms[campaign_id] = CampaignRoom(campaign_id)
        return room

    def room(self, campaign_id: str) -> CampaignRoom | None:
        return self._rooms.get(campaign_id)

    def participant(self, session: BridgeSession) -> Participant:
        """The participant a session speaks for; an error if it has not joined a campaign."""
        room = self._rooms.get(session.campaign_id or "")
        user = session.user
        participant = room.participants.get(user.user_id) if room and user else None
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
    ) -> tuple[Participant, dict[str, Any]]:
        """Seat a session at a campaign's table (members only, within the participant limit).

        Returns the participant and the table as it is: shared state, canvas, recent rolls,
        participants and the current ``seq``. The snapshot is taken under the room's lock, in
        the same step that adds the session, so the session receives exactly the events after it.
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
            participant = room.participants.get(user.user_id)
            if participant is None:
                limit = self._settings.max_participants_per_campaign
                if len(room.participants) >= limit:
                    raise BridgeError(
                        "limit_reached",
                        f"this table is full ({limit} participants)",
                        {"limit": limit, "kind": "participants_per_campaign"},
                    )
                participant = Participant(user.user_id, user.name, user.display_name, role)
                room.participants[user.user_id] = participant
            first = not participant.sessions
            seat_role = participant.role
            viewer = Viewer(user.user_id, role)
            snapshot = await self._resume(session, campaign_id, viewer, last_seq, epoch)
            participant.seat(session, role)
            session.campaign_id = campaign_id
            snapshot["participants"] = [p.view() for p in room.participants.values()]
        if first:
            await self.publish(campaign_id, "participant_joined", participant.view())
        elif participant.role != seat_role:  # a wider session joined the seat
            await self.publish(campaign_id, "presence_update", participant.view())
        if first:
            await self.publish(campaign_id, "participant_joined", participant.view())
        log.info("campaign_joined", campaign_id=campaign_id, role=role, sessions=len(participant.sessions))
        return participant, snapshot

    async def _resume(
        self,
        session: BridgeSession,
        campaign_id: str,
        viewer: Viewer,
        last_seq: int | None,
        epoch: str | None,
    ) -> dict[str, Any]:
        """Replay what a reconnecting session missed, or give it the whole table (caller holds the lock)."""
        reason = None
        if last_seq is not None:
            limit = self._settings.replay_limit
            plan = await self._store.run(
                lambda db: events_log.plan_replay(db, campaign_id, last_seq, epoch, limit=limit),
                readonly=True,
            )
            if plan.recovered:
                for event in plan.events:
                    await session.send(
                        self.event_message(event.type, event.payload, event.seq, campaign_id, viewer, session)
                    )
                log.info("session_recovered", campaign_id=campaign_id, replayed=len(plan.events))
                return {
                    "campaign_id": campaign_id,
                    "role": viewer.role,
                    "epoch": plan.epoch,
                    "seq": plan.seq,
                    "recovered": True,
                    "replayed": len(plan.events),
                }
            reason = plan.reason
            log.info("session_not_recovered", campaign_id=campaign_id, reason=reason)
        snapshot = await self._store.run(lambda db: self._snapshot(db, campaign_id, viewer), readonly=True)
        await self._add_combat(snapshot, campaign_id, viewer)
        if reason is not None:
            snapshot["reason"] = reason
        return snapshot

    async def _add_combat(self, snapshot: dict[str, Any], campaign_id: str, viewer: Viewer) -> None:
        """The initiative in a snapshot is the content store's combat, masked for the viewer."""
        if self.combat_of is None:
            return
        combat = await self.combat_of(campaign_id)
        state = snapshot["state"]
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
        state = campaigns.load_state(db, campaign_id).snapshot(reveal_hidden=viewer.reveal_hidden)
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
        participant = room.participants.get(session.user.user_id)
        if participant is None or session not in participant.sessions:
            return
        seat_role = participant.role
        participant.unseat(session)
        if participant.sessions:
            if participant.role != seat_role:  # the widest session left
                await self.publish(campaign_id or "", "presence_update", participant.view())
            return
        room.participants.pop(participant.user_id, None)
        room.cursors.pop(participant.user_id, None)
        assert campaign_id is not None
        await self.publish(
            campaign_id, "participant_left", {"user_id": participant.user_id, "username": participant.name}
        )
        if not room.participants:
            async with room.lock:  # never while a change is being delivered through it
                self._retire_if_empty(campaign_id, room)

    async def membership_changed(self, campaign_id: str, user_id: str, role: Role | None) -> None:
        """A GM changed someone's role or removed them: apply it to their live sessions now."""
        room = self._rooms.get(campaign_id)
        participant = room.participants.get(user_id) if room else None
        if participant is None:
            return
        if role is not None:
            for session in list(participant.sessions):  # sessions opened by an API key keep its cap
                scope = session.user.scope if session.user else None
                participant.seat(session, api_keys.scoped_role(scope, campaign_id, role))
            await self.publish(campaign_id, "presence_update", participant.view())
            return
        for session in list(participant.sessions):
            error = BridgeError(
                "forbidden", "you were removed from this campaign", {"campaign_id": campaign_id}
            )
            await session.send(protocol.error_message(error, session_id=session.session_id))
            await self.leave(session)
            session.campaign_id = None

    # -- fan-out ------------------------------------------------------------------------------

    async def publish(self, campaign_id: str, event_type: str, data: dict[str, Any]) -> int:
        """Log one campaign event (its ``seq``), then deliver it to the room, rendered per viewer."""
        _, seqs, _ = await self.commit(campaign_id, lambda db: None, lambda _: [(event_type, data)])
        return seqs[0]

    async def commit(
        self,
        campaign_id: str,
        work: Callable[[Session], T],
        events: Callable[[T], list[tuple[str, dict[str, Any]]]],
        reply: Callable[[T, list[int]], dict[str, Any]] | None = None,
    ) -> tuple[T, list[int], dict[str, Any] | None]:
        """Run a change, log its events and keep its reply in one transaction, then deliver.

        The room's lock spans the transaction and the delivery, so no other event of the room
        can be logged between them: every session sees changes in the order they were made, and
        a change is never stored without its events (or the reverse). When the current request
        can be resent after a reconnect (see :mod:`ttrpg_mcp.bridge.requests`), its reply is
        stored in the same transaction, so a resend is answered and never applied twice.
        """
        request = requests.current()

        def unit(db: Session) -> tuple[T, list[Logged], dict[str, Any] | None]:
            result = work(db)
            logged = [
                (kind, data, campaigns.append_event(db, campaign_id, kind, data).seq)
                for kind, data in events(result)
            ]
            message = reply(result, [seq for _, _, seq in logged]) if reply is not None else None
            if message is not None and request is not None:
                events_log.store_reply(db, request.user_id, request.request_id, message)
                request.stored = True
                if request.audit is not None:
                    audit.record_entry(db, request.audit, user_id=request.user_id, result="ok")
                    request.audited = True
            return result, logged, message

        async with self._current_room(campaign_id) as room:
            result, logged, message = await self._store.run(unit)
            for event_type, data, seq in logged:
                await self._deliver(room, event_type, data, seq)
            # A change at a table nobody sits at (the content feed, an HTTP route) leaves no room.
            self._retire_if_empty(campaign_id, room)
        return result, [seq for _, _, seq in logged], message

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

    async def _deliver(self, room: CampaignRoom, event_type: str, data: dict[str, Any], seq: int) -> None:
        """Send one logged event to every seat: rendered and encoded once per visibility class.

        Seats that may see the same thing share one rendering and its JSON; each seat's copy
        differs only in its envelope id and session id (see :mod:`ttrpg_mcp.bridge.frames`).
        """
        bodies: dict[object, tuple[dict[str, Any], str]] = {}
        for participant, session in room.sessions():
            viewer = participant.viewer_of(session)
            key = view_class(event_type, data, viewer)
            shared = bodies.get(key)
            if shared is None:
                body = self.event_message(event_type, data, seq, room.campaign_id, viewer, session)
                del body["id"], body["session_id"]
                shared = bodies[key] = (body, frames.encode_body(body))
            await session.send(
                frames.shared_frame(
                    shared[0], shared[1], message_id=protocol.new_message_id(), session_id=session.session_id
                )
            )

    @staticmethod
    def event_message(
        event_type: str,
        data: dict[str, Any],
        seq: int,
        campaign_id: str,
        viewer: Viewer,
        session: BridgeSession,
    ) -> dict[str, Any]:
        return protocol.envelope(
            event_type,
            session_id=session.session_id,
            data=(
                mask_content_event(event_type, data, viewer)
                if event_type in CONTENT_EVENTS
                else render_event(event_type, data, viewer)
            ),
            scope="campaign",
            campaign_id=campaign_id,
            seq=seq,
        )

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

    # -- snapshots ----------------------------------------------------------------------------

    def participants(self, campaign_id: str) -> list[dict[str, Any]]:
        room = self._rooms.get(campaign_id)
        return [p.view() for p in room.participants.values()] if room else []
