"""The WebSocket message protocol: every message type as a pydantic model, and its JSON Schema.

Every message shares the spike's envelope: ``id`` (for correlation; the bridge makes one when a
client leaves it out), ``type`` (the discriminator), ``timestamp`` (Unix milliseconds),
``version`` (protocol version), and optionally ``session_id`` and ``request_id``. Messages a
client sends are one discriminated union, :data:`ClientMessage`, parsed by
:func:`parse_client_message`; what the bridge sends is built with :func:`envelope`.

Replies to a request carry ``request_id`` = the request's ``id``: ``response`` for MCP operations,
``dice_roll_result`` for dice, ``ack`` for messages that asked for one, ``error`` for every failure.
Server-initiated events carry ``type`` = the event name with ``data`` and ``scope``.

This module is pure (no I/O): the transports and the dispatcher share it, and ``ttrpg-bridge
schema`` prints :func:`json_schema`.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ttrpg_mcp.bridge.canvas import CanvasDrawData
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.initiative import InitiativeUpdate

__all__ = [
    "CLIENT_TYPES",
    "PROTOCOL_VERSION",
    "SUBPROTOCOL",
    "ClientMessage",
    "dice_result_fields",
    "envelope",
    "error_message",
    "json_schema",
    "now_ms",
    "parse_client_message",
]

PROTOCOL_VERSION = "1.0.0"
SUBPROTOCOL = "mcp-ttrpg-v1"


def now_ms() -> int:
    return int(time.time() * 1000)


# Server message ids: this process's random half, then a counter. Unique like uuid4().hex (32
# hex digits) without reading the OS's random source for each of the thousands a fan-out sends.
_MESSAGE_ID_PREFIX = uuid.uuid4().hex[:16]
_MESSAGE_ID_COUNTER = itertools.count(int.from_bytes(os.urandom(4), "big"))


def new_message_id() -> str:
    """A fresh id for a server message: unique within this process and, by its prefix, across."""
    return f"{_MESSAGE_ID_PREFIX}{next(_MESSAGE_ID_COUNTER) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


class _Envelope(BaseModel):
    """Fields every message carries; unknown extra fields are refused so typos surface."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_message_id, min_length=1, max_length=128)
    timestamp: int | None = Field(default=None, description="Unix time in milliseconds.")
    version: str = PROTOCOL_VERSION
    session_id: str | None = Field(default=None, max_length=128)
    request_id: str | None = Field(default=None, max_length=128)


class RequestMetadata(BaseModel):
    """Hints a request may carry (the spike's ``metadata``)."""

    model_config = ConfigDict(extra="forbid")

    priority: int | None = Field(default=None, ge=0, le=10)
    timeout: float | None = Field(default=None, gt=0, description="Milliseconds this request may take.")
    retry: bool | None = None


class Authenticate(_Envelope):
    """First message of a connection that did not pass ``?token=``; also accepted afterwards."""

    type: Literal["authenticate"]
    token: str = Field(min_length=1, max_length=8192)
    campaign_id: str | None = Field(default=None, max_length=128)


class Reauthenticate(_Envelope):
    """Swap the access token of a live connection (after a refresh)."""

    type: Literal["reauthenticate"]
    token: str = Field(min_length=1, max_length=8192)


class ToolCall(_Envelope):
    """Call one MCP tool: ``method`` is the tool's name."""

    type: Literal["tool_call"]
    method: str = Field(min_length=1, max_length=128)
    params: dict[str, Any] = Field(default_factory=dict)
    metadata: RequestMetadata | None = None


class ToolDiscover(_Envelope):
    """List the MCP server's tools, resources, resource templates and prompts."""

    type: Literal["tool_discover"]
    params: dict[str, Any] = Field(default_factory=dict)
    metadata: RequestMetadata | None = None


class ResourceGetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str = Field(min_length=1, max_length=2048)


class ResourceGet(_Envelope):
    """Read one MCP resource by URI (``params.uri``)."""

    type: Literal["resource_get"]
    params: ResourceGetParams
    metadata: RequestMetadata | None = None


class PromptGet(_Envelope):
    """Render one MCP prompt: ``method`` is the prompt's name, ``params`` its arguments."""

    type: Literal["prompt_get"]
    method: str = Field(min_length=1, max_length=128)
    params: dict[str, str] = Field(default_factory=dict)
    metadata: RequestMetadata | None = None


class DiceRollData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expression: str = Field(min_length=1, max_length=500)
    purpose: str | None = Field(default=None, max_length=500)
    advantage: Literal["none", "advantage", "disadvantage"] = "none"
    visibility: Literal["public", "gm", "blind", "self"] = "public"


class DiceRoll(_Envelope):
    """Roll dice in the bridge with the shared engine; answered with ``dice_roll_result``."""

    type: Literal["dice_roll"]
    data: DiceRollData


