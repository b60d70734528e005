"""The live table's actions: joining, dice, shared state, initiative, canvas, presence, edits.

Each action checks the permission table first (a refusal is ``forbidden`` and changes
nothing), makes its change and logs its events in one transaction through
:meth:`ttrpg_mcp.bridge.rooms.Rooms.commit`, then answers the sender. Campaign content
(the campaign itself, characters) has one source of truth, the MCP server's store: those edits
go through its tools, and the content feed (:mod:`ttrpg_mcp.bridge.content_feed`) broadcasts
every change it records, whoever made it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ttrpg_mcp.bridge import campaigns, protocol
from ttrpg_mcp.bridge.canvas import DrawStroke, EraseStroke
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.initiative import parse_initiative_update
from ttrpg_mcp.bridge.limits import DANGEROUS_KEYS
from ttrpg_mcp.bridge.permissions import Action, allowed, require
from ttrpg_mcp.bridge.state import StateChange, apply_change
from ttrpg_mcp.bridge.tool_errors import tool_error
from ttrpg_mcp.dice import Advantage, DiceError, roll
from ttrpg_mcp.server.secrecy import Viewer

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.canvas import CanvasDrawData
    from ttrpg_mcp.bridge.initiative import InitiativeUpdate
    from ttrpg_mcp.bridge.mcp_pool import McpPool
    from ttrpg_mcp.bridge.rooms import Participant, Rooms
    from ttrpg_mcp.bridge.session import BridgeSession

__all__ = ["TableActions"]

# What the content store's codes mean at the table (the tool's own code is in data.tool_code).
_CONTENT_CODES = {"not_found": "not_found", "invalid_input": "invalid_params", "conflict": "conflict"}


def _content_error(error: BridgeError) -> BridgeError:
    """A refused content-store tool call as the table's own error (not_found, invalid_params...)."""
    code = _CONTENT_CODES.get(str((error.data or {}).get("tool_code", "")))
    if error.code != "tool_error" or code is None:
        return error
    return BridgeError(code, error.message, {"tool": (error.data or {}).get("tool")})


_INITIATIVE_KEYS = frozenset({"initiative_order", "active_turn", "round_number"})


