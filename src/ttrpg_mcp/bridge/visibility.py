"""What each participant may see of a campaign event: one rendering per viewer, no gaps.

Every campaign event reaches every participant, so each client's ``seq`` stays gap-free and a
missing number always means a lost message. What differs is the rendering: a blind roll reaches
players as "Mira rolled in secret" with no numbers; a hidden combatant reaches them as a masked
entry that keeps the initiative indexes valid (``mask_combatants``, for the content store's
combat events; ``state_update`` never carries the initiative, which is not shared state). The
event log stores the full payload; this module decides, at delivery (and at replay), what a
viewer gets. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ttrpg_mcp.bridge.permissions import Action, Role, allowed

__all__ = ["Viewer", "can_see_roll", "mask_combatants", "render_event"]

HIDDEN_NAME = "Hidden combatant"


@dataclass(frozen=True)
class Viewer:
    """Who an event is rendered for."""

    user_id: str
    role: Role

    @property
    def reveal_hidden(self) -> bool:
        return allowed(self.role, Action.VIEW_HIDDEN)


def can_see_roll(visibility: str, roller_id: str, viewer: Viewer) -> bool:
    """public: everyone; gm: the roller and GMs; blind: GMs only; self: the roller only."""
    if visibility == "public":
        return True
    if visibility == "gm":
        return viewer.user_id == roller_id or viewer.reveal_hidden
    if visibility == "blind":
        return viewer.reveal_hidden
    return viewer.user_id == roller_id  # "self"


def mask_combatants(value: Any) -> Any:
    """A combatant list (or one combatant) with hidden entries reduced to id and a placeholder."""
    if isinstance(value, list):
        return [mask_combatants(item) for item in value]
    if isinstance(value, dict) and value.get("hidden"):
        return {"id": value.get("id"), "name": HIDDEN_NAME, "hidden": True}
    return value


def _render_roll(payload: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    if can_see_roll(payload.get("visibility", "public"), payload.get("player_id", ""), viewer):
        return payload
    hidden = {
        "roll_id": payload.get("roll_id"),
        "player_id": payload.get("player_id"),
        "player_name": payload.get("player_name"),
        "visibility": payload.get("visibility"),
        "hidden": True,
    }
    # How it was rolled is no secret: a GM's roll_dice tool call reads "rolled with the dice tool".
    if payload.get("source") is not None:
        hidden["source"] = payload["source"]
    return hidden


def render_event(event_type: str, payload: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    """The payload of one event as ``viewer`` may see it."""
    if event_type == "dice_roll":
        return _render_roll(payload, viewer)
    return payload
