"""The table events that report changes to campaign content, and what each viewer sees of them.

The bridge follows the MCP content store's change log (:mod:`ttrpg_mcp.bridge.content_feed`)
and turns each change into one of these events. Every one of them, live or replayed, reaches a
seat through :func:`mask_content_event`, the single point where campaign content is cut down
for a viewer: hidden combatants are masked for players and spectators here, and every other
GM-only part of an entity is left out by the MCP server's own rules (:mod:`ttrpg_mcp.server.secrecy`),
so that live events and replays show a viewer no more than the MCP server itself would. A note
the viewer may not read still takes its place in the sequence (so ``seq`` stays gap-free for
every seat) but arrives as ``{"note": null, "hidden": true}``; as a ``note_update`` that is the
note's removal for that seat (it may have been readable before: turned GM-only, say), which
clients apply to whatever they loaded (docs/protocol.md, ``note_update``). Pure: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ttrpg_mcp.bridge.visibility import mask_combatants
from ttrpg_mcp.server import secrecy

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.visibility import Viewer

__all__ = ["CONTENT_EVENTS", "EVENT_FOR_KIND", "event_type_for", "mask_content_event"]

# The event a change to each kind of entity becomes (a note that is new is ``note_added``).
EVENT_FOR_KIND = {
    "campaign": "campaign_update",
    "character": "character_update",
    "npc": "npc_update",
    "location": "location_update",
    "item": "item_update",
    "note": "note_update",
    "play_session": "combat_update",
    "roll": "dice_roll",
}
# The payload key (and secrecy kind) of the entity each content event carries.
_ENTITY_KEYS = {
    "campaign_update": "campaign",
    "character_update": "character",
    "npc_update": "npc",
    "location_update": "location",
    "item_update": "item",
    "note_added": "note",
    "note_update": "note",
}
CONTENT_EVENTS = frozenset({*EVENT_FOR_KIND.values(), "note_added", "content_deleted"} - {"dice_roll"})


def event_type_for(kind: str, operation: str) -> str:
    """The table event for a change of ``kind`` (``campaign``, ``note``...) and ``operation``."""
    if operation == "deleted":
        return "content_deleted"
    if kind == "note" and operation == "created":
        return "note_added"
    return EVENT_FOR_KIND[kind]


def _mask_combat(payload: dict[str, Any]) -> dict[str, Any]:
    masked = dict(payload)
    if "order" in masked:
        masked["order"] = mask_combatants(masked["order"])
    if isinstance(masked.get("current"), dict):
        masked["current"] = mask_combatants(masked["current"])
    return masked


def mask_content_event(event_type: str, payload: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    """``payload`` of a content event as ``viewer`` may see it (a GM sees it whole)."""
    if event_type == "combat_update":
        return payload if viewer.reveal_hidden else _mask_combat(payload)
    key = _ENTITY_KEYS.get(event_type)
    entity = payload.get(key) if key is not None else None
    if key is None or not isinstance(entity, dict):
        return payload
    seen = secrecy.redact(key, entity, secrecy.Viewer(viewer.role, viewer.user_id))
    if seen is None:
        return payload | {key: None, "hidden": True}
    return payload | {key: seen}