class TableActions:
    """What a participant can do at a campaign's table."""

    def __init__(self, *, rooms: Rooms, pool: McpPool, on_write: Callable[[str], None] | None = None) -> None:
        self._rooms = rooms
        self._pool = pool
        # Told of every change made through the MCP server, so cached reads of it are dropped.
        self._on_write = on_write

    async def join(
        self,
        session: BridgeSession,
        campaign_id: str,
        request_id: str | None,
        *,
        last_seq: int | None = None,
        epoch: str | None = None,
        batch: bool = False,
    ) -> dict[str, Any]:
        _participant, snapshot = await self._rooms.join(
            session, campaign_id, last_seq=last_seq, epoch=epoch, batch=batch
        )
        return protocol.envelope(
            "campaign_snapshot", request_id=request_id, session_id=session.session_id, data=snapshot
        )

    # -- dice ---------------------------------------------------------------------------------

    async def roll(
        self, session: BridgeSession, request_id: str, data: protocol.DiceRollData
    ) -> dict[str, Any]:
        participant = self._rooms.participant(session) if session.campaign_id else None
        if participant is not None:
            require(participant.role_of(session), Action.ROLL, "roll dice")
            if data.visibility != "public":
                require(participant.role_of(session), Action.ROLL_HIDDEN, f"make a {data.visibility} roll")
        try:
            result = roll(data.expression, advantage=Advantage(data.advantage))
        except DiceError as error:
            raise BridgeError("invalid_dice", str(error), {"expression": data.expression}) from None
        full = protocol.dice_result_fields(result.model_dump(mode="json")) | {
            "purpose": data.purpose,
            "visibility": data.visibility,
        }

        def result_message(shown: dict[str, Any]) -> dict[str, Any]:
            sees_hidden = participant is None or participant.viewer_of(session).reveal_hidden
            if data.visibility == "blind" and not sees_hidden:
                # A blind roll is for the GM's eyes: the roller learns only that it was made.
                shown = {
                    "expression": data.expression,
                    "purpose": data.purpose,
                    "visibility": "blind",
                    "hidden": True,
                }
            return protocol.envelope(
                "dice_roll_result", request_id=request_id, session_id=session.session_id, result=shown
            )

        if participant is None or session.campaign_id is None:
            return result_message(full)
        campaign_id = session.campaign_id

        def store(db: Session) -> dict[str, Any]:
            return campaigns.add_roll(
                db, campaign_id, participant.user_id, participant.display_name, full, data.visibility
            )

        def event(stored: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
            payload = {
                "roll_id": stored.get("id"),
                "player_id": participant.user_id,
                "player_name": participant.display_name,
                "expression": data.expression,
                "results": [die["value"] for die in full["dice"]],
                "total": full["total"],
                "purpose": data.purpose,
                "visibility": data.visibility,
                "crit": full["crit"],
                "fumble": full["fumble"],
                "text": full["text"],
            }
            return [("dice_roll", payload)]

        _, _, message = await self._rooms.commit(
            campaign_id,
            store,
            event,
            lambda stored, _seqs: result_message(full | {"roll_id": stored.get("id")}),
            isolate=False,  # add_roll only collects its row: no savepoint needed
        )
        assert message is not None
        return message

    # -- shared state and initiative ------------------------------------------------------------

    async def change_state(
        self, session: BridgeSession, request_id: str, data: protocol.StateChangeData
    ) -> dict[str, Any]:
        participant = self._rooms.participant(session)
        poisoned = [part for part in data.path if part in DANGEROUS_KEYS]
        if poisoned:
            # A path segment becomes a key in everyone's copy of the state: same rule as keys.
            raise BridgeError(
                "dangerous_key", f"the path segment {poisoned[0]!r} is not allowed", {"path": data.path}
            )
        if data.path[0] in _INITIATIVE_KEYS:
            require(participant.role_of(session), Action.CHANGE_INITIATIVE, "change the initiative")
            # One tracker: the initiative is the campaign's combat in the content store. The
            # design document's updateInitiative (a ``set`` of the whole ``initiative_order``)
            # becomes the same operation as an initiative_update ``set``; the seats hear of it
            # as ``combat_update``. Other writes to these keys have no meaning on a combat.
            if data.path == ["initiative_order"] and data.operation == "set" and isinstance(data.value, list):
                operation = parse_initiative_update({"action": "set", "combatants": data.value})
                return await self.change_initiative(session, request_id, operation)
            raise BridgeError(
                "invalid_params",
                "the initiative is the campaign's combat: change it with initiative_update",
                {"path": data.path},
            )
        require(participant.role_of(session), Action.EDIT_STATE, "edit the shared state")
        campaign_id = self._campaign(session)

        def work(db: Session) -> tuple[list[StateChange], dict[str, Any]]:
            state = campaigns.load_state(db, campaign_id)
            change = apply_change(state, data.path, data.operation, data.value, data.previous_version)
            campaigns.save_state(db, state)
            return [change], state.document

        return await self._commit_state(session, request_id, participant, campaign_id, work)

    async def change_initiative(
        self, session: BridgeSession, request_id: str, data: InitiativeUpdate
    ) -> dict[str, Any]:
        """One operation on the campaign's combat in the content store (the one tracker).

        The seats hear of it as ``combat_update`` from the content feed, like of a move Claude
        makes with ``next_turn``; the sender gets an ``ack`` with the turn and round.
        """
        participant = self._rooms.participant(session)
        require(participant.role_of(session), Action.CHANGE_INITIATIVE, "change the initiative")
        campaign_id = self._campaign(session)
        operation = data.model_dump(mode="json", exclude_unset=True)
        try:
            result = await self._call_tool(
                session, "update_initiative", {"campaign_id": campaign_id, "operation": operation}
            )
        except BridgeError as error:
            raise _content_error(error) from None
        combat = result.get("structuredContent") or {}
        return self._ack(
            session,
            request_id,
            play_session_id=combat.get("session_id") or None,
            active_turn=combat.get("active_turn"),
            round_number=combat.get("round_number"),
        )

    async def _commit_state(
        self,
        session: BridgeSession,
        request_id: str,
        participant: Participant,
        campaign_id: str,
        work: Callable[[Session], tuple[list[StateChange], dict[str, Any]]],
    ) -> dict[str, Any]:
        def events(done: tuple[list[StateChange], dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
            changes, _document = done
            return [("state_update", change.view() | {"by": participant.user_id}) for change in changes]

        def reply(done: tuple[list[StateChange], dict[str, Any]], seqs: list[int]) -> dict[str, Any]:
            changes, _document = done
            version = changes[-1].version if changes else None
            return self._ack(session, request_id, version=version, seq=seqs[-1] if seqs else None)

        _, _, message = await self._rooms.commit(campaign_id, work, events, reply)
        assert message is not None
        return message

    # -- canvas, presence, cursors --------------------------------------------------------------

    async def draw(self, session: BridgeSession, request_id: str, data: CanvasDrawData) -> dict[str, Any]:
        participant = self._rooms.participant(session)
        campaign_id = self._campaign(session)
        work: Callable[[Session], dict[str, Any]]
        match data:
            case DrawStroke(stroke=stroke):
                require(participant.role_of(session), Action.DRAW, "draw")

                def work(db: Session) -> dict[str, Any]:
                    added = campaigns.add_stroke(db, campaign_id, participant.user_id, stroke)
                    return {"action": "stroke", "stroke": added}

            case EraseStroke(stroke_id=stroke_id):
                require(participant.role_of(session), Action.ERASE_OWN, "erase")
                any_owner = allowed(participant.role_of(session), Action.ERASE_ANY)

                def work(db: Session) -> dict[str, Any]:
                    campaigns.erase_stroke(
                        db, campaign_id, stroke_id, participant.user_id, any_owner=any_owner
                    )
                    return {"action": "erase", "stroke_id": stroke_id}

            case _:
                require(participant.role_of(session), Action.CLEAR_CANVAS, "clear the canvas")

                def work(db: Session) -> dict[str, Any]:
                    campaigns.clear_canvas(db, campaign_id)
                    return {"action": "clear"}

        def reply(payload: dict[str, Any], seqs: list[int]) -> dict[str, Any]:
            stroke = payload.get("stroke")
            return self._ack(session, request_id, seq=seqs[0], stroke_id=stroke.get("id") if stroke else None)

        _, _, message = await self._rooms.commit(
            campaign_id, work, lambda done: [("canvas_draw", done | {"by": participant.user_id})], reply
        )
        assert message is not None
        return message

    async def presence(
        self, session: BridgeSession, request_id: str, data: protocol.PresenceData, ack: bool
    ) -> dict[str, Any] | None:
        participant = self._rooms.participant(session)
        require(participant.role_of(session), Action.UPDATE_PRESENCE, "update presence")
        await self._rooms.update_presence(
            participant, self._campaign(session), data.model_dump(exclude_unset=True)
        )
        return self._ack(session, request_id) if ack else None

    def move_cursor(
        self, session: BridgeSession, request_id: str, data: protocol.CursorData, ack: bool
    ) -> dict[str, Any] | None:
        participant = self._rooms.participant(session)
        require(participant.role_of(session), Action.MOVE_CURSOR, "share a cursor")
        self._rooms.move_cursor(
            participant, self._campaign(session), data.position.model_dump(exclude_none=True)
        )
        return self._ack(session, request_id) if ack else None

    # -- campaign content through the MCP server ------------------------------------------------

    async def update_campaign(
        self, session: BridgeSession, request_id: str, data: protocol.CampaignChanges
    ) -> dict[str, Any]:
        participant = self._rooms.participant(session)
        require(participant.role_of(session), Action.EDIT_CAMPAIGN, "change the campaign")
        campaign_id = self._campaign(session)
        arguments = {"campaign_id": campaign_id} | data.model_dump(exclude_none=True)
        result = await self._call_tool(session, "save_campaign", arguments)
        # The table hears of it from the content feed, like of any other change to the campaign.
        return self._response(session, request_id, result)

    async def update_character(
        self, session: BridgeSession, request_id: str, data: protocol.CharacterChanges
    ) -> dict[str, Any]:
        participant = self._rooms.participant(session)
        campaign_id = self._campaign(session)
        current = await self._call_tool(session, "get_character", {"character_id": data.character_id})
        character = current.get("structuredContent") or {}
        if character.get("campaign_id") != campaign_id:
            raise BridgeError("not_found", f"no character {data.character_id!r} in this campaign")
        owner = character.get("owner")
        own = owner in (participant.user_id, participant.name)
        if own:
            require(participant.role_of(session), Action.EDIT_OWN_CHARACTER, "edit a character")
        else:
            require(participant.role_of(session), Action.EDIT_ANY_CHARACTER, "edit someone else's character")
        arguments = {"character_id": data.character_id, "changes": data.changes}
        result = await self._call_tool(session, "update_character", arguments)
        # Published by the content feed (one path for every change, whoever made it).
        return self._response(session, request_id, result)

    def tool_arguments(self, session: BridgeSession, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """A tool call made at a table, completed with what the table knows before it is sent.

        ``roll_dice`` at a table is a table roll: it belongs to the campaign (so the content
        store logs it and the feed shows it to the seats, with who rolled it) and has a
        visibility: what was asked, else GM-only for a GM and public for everyone else. A
        hidden roll needs the right to roll hidden, as with ``dice_roll``.
        """
        if name != "roll_dice" or session.campaign_id is None:
            return arguments
        participant = self._rooms.participant(session)
        role = participant.role_of(session)
        visibility = arguments.get("visibility") or ("gm" if role == "gm" else "public")
        if visibility != "public":
            require(participant.role_of(session), Action.ROLL_HIDDEN, f"make a {visibility} roll")
        return arguments | {"campaign_id": session.campaign_id, "visibility": visibility}

    async def _call_tool(
        self, session: BridgeSession, name: str, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        participant = self._rooms.participant(session)
        viewer = Viewer(participant.role_of(session), participant.user_id, session.campaign_id)
        self._rooms.note_actor(session)
        result = await self._pool.request(
            "tools/call", {"name": name, "arguments": arguments}, session_id=session.session_id, viewer=viewer
        )
        if result.get("isError"):
            raise tool_error(name, result)
        if self._on_write is not None and session.campaign_id is not None and name != "get_character":
            self._on_write(session.campaign_id)
        return result

    # -- replies ------------------------------------------------------------------------------

    @staticmethod
    def _campaign(session: BridgeSession) -> str:
        if session.campaign_id is None:
            raise BridgeError("forbidden", "join a campaign first (session_create with a campaign_id)")
        return session.campaign_id

    @staticmethod
    def _ack(session: BridgeSession, request_id: str, **data: Any) -> dict[str, Any]:
        fields = {key: value for key, value in data.items() if value is not None}
        return protocol.envelope(
            "ack", request_id=request_id, session_id=session.session_id, data=fields or None
        )

    @staticmethod
    def _response(session: BridgeSession, request_id: str, result: dict[str, Any]) -> dict[str, Any]:
        return protocol.envelope(
            "response", request_id=request_id, session_id=session.session_id, result=result
        )
