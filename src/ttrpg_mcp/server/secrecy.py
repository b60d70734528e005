"""What of a campaign's content a viewer may see: the game master's secrets stay with the GM.

Campaign content carries GM-only parts, and this module is the one place that knows them:

* a **note** has a ``visibility``: ``"gm"`` (the GM alone), ``"players"`` (the whole table) or
  one player's user id (that player and the GM); its author always sees it;
* an **NPC**'s ``secrets`` and ``notes`` (the GM's notes) and a **location**'s ``notes``;
* a **character**'s and an **item**'s ``gm_notes``;
* the **campaign**'s ``world_state`` keys listed in its ``secret_keys``;
* **hidden combatants** in an initiative order: players get a placeholder that keeps the order's
  indexes (``active_turn``) valid, as the bridge's table events do;
* a **rules source** imported with ``gm_only`` (an adventure module): left out of search hits,
  of ``list_sources`` and of ``rules://`` reads.

A viewer is ``(role, user_id, campaign_id)``. The bridge says who is asking in each request's
``_meta`` under :data:`META_KEY` (clients cannot set it: the bridge overwrites it); a request
without it is the local GM (Claude Desktop over stdio) and sees everything. A GM's full view
holds only for the campaign the viewer sits at: a GM of one campaign is a player elsewhere.

Every function here is pure (dicts in, dicts out, no I/O), so the bridge can mask table
events with the same rules: :func:`redact` takes an entity kind, its JSON form and a viewer,
and answers the viewer's copy, or ``None`` when the viewer may not see the entity at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = [
    "GM",
    "HIDDEN_COMBATANT_NAME",
    "KINDS",
    "LOCAL_GM",
    "META_KEY",
    "NOTE_VISIBILITIES",
    "Role",
    "Viewer",
    "can_read_note",
    "check_note_visibility",
    "default_note_visibility",
    "redact",
    "redact_all",
    "redact_campaign",
    "redact_character",
    "redact_combatant",
    "redact_initiative",
    "redact_item",
    "redact_location",
    "redact_note",
    "redact_npc",
    "redact_session",
    "viewer_from_meta",
]

Role = Literal["gm", "player", "spectator"]
ROLES: tuple[Role, ...] = get_args(Role)
GM: Role = "gm"

# The request ``_meta`` key the bridge fills with the caller (namespaced, as MCP asks of
# implementation-specific ``_meta`` keys).
META_KEY = "ttrpg/viewer"

# The named visibilities of a note; any other value is the user id of the one player who may read it.
NOTE_VISIBILITIES = ("gm", "players")
_MAX_USER_ID = 100

HIDDEN_COMBATANT_NAME = "Hidden combatant"

# The fields each kind keeps from everyone but the GM.
_GM_FIELDS: Mapping[str, tuple[str, ...]] = {
    "campaign": ("secret_keys",),
    "character": ("gm_notes",),
    "npc": ("secrets", "notes"),
    "location": ("notes",),
    "item": ("gm_notes",),
}
# What a hidden field becomes for a viewer who may not read it: the same type, empty, so that a
# result still fits the tool's output schema.
_EMPTY: Mapping[str, Any] = {"secret_keys": [], "gm_notes": "", "secrets": [], "notes": ""}


@dataclass(frozen=True)
class Viewer:
    """Who a result is for: a role at a campaign, and a user id (``None`` for the local GM)."""

    role: Role
    user_id: str | None = None
    campaign_id: str | None = None

    def is_gm_of(self, campaign_id: str | None) -> bool:
        """Whether this viewer sees the GM-only parts of ``campaign_id``'s content."""
        if self.role != GM:
            return False
        return self.campaign_id is None or campaign_id is None or self.campaign_id == campaign_id

    def to_meta(self) -> dict[str, Any]:
        """The ``_meta`` entry that carries this viewer to the MCP server."""
        return {META_KEY: {"role": self.role, "user_id": self.user_id, "campaign_id": self.campaign_id}}


# The local GM: a stdio client with no ``_meta`` (Claude Desktop on the GM's machine).
LOCAL_GM = Viewer(GM)
# What a malformed viewer entry falls back to: the narrowest view, never the widest.
_NOBODY = Viewer("spectator")


def viewer_from_meta(meta: Mapping[str, Any] | None) -> Viewer:
    """The viewer a request's ``_meta`` names; without the key, the local GM.

    A present but malformed entry (an unknown role, a non-string id) is a spectator: whoever
    sent it meant to restrict the view, so a mistake must not widen it.
    """
    if not meta or META_KEY not in meta:
        return LOCAL_GM
    entry = meta[META_KEY]
    if not isinstance(entry, Mapping):
        return _NOBODY
    role, user_id, campaign_id = entry.get("role"), entry.get("user_id"), entry.get("campaign_id")
    if role not in ROLES:
        return _NOBODY
    if not (user_id is None or isinstance(user_id, str)) or not (
        campaign_id is None or isinstance(campaign_id, str)
    ):
        return _NOBODY
    return Viewer(role, user_id or None, campaign_id or None)


def default_note_visibility(viewer: Viewer) -> str:
    """A GM's note is the GM's own until shared; a player's note is for the table."""
    return "gm" if viewer.role == GM else "players"


def check_note_visibility(value: str) -> str:
    """``value`` cleaned up, or ``ValueError`` when it is neither a named visibility nor a user id."""
    value = value.strip()
    if not value or len(value) > _MAX_USER_ID:
        raise ValueError(
            f"visibility must be 'gm', 'players' or one player's user id (1-{_MAX_USER_ID} characters)"
        )
    return value


