"""The table's ``initiative_update`` message: one operation on the campaign's one tracker.

The initiative a table sees *is* the combat of the campaign's running play session in the MCP
content store (ARCHITECTURE decision 5): Claude's ``set_initiative``, ``next_turn`` and
``update_hp`` and the table's ``initiative_update`` move the same combatants. This module only
checks the message's shape at the bridge's door (a bad one never reaches a child); the rules
(sorting, turns, rounds, who keeps acting) live in :mod:`ttrpg_mcp.server.combat`, applied by
the ``update_initiative`` tool, and the change reaches every seat as a ``combat_update`` event
from the content feed. Combatants given without an ``initiative`` roll ``1d20 + modifier``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.server.combat import (
    DEFEATED,
    AddCombatant,
    ClearInitiative,
    CombatantPatch,
    CombatantSpec,
    CombatOperation,
    NextTurn,
    PreviousTurn,
    RemoveCombatant,
    SetOrder,
    UpdateCombatant,
    operation_problems,
    parse_operation,
)

__all__ = [
    "DEFEATED",
    "AddCombatant",
    "ClearInitiative",
    "CombatantPatch",
    "CombatantSpec",
    "InitiativeUpdate",
    "NextTurn",
    "PreviousTurn",
    "RemoveCombatant",
    "SetOrder",
    "UpdateCombatant",
    "parse_initiative_update",
]

InitiativeUpdate = CombatOperation


def parse_initiative_update(data: Any) -> InitiativeUpdate:
    """The operation in an ``initiative_update`` message's data, or ``invalid_message``."""
    try:
        return parse_operation(data)
    except ValidationError as error:
        raise BridgeError(
            "invalid_message",
            "the initiative_update data does not match its schema",
            {"errors": operation_problems(error)},
        ) from None