class SessionCreate(_Envelope):
    """Join a campaign's table on this connection; answered with ``campaign_snapshot``."""

    type: Literal["session_create"]
    campaign_id: str = Field(min_length=1, max_length=128)


class SessionAttach(_Envelope):
    """Rejoin a campaign after a reconnect, from the last ``seq`` seen (``session_id`` = the old session)."""

    type: Literal["session_attach"]
    campaign_id: str = Field(min_length=1, max_length=128)
    last_seq: int | None = Field(default=None, ge=0)
    epoch: str | None = Field(default=None, max_length=64)
    batch: bool = Field(
        default=False,
        description="True: the client reads `event_batch`, so the replay comes as a few of them "
        "(WebSocket only; over SSE every event stays a message of its own).",
    )


class CampaignChanges(BaseModel):
    """Fields of the campaign to change (through the MCP server's ``save_campaign``)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    system: str | None = Field(default=None, max_length=100)
    setting: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=20_000)
    house_rules: list[str] | None = Field(default=None, max_length=200)
    world_state: dict[str, Any] | None = None
    archived: bool | None = None
    expected_version: int | None = Field(default=None, ge=1)
    reason: str = Field(default="", max_length=200)


class CampaignUpdate(_Envelope):
    """Change the joined campaign (GM); broadcast as a ``campaign_update`` event."""

    type: Literal["campaign_update"]
    data: CampaignChanges


class CharacterChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    character_id: str = Field(min_length=1, max_length=128)
    changes: dict[str, Any] = Field(min_length=1)


class CharacterUpdate(_Envelope):
    """Change a character (players: their own only); broadcast as a ``character_update`` event."""

    type: Literal["character_update"]
    data: CharacterChanges


class InitiativeUpdateMessage(_Envelope):
    """Change the campaign's combat (order, turn, round); every seat gets a ``combat_update`` event."""

    type: Literal["initiative_update"]
    data: InitiativeUpdate


class StateChangeData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: list[str | int] = Field(min_length=1, max_length=16)
    operation: Literal["set", "merge", "delete"]
    value: Any = None
    previous_version: int | None = Field(default=None, ge=0)
    version: int | None = Field(default=None, description="Ignored: the bridge assigns versions.")


class StateUpdate(_Envelope):
    """Change the shared state at a path; a stale ``previous_version`` is a ``conflict``."""

    type: Literal["state_update"]
    data: StateChangeData


class CursorPosition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: float = Field(allow_inf_nan=False)
    y: float = Field(allow_inf_nan=False)
    element: str | None = Field(default=None, max_length=200)
    timestamp: int | None = None


class CursorData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    position: CursorPosition


class CursorMove(_Envelope):
    """Where the user's pointer is; coalesced and sent to the table in batches, never stored."""

    type: Literal["cursor_move"]
    data: CursorData
    ack: bool = False


class CanvasDraw(_Envelope):
    """Draw a stroke, erase one, or clear the canvas (GM); durable and broadcast."""

    type: Literal["canvas_draw"]
    data: CanvasDrawData


class PresenceData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["online", "away", "typing"] | None = None
    character_id: str | None = Field(default=None, max_length=128)
    character_name: str | None = Field(default=None, max_length=200)


class PresenceUpdate(_Envelope):
    """The user's status at the table and the character they play."""

    type: Literal["presence_update"]
    data: PresenceData
    ack: bool = False


class Heartbeat(_Envelope):
    """Liveness from the client; answered with ``ack``."""

    type: Literal["heartbeat"]


class Disconnect(_Envelope):
    """The client is leaving on purpose; the bridge closes the connection normally."""

    type: Literal["disconnect"]
    reason: str | None = Field(default=None, max_length=500)


_CLIENT_MODELS = (
    Authenticate,
    Reauthenticate,
    SessionCreate,
    SessionAttach,
    ToolCall,
    ToolDiscover,
    ResourceGet,
    PromptGet,
    DiceRoll,
    CampaignUpdate,
    CharacterUpdate,
    InitiativeUpdateMessage,
    StateUpdate,
    CursorMove,
    CanvasDraw,
    PresenceUpdate,
    Heartbeat,
    Disconnect,
)
ClientMessage = Annotated[
    Authenticate
    | Reauthenticate
    | SessionCreate
    | SessionAttach
    | ToolCall
    | ToolDiscover
    | ResourceGet
    | PromptGet
    | DiceRoll
    | CampaignUpdate
    | CharacterUpdate
    | InitiativeUpdateMessage
    | StateUpdate
    | CursorMove
    | CanvasDraw
    | PresenceUpdate
    | Heartbeat
    | Disconnect,
    Field(discriminator="type"),
]
_CLIENT_ADAPTER: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
CLIENT_TYPES = frozenset(
    model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]  # each is Literal[...]
    for model in _CLIENT_MODELS
)
# Server-to-client message types; documented in docs/protocol.md, checked by the tests.
SERVER_TYPES = frozenset(
    {
        "session_created",
        "response",
        "dice_roll_result",
        "ack",
        "error",
        "heartbeat",
        "disconnect",
        "mcp_notification",
        "campaign_snapshot",
        # campaign events (with seq)
        "participant_joined",
        "participant_left",
        "presence_update",
        "dice_roll",
        "state_update",
        "canvas_draw",
        "campaign_update",
        "character_update",
        # content events from the change feed (see content_events.py)
        "npc_update",
        "location_update",
        "item_update",
        "note_added",
        "note_update",
        "combat_update",
        "content_deleted",
        # batched, not logged
        "cursor_move",
        "event_batch",
    }
)


