"""What the bridge sends: every server message and campaign event as a pydantic model, for its JSON Schema.

The bridge builds its messages as plain dicts (:func:`ttrpg_mcp.bridge.protocol.envelope`); these
models describe them so that clients in other languages get their types from one source
(``ttrpg-bridge schema --messages server``; the web client generates TypeScript from it) and so
that the examples in ``docs/protocol.md`` are checked against the same description. They are
never used to build or validate what goes out on the wire.

Every model refuses unknown fields, so a field added to a message without being described here
shows up as a failing documentation check rather than as a silent gap in a client's types.

This module is pure.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ttrpg_mcp.bridge.canvas import Layer, Tool
from ttrpg_mcp.bridge.permissions import Role, Visibility
from ttrpg_mcp.bridge.protocol import PROTOCOL_VERSION, SUBPROTOCOL
from ttrpg_mcp.dice.results import DieResult
from ttrpg_mcp.server import views

__all__ = ["ServerMessage", "server_json_schema"]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ServerEnvelope(_Closed):
    """Fields every bridge message carries."""

    id: str
    timestamp: int = Field(description="Unix time in milliseconds.")
    version: str = Field(description="Protocol version.")
    session_id: str | None = Field(default=None, description="The session the message belongs to.")


class _Reply(_ServerEnvelope):
    request_id: str = Field(description="The id of the request this answers.")
    duplicate: bool | None = Field(
        default=None, description="True when a resent request was answered from the first reply."
    )


class ErrorBody(_Closed):
    """Every failure: a code from the error table, a readable message and details."""

    code: str
    message: str
    data: dict[str, Any] | None = None


# -- replies ----------------------------------------------------------------------------------


class SessionUser(_Closed):
    id: str
    username: str = Field(description="The login name.")
    name: str = Field(description="The login name again (same as username), for older clients.")
    display_name: str


class SessionCreated(_ServerEnvelope):
    """The connection is authenticated."""

    type: Literal["session_created"]
    request_id: str | None = None
    user: SessionUser
    campaign_id: str | None = None
    capabilities: dict[str, Any] = Field(description="What tool_discover returns.")
    heartbeat_interval: int = Field(description="Milliseconds between the bridge's heartbeats.")
    idle_timeout: int = Field(description="Milliseconds of silence before the bridge closes a WebSocket.")
    protocol_version: str


class Response(_Reply):
    """The reply to an MCP operation: ``result`` or ``error``."""

    type: Literal["response"]
    duration: float | None = Field(default=None, description="Milliseconds the operation took.")
    result: dict[str, Any] | None = None
    error: ErrorBody | None = None


class _Roll(_Closed):
    """What every full roll carries (a table roll's reply, a logged roll)."""

    expression: str
    label: str | None
    total: int
    dice: list[DieResult]
    rolls: list[int] = Field(description="The value of every die rolled, in order; `dice` says which count.")
    crit: bool
    fumble: bool
    text: str
    purpose: str | None
    visibility: Visibility
    roll_id: int | str | None = Field(default=None, description="At a table: the roll's id in its log.")


class RolledDice(_Roll):
    """A roll as its roller (or a GM) sees it."""

    modifier: int = Field(description="The total minus the dice that count: 3 for 2d6+3.")


class HiddenRollResult(_Closed):
    """A blind roll as the player who made it sees it: only that it was made."""

    expression: str
    purpose: str | None
    visibility: Literal["blind"]
    hidden: Literal[True]


class DiceRollResult(_Reply):
    type: Literal["dice_roll_result"]
    result: RolledDice | HiddenRollResult


class AckData(_Closed):
    version: int | None = Field(default=None, description="The shared state's version after the change.")
    seq: int | None = Field(default=None, description="The seq of the (last) event the change made.")
    stroke_id: str | None = Field(default=None, description="The id given to a new stroke.")
    expires_at: float | None = Field(default=None, description="The new token's expiry (Unix seconds).")
    play_session_id: str | None = Field(
        default=None, description="initiative_update: the play session whose combat changed."
    )
    active_turn: int | None = Field(default=None, description="initiative_update: the acting index after it.")
    round_number: int | None = Field(default=None, description="initiative_update: the round after it.")


class Ack(_Reply):
    type: Literal["ack"]
    data: AckData | None = None


class ErrorMessage(_ServerEnvelope):
    type: Literal["error"]
    request_id: str | None = None
    error: ErrorBody


class Heartbeat(_ServerEnvelope):
    type: Literal["heartbeat"]


class Disconnect(_ServerEnvelope):
    type: Literal["disconnect"]
    reason: str | None = None
    retry_after: int | None = Field(default=None, description="Milliseconds to wait before reconnecting.")


class McpNotification(_ServerEnvelope):
    type: Literal["mcp_notification"]
    scope: Literal["session", "user", "campaign", "global"]
    data: dict[str, Any] = Field(description="The MCP notification as the server sent it.")


# -- the table --------------------------------------------------------------------------------


class ParticipantView(_Closed):
    participant_id: str = Field(
        description="The seat: a person's user id, or an agent's own id (``agt_...``)."
    )
    kind: Literal["person", "agent"] = Field(
        description="agent: an MCP client acting for user_id (display_name says whose)."
    )
    client: str | None = Field(description="An agent's MCP client name (clientInfo.name); null for people.")
    user_id: str = Field(description="The user: the person, or the one an agent acts for.")
    username: str
    display_name: str
    role: Role
    status: str = Field(description="online, away or typing")
    character_id: str | None
    character_name: str | None
    sessions: int


class Combatant(views.Combatant):
    """One entry of the campaign's combat (the content store's initiative order)."""

    model_config = ConfigDict(extra="forbid")


class HiddenCombatant(_Closed):
    """A hidden combatant as players and spectators see it."""

    id: str | None
    name: str
    hidden: Literal[True]


class StoredRoll(_Roll):
    """One entry of the roll log in a snapshot."""

    modifier: int | None = Field(default=None, description="Absent on rolls made with the roll_dice tool.")
    source: Literal["tool"] | None = Field(default=None, description="'tool': made with the roll_dice tool.")
    id: int | str
    player_id: str
    player_name: str
    created_at: str


class SharedStateView(_Closed):
    """The shared state document as one viewer may see it."""

    initiative_order: list[Combatant | HiddenCombatant]
    active_turn: int
    round_number: int
    shared_notes: str
    custom: dict[str, Any]
    version: int
    last_update: str
    dice_rolls: list[StoredRoll] = Field(default_factory=list)


class StoredStroke(_Closed):
    """A stroke on the canvas, with the id the bridge gave it."""

    id: str
    tool: Tool
    points: list[tuple[float, float]]
    color: str
    width: float
    text: str | None = None
    layer: Layer
    user_id: str
    created_at: str | None = None


class CombatView(_Closed):
    """The running (or just ended) play session's combat, masked for the viewer."""

    session_id: str
    number: int
    title: str
    live: bool = Field(description="False once the play session has ended.")
    round_number: int
    active_turn: int = Field(description="Index in order of the combatant whose turn it is.")
    current: Combatant | HiddenCombatant | None
    order: list[Combatant | HiddenCombatant]


class CampaignSnapshotData(_Closed):
    campaign_id: str
    role: Role
    epoch: str
    seq: int = Field(description="The seq of the last event of the campaign; events continue from it.")
    recovered: bool = Field(
        description="True: the missed events were replayed; false: this is the whole table."
    )
    replayed: int | None = None
    reason: str | None = Field(default=None, description="Why the missed events could not be replayed.")
    state: SharedStateView | None = None
    canvas: list[StoredStroke] | None = None
    combat: CombatView | None = Field(default=None, description="The combat, as in combat_update.")
    participants: list[ParticipantView] = Field(default_factory=list)


class CampaignSnapshot(_ServerEnvelope):
    type: Literal["campaign_snapshot"]
    request_id: str | None = None
    data: CampaignSnapshotData


class _CampaignEvent(_ServerEnvelope):
    scope: Literal["campaign"]
    campaign_id: str
    seq: int


class ParticipantJoined(_CampaignEvent):
    type: Literal["participant_joined"]
    data: ParticipantView


class ParticipantLeftData(_Closed):
    participant_id: str
    kind: Literal["person", "agent"]
    user_id: str
    username: str


class ParticipantLeft(_CampaignEvent):
    type: Literal["participant_left"]
    data: ParticipantLeftData


class PresenceChanged(_CampaignEvent):
    type: Literal["presence_update"]
    data: ParticipantView


class RollEventData(_Closed):
    roll_id: int | str | None
    player_id: str
    player_name: str
    expression: str
    results: list[int] = Field(description="Every die's value, in order, dropped ones included.")
    total: int
    purpose: str | None
    visibility: Visibility
    crit: bool
    fumble: bool
    text: str
    source: Literal["tool"] | None = Field(
        default=None, description="'tool': made with the roll_dice tool (player_id 'local' from stdio)."
    )


class HiddenRollEventData(_Closed):
    """A roll this viewer may not see: who rolled and how, not what."""

    roll_id: int | str | None
    player_id: str | None
    player_name: str | None
    visibility: Visibility | None
    hidden: Literal[True]
    source: Literal["tool"] | None = Field(default=None, description="'tool': made with the roll_dice tool.")


class DiceRolled(_CampaignEvent):
    type: Literal["dice_roll"]
    data: RollEventData | HiddenRollEventData


class StateChangedData(_Closed):
    path: list[str | int]
    operation: Literal["set", "merge", "delete"]
    value: Any = None
    version: int
    previous_version: int | None
    last_update: str
    by: str | None = None


class StateChanged(_CampaignEvent):
    type: Literal["state_update"]
    data: StateChangedData


class StrokeDrawn(_Closed):
    action: Literal["stroke"]
    stroke: StoredStroke
    by: str


class StrokeErased(_Closed):
    action: Literal["erase"]
    stroke_id: str
    by: str


class CanvasCleared(_Closed):
    action: Literal["clear"]
    by: str


class CanvasDrawn(_CampaignEvent):
    type: Literal["canvas_draw"]
    data: Annotated[StrokeDrawn | StrokeErased | CanvasCleared, Field(discriminator="action")]


class ContentChange(_Closed):
    """The content store's record of one change, behind every content event."""

    id: int = Field(description="Monotonic id of the change in the content store.")
    kind: str = Field(description="campaign, character, npc, location, item, note or play_session.")
    entity_id: str
    version: int
    operation: Literal["created", "updated", "deleted"]
    by_role: str | None = None


class _ContentData(_Closed):
    by: str | None = Field(default=None, description="The user who made the change, or 'local' (stdio).")
    change: ContentChange


class CampaignChangedData(_ContentData):
    campaign: dict[str, Any]


class CampaignChanged(_CampaignEvent):
    type: Literal["campaign_update"]
    data: CampaignChangedData


class CharacterChangedData(_ContentData):
    character: dict[str, Any]


class CharacterChanged(_CampaignEvent):
    type: Literal["character_update"]
    data: CharacterChangedData


class NpcChangedData(_ContentData):
    npc: dict[str, Any]


class NpcChanged(_CampaignEvent):
    type: Literal["npc_update"]
    data: NpcChangedData


class LocationChangedData(_ContentData):
    location: dict[str, Any]


class LocationChanged(_CampaignEvent):
    type: Literal["location_update"]
    data: LocationChangedData


class ItemChangedData(_ContentData):
    item: dict[str, Any]


class ItemChanged(_CampaignEvent):
    type: Literal["item_update"]
    data: ItemChangedData


class NoteChangedData(_ContentData):
    note: dict[str, Any] | None = Field(description="Null when this seat may not read the note.")
    hidden: Literal[True] | None = Field(default=None, description="True when the note is withheld.")


class NoteAdded(_CampaignEvent):
    type: Literal["note_added"]
    data: NoteChangedData


class NoteChanged(_CampaignEvent):
    type: Literal["note_update"]
    data: NoteChangedData


class CombatChangedData(CombatView):
    by: str | None = Field(default=None, description="The user who made the change, or 'local' (stdio).")
    change: ContentChange


class CombatChanged(_CampaignEvent):
    type: Literal["combat_update"]
    data: CombatChangedData


class ContentDeletedData(_ContentData):
    kind: str
    id: str


class ContentDeleted(_CampaignEvent):
    type: Literal["content_deleted"]
    data: ContentDeletedData


class CursorEntry(_Closed):
    user_id: str
    username: str
    position: dict[str, Any] = Field(description="x, y and optionally element, as the user sent it.")


class CursorBatchData(_Closed):
    cursors: list[CursorEntry]


class CursorBatch(_ServerEnvelope):
    """The latest cursor of everyone who moved since the last tick; no seq, never stored."""

    type: Literal["cursor_move"]
    scope: Literal["campaign"]
    campaign_id: str
    data: CursorBatchData


CampaignEventMessage = Annotated[
    ParticipantJoined
    | ParticipantLeft
    | PresenceChanged
    | DiceRolled
    | StateChanged
    | CanvasDrawn
    | CampaignChanged
    | CharacterChanged
    | NpcChanged
    | LocationChanged
    | ItemChanged
    | NoteAdded
    | NoteChanged
    | CombatChanged
    | ContentDeleted,
    Field(discriminator="type"),
]


class EventBatch(_ServerEnvelope):
    """Missed events replayed at once, for a client that asked with ``batch``; never stored."""

    type: Literal["event_batch"]
    scope: Literal["campaign"]
    campaign_id: str
    events: list[CampaignEventMessage] = Field(
        description="Campaign events in increasing seq, each exactly as it would arrive alone."
    )


ServerMessage = Annotated[
    SessionCreated
    | Response
    | DiceRollResult
    | Ack
    | ErrorMessage
    | Heartbeat
    | Disconnect
    | McpNotification
    | CampaignSnapshot
    | ParticipantJoined
    | ParticipantLeft
    | PresenceChanged
    | DiceRolled
    | StateChanged
    | CanvasDrawn
    | CampaignChanged
    | CharacterChanged
    | NpcChanged
    | LocationChanged
    | ItemChanged
    | NoteAdded
    | NoteChanged
    | CombatChanged
    | ContentDeleted
    | EventBatch
    | CursorBatch,
    Field(discriminator="type"),
]
SERVER_ADAPTER: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)


def server_json_schema() -> dict[str, Any]:
    """The JSON Schema of every message the bridge sends (``ttrpg-bridge schema --messages server``)."""
    schema = SERVER_ADAPTER.json_schema()
    schema["title"] = "ttrpg-bridge server message"
    schema["$comment"] = f"protocol {PROTOCOL_VERSION}, WebSocket subprotocol {SUBPROTOCOL}"
    return schema