def can_read_note(note: Mapping[str, Any], viewer: Viewer) -> bool:
    """GM: every note of their campaign; others: shared notes, notes to them, and their own."""
    if viewer.is_gm_of(note.get("campaign_id")):
        return True
    if viewer.user_id and note.get("author") == viewer.user_id:
        return True
    visibility = note.get("visibility", "gm")
    if visibility == "players":
        return True
    if visibility == "gm":
        return False
    return viewer.user_id is not None and visibility == viewer.user_id


def _strip(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    copy = dict(data)
    for field in _GM_FIELDS[kind]:
        if field in copy:
            copy[field] = _EMPTY[field]
    return copy


def redact_campaign(data: Mapping[str, Any], viewer: Viewer) -> dict[str, Any]:
    """A campaign without its secret ``world_state`` keys (nor the list naming them)."""
    if viewer.is_gm_of(data.get("id")):
        return dict(data)
    copy = _strip("campaign", data)
    secret = set(data.get("secret_keys") or ())
    world = data.get("world_state")
    if isinstance(world, Mapping):
        copy["world_state"] = {key: value for key, value in world.items() if key not in secret}
    return copy


def redact_character(data: Mapping[str, Any], viewer: Viewer) -> dict[str, Any]:
    return dict(data) if viewer.is_gm_of(data.get("campaign_id")) else _strip("character", data)


def redact_npc(data: Mapping[str, Any], viewer: Viewer) -> dict[str, Any]:
    return dict(data) if viewer.is_gm_of(data.get("campaign_id")) else _strip("npc", data)


def redact_location(data: Mapping[str, Any], viewer: Viewer) -> dict[str, Any]:
    return dict(data) if viewer.is_gm_of(data.get("campaign_id")) else _strip("location", data)


def redact_item(data: Mapping[str, Any], viewer: Viewer) -> dict[str, Any]:
    return dict(data) if viewer.is_gm_of(data.get("campaign_id")) else _strip("item", data)


def redact_note(data: Mapping[str, Any], viewer: Viewer) -> dict[str, Any] | None:
    """The note, or ``None`` when the viewer may not read it at all."""
    return dict(data) if can_read_note(data, viewer) else None


def redact_combatant(
    data: Mapping[str, Any], viewer: Viewer, campaign_id: str | None = None
) -> dict[str, Any]:
    """A hidden combatant as a placeholder: its id and place in the order, nothing else."""
    if not data.get("hidden") or viewer.is_gm_of(campaign_id):
        return dict(data)
    return {
        "id": data.get("id"),
        "name": HIDDEN_COMBATANT_NAME,
        "initiative": data.get("initiative", 0),
        "character_id": None,
        "hp": None,
        "max_hp": None,
        "armor_class": None,
        "conditions": [],
        "hidden": True,
        "defeated": False,
    }


def redact_initiative(
    data: Mapping[str, Any], viewer: Viewer, campaign_id: str | None = None
) -> dict[str, Any]:
    """An initiative view (``order`` and ``current``) with hidden combatants masked."""
    campaign_id = campaign_id or data.get("campaign_id")
    copy = dict(data)
    if isinstance(data.get("order"), list):
        copy["order"] = [redact_combatant(entry, viewer, campaign_id) for entry in data["order"]]
    if isinstance(data.get("current"), Mapping):
        copy["current"] = redact_combatant(data["current"], viewer, campaign_id)
    return copy


def redact_session(data: Mapping[str, Any], viewer: Viewer) -> dict[str, Any]:
    """A play session with its initiative order masked."""
    copy = dict(data)
    if isinstance(data.get("initiative"), list):
        campaign_id = data.get("campaign_id")
        copy["initiative"] = [redact_combatant(entry, viewer, campaign_id) for entry in data["initiative"]]
    return copy


_REDACTORS: Mapping[str, Any] = {
    "campaign": redact_campaign,
    "character": redact_character,
    "npc": redact_npc,
    "location": redact_location,
    "item": redact_item,
    "note": redact_note,
    "combatant": redact_combatant,
    "initiative": redact_initiative,
    "session": redact_session,
}
KINDS = tuple(_REDACTORS)
# list_items speaks in plurals; table events and resources in singulars: both are accepted.
_PLURALS = {
    "campaigns": "campaign",
    "characters": "character",
    "npcs": "npc",
    "locations": "location",
    "items": "item",
    "notes": "note",
    "combatants": "combatant",
    "sessions": "session",
}


def redact(kind: str, data: Mapping[str, Any], viewer: Viewer) -> dict[str, Any] | None:
    """``data`` (an entity of ``kind``, as JSON) as ``viewer`` may see it; ``None``: not at all.

    ``kind`` is one of :data:`KINDS` or its plural. An unknown kind is an error, not a pass:
    content this module does not know cannot be judged safe.
    """
    name = _PLURALS.get(kind, kind)
    redactor = _REDACTORS.get(name)
    if redactor is None:
        raise ValueError(f"no secrecy rule for {kind!r}; known kinds: {list(KINDS)}")
    result: dict[str, Any] | None = redactor(data, viewer)
    return result


def redact_all(kind: str, items: Iterable[Mapping[str, Any]], viewer: Viewer) -> list[dict[str, Any]]:
    """The entities of a list the viewer may see, each redacted, in order."""
    return [seen for item in items if (seen := redact(kind, item, viewer)) is not None]