def decode_json(raw: str | bytes) -> Any:
    """The JSON value of a frame, or a BridgeError naming where it went wrong."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BridgeError("invalid_json", f"message is not valid JSON: {exc}") from None
    except RecursionError:
        raise BridgeError("invalid_json", "message is nested too deeply") from None


# Where an id is looked for in a frame refused before parsing (too large): only its opening bytes.
_ID_PREFIX = re.compile(r'"id"\s*:\s*"([^"\\]{1,128})"')
_ID_SCAN_CHARS = 512


def request_id_in_prefix(raw: str | bytes) -> str | None:
    """The ``id`` near the start of a frame that will not be parsed, so its error can still be matched."""
    head = raw[:_ID_SCAN_CHARS]
    text = head.decode(errors="ignore") if isinstance(head, bytes) else head
    match = _ID_PREFIX.search(text)
    return match.group(1) if match else None


def request_id_of(value: Any) -> str | None:
    """The ``id`` of a message, if it has a usable one, so that even a refused message gets a reply."""
    if isinstance(value, dict):
        candidate = value.get("id")
        if isinstance(candidate, str) and 0 < len(candidate) <= 128:
            return candidate
    return None


def parse_client_message(value: Any) -> ClientMessage:
    """A validated client message, or a BridgeError (``unknown_type`` or ``invalid_message``)."""
    if not isinstance(value, dict):
        raise BridgeError("invalid_message", "a message must be a JSON object")
    kind = value.get("type")
    if not isinstance(kind, str):
        raise BridgeError("invalid_message", "a message needs a string 'type'")
    if kind not in CLIENT_TYPES:
        raise BridgeError(
            "unknown_type", f"unknown message type {kind!r}", {"known_types": sorted(CLIENT_TYPES)}
        )
    try:
        return _CLIENT_ADAPTER.validate_python(value)
    except ValidationError as exc:
        errors = [
            {"loc": [str(part) for part in err["loc"][1:]], "msg": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        first = errors[0]
        where = ".".join(first["loc"]) or "message"
        raise BridgeError("invalid_message", f"{kind}: {where}: {first['msg']}", {"errors": errors}) from None


def dice_result_fields(roll: dict[str, Any]) -> dict[str, Any]:
    """A roll as ``dice_roll_result`` carries it: the engine's fields plus the design document's.

    The design document's client reads ``rolls`` as every die rolled, in order, and
    ``modifier`` as what the expression adds to them; the engine's own ``rolls`` holds only the
    dice that count. So here ``rolls`` lists every die (``dice`` says which ones count) and
    ``modifier`` is the total minus the dice that count: for ``2d6+3`` it is 3.
    """
    dice = roll.get("dice") or []
    counted = sum(int(die["value"]) for die in dice if die.get("kept"))
    return roll | {
        "rolls": [int(die["value"]) for die in dice],
        "modifier": int(roll["total"]) - counted,
    }


def envelope(
    type_: str, *, request_id: str | None = None, session_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A server message with the base envelope filled in; ``None`` fields are left out."""
    message: dict[str, Any] = {
        "id": new_message_id(),
        "type": type_,
        "timestamp": now_ms(),
        "version": PROTOCOL_VERSION,
    }
    if session_id is not None:
        message["session_id"] = session_id
    if request_id is not None:
        message["request_id"] = request_id
    message.update({key: value for key, value in fields.items() if value is not None})
    return message


def error_message(
    error: BridgeError, *, request_id: str | None = None, session_id: str | None = None
) -> dict[str, Any]:
    """The ``error`` reply for a failure."""
    return envelope("error", request_id=request_id, session_id=session_id, error=error.to_dict())


def json_schema() -> dict[str, Any]:
    """The JSON Schema of every message a client may send (``ttrpg-bridge schema`` prints it)."""
    schema = _CLIENT_ADAPTER.json_schema()
    schema["title"] = "ttrpg-bridge client message"
    schema["$comment"] = f"protocol {PROTOCOL_VERSION}, WebSocket subprotocol {SUBPROTOCOL}"
    return schema
