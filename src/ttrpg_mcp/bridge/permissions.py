"""Who may do what at a campaign's table: the one permission table, in code.

A campaign member has one of three roles. Every message the bridge accepts maps to an
:class:`Action`, and :data:`PERMISSIONS` says which roles may take it; :func:`require` is the
single check the dispatcher makes before a handler runs, so a refusal is always the same
``forbidden`` error and always comes before anything changes. MCP tools are checked apart, by
name, against :data:`TOOL_POLICY`: a game master may call any tool, players and spectators only
the read-mostly ones the spike allowed.

``docs/protocol.md`` embeds :func:`permission_table_markdown`, and a test checks the page is
current, so the table people read is the table the code enforces.

This module is pure: no I/O, no state.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal, get_args

from ttrpg_mcp.bridge.errors import BridgeError

__all__ = [
    "ACTION_DESCRIPTIONS",
    "PERMISSIONS",
    "ROLES",
    "TOOL_POLICY",
    "VISIBILITIES",
    "Action",
    "Role",
    "Visibility",
    "allowed",
    "audience_includes",
    "permission_table_markdown",
    "require",
    "roll_audience",
    "roll_visible_to",
    "tool_allowed",
]

Role = Literal["gm", "player", "spectator"]
ROLES: tuple[Role, ...] = get_args(Role)
# Who sees a dice roll: everyone, the roller and the GMs, the GMs alone, the roller alone.
Visibility = Literal["public", "gm", "blind", "self"]
VISIBILITIES: tuple[Visibility, ...] = get_args(Visibility)


class Action(StrEnum):
    """Something a member asks the table to do; the unit the permission table is written in."""

    ROLL = "roll"
    ROLL_HIDDEN = "roll_hidden"
    CHANGE_INITIATIVE = "change_initiative"
    EDIT_STATE = "edit_state"
    EDIT_CAMPAIGN = "edit_campaign"
    EDIT_OWN_CHARACTER = "edit_own_character"
    EDIT_ANY_CHARACTER = "edit_any_character"
    DRAW = "draw"
    ERASE_OWN = "erase_own"
    ERASE_ANY = "erase_any"
    CLEAR_CANVAS = "clear_canvas"
    MOVE_CURSOR = "move_cursor"
    UPDATE_PRESENCE = "update_presence"
    CALL_TOOL = "call_tool"
    MANAGE_MEMBERS = "manage_members"
    VIEW_HIDDEN = "view_hidden"


ACTION_DESCRIPTIONS: Mapping[Action, str] = MappingProxyType(
    {
        Action.ROLL: "Roll dice in the open (`dice_roll`, visibility `public`).",
        Action.ROLL_HIDDEN: "Roll dice with visibility `gm`, `blind` or `self`.",
        Action.CHANGE_INITIATIVE: "Change the initiative order, turn and round (`initiative_update`).",
        Action.EDIT_STATE: "Change `shared_notes` and `custom` in the shared state (`state_update`).",
        Action.EDIT_CAMPAIGN: "Change the campaign's data (`campaign_update`).",
        Action.EDIT_OWN_CHARACTER: "Change a character the member plays (`character_update`).",
        Action.EDIT_ANY_CHARACTER: "Change any character of the campaign (`character_update`).",
        Action.DRAW: "Draw strokes on the canvas (`canvas_draw` `stroke`).",
        Action.ERASE_OWN: "Erase one's own strokes (`canvas_draw` `erase`).",
        Action.ERASE_ANY: "Erase anyone's strokes (`canvas_draw` `erase`).",
        Action.CLEAR_CANVAS: "Clear the whole canvas (`canvas_draw` `clear`).",
        Action.MOVE_CURSOR: "Share one's cursor (`cursor_move`).",
        Action.UPDATE_PRESENCE: "Set one's presence: online, away, typing, character (`presence_update`).",
        Action.CALL_TOOL: "Call MCP tools (`tool_call`), limited by the tool policy below.",
        Action.MANAGE_MEMBERS: "Invite people, change members' roles, remove members.",
        Action.VIEW_HIDDEN: "See hidden combatants and `gm` / `blind` rolls.",
    }
)

_EVERYONE: frozenset[Role] = frozenset(ROLES)
_PLAYERS_AND_GM: frozenset[Role] = frozenset({"gm", "player"})
_GM_ONLY: frozenset[Role] = frozenset({"gm"})

PERMISSIONS: Mapping[Action, frozenset[Role]] = MappingProxyType(
    {
        Action.ROLL: _PLAYERS_AND_GM,
        Action.ROLL_HIDDEN: _PLAYERS_AND_GM,
        Action.CHANGE_INITIATIVE: _GM_ONLY,
        Action.EDIT_STATE: _PLAYERS_AND_GM,
        Action.EDIT_CAMPAIGN: _GM_ONLY,
        Action.EDIT_OWN_CHARACTER: _PLAYERS_AND_GM,
        Action.EDIT_ANY_CHARACTER: _GM_ONLY,
        Action.DRAW: _PLAYERS_AND_GM,
        Action.ERASE_OWN: _PLAYERS_AND_GM,
        Action.ERASE_ANY: _GM_ONLY,
        Action.CLEAR_CANVAS: _GM_ONLY,
        Action.MOVE_CURSOR: _EVERYONE,
        Action.UPDATE_PRESENCE: _EVERYONE,
        # Spectators may call tools too, but the tool policy leaves them only read-only ones.
        Action.CALL_TOOL: _EVERYONE,
        Action.MANAGE_MEMBERS: _GM_ONLY,
        Action.VIEW_HIDDEN: _GM_ONLY,
    }
)

# None means "every tool". The player list is the spike's allow list plus list_sources, which
# only reads; spectators watch, so they get the lookups and nothing that rolls or reveals sheets.
TOOL_POLICY: Mapping[Role, frozenset[str] | None] = MappingProxyType(
    {
        "gm": None,
        "player": frozenset(
            {"search", "get_character", "roll_dice", "get_campaign", "list_items", "list_sources"}
        ),
        "spectator": frozenset({"search", "list_sources", "get_campaign", "list_items"}),
    }
)


def allowed(role: Role, action: Action) -> bool:
    """Whether ``role`` may take ``action``."""
    return role in PERMISSIONS[action]


def require(role: Role, action: Action, what: str) -> None:
    """Raise ``forbidden`` unless ``role`` may take ``action``; ``what`` finishes "a player may not ..."."""
    if not allowed(role, action):
        raise BridgeError("forbidden", f"a {role} may not {what}", {"role": role, "action": str(action)})


def effective_tool_policy(
    configured: Mapping[Role, list[str]] | None,
) -> Mapping[Role, frozenset[str] | None]:
    """The default policy with the configured roles replaced (``["*"]`` means every tool)."""
    policy: dict[Role, frozenset[str] | None] = dict(TOOL_POLICY)
    for role, names in (configured or {}).items():
        policy[role] = None if "*" in names else frozenset(names)
    return policy


def tool_allowed(role: Role, tool: str, policy: Mapping[Role, frozenset[str] | None] = TOOL_POLICY) -> bool:
    """Whether ``role`` may call the MCP tool named ``tool`` under ``policy``."""
    if not allowed(role, Action.CALL_TOOL):
        return False
    names = policy.get(role, frozenset())
    return names is None or tool in names


def audience_includes(audience: Mapping[str, Any] | None, *, user_id: str, role: Role) -> bool:
    """Whether an event addressed to ``audience`` reaches this member.

    ``None`` is everyone in the campaign; otherwise ``{"roles": [...]}`` and/or ``{"users": [...]}``,
    and a member in either list receives it.
    """
    if audience is None:
        return True
    return role in audience.get("roles", ()) or user_id in audience.get("users", ())


def roll_visible_to(
    visibility: Visibility, *, roller_id: str | None, viewer_id: str, reveal_hidden: bool
) -> bool:
    """Whether a viewer sees a roll: ``reveal_hidden`` is whether they may take VIEW_HIDDEN (a GM).

    A blind roll is hidden from its roller too (unless the roller is a GM); a ``self`` roll is
    seen by its roller alone, GMs included.
    """
    if visibility == "public":
        return True
    if visibility == "gm":
        return reveal_hidden or viewer_id == roller_id
    if visibility == "blind":
        return reveal_hidden
    return viewer_id == roller_id


def roll_audience(visibility: Visibility, roller_id: str) -> dict[str, list[str]] | None:
    """The event ``audience`` (see :func:`audience_includes`) matching :func:`roll_visible_to`."""
    gm_roles: list[str] = [role for role in ROLES if allowed(role, Action.VIEW_HIDDEN)]
    if visibility == "public":
        return None
    if visibility == "gm":
        return {"roles": gm_roles, "users": [roller_id]}
    if visibility == "blind":
        return {"roles": gm_roles}
    return {"users": [roller_id]}


def permission_table_markdown() -> str:
    """The permission table and the tool policy as Markdown, for ``docs/protocol.md``."""
    header = "| action | what it allows | " + " | ".join(ROLES) + " |"
    rule = "| --- | --- | " + " | ".join(":---:" for _ in ROLES) + " |"
    rows = [
        f"| `{action}` | {ACTION_DESCRIPTIONS[action]} | "
        + " | ".join("✓" if allowed(role, action) else "—" for role in ROLES)
        + " |"
        for action in Action
    ]
    tools = ["", "MCP tools each role may call (`tool_call`):", ""]
    for role in ROLES:
        names = TOOL_POLICY[role]
        listed = "every tool" if names is None else ", ".join(f"`{name}`" for name in sorted(names))
        tools.append(f"- `{role}`: {listed}")
    return "\n".join([header, rule, *rows, *tools]) + "\n"
