"""Initiative tracking as operations on the shared state: set, next, previous, add, remove, update, clear.

An ``initiative_update`` message carries one :data:`InitiativeUpdate` (a pydantic union on
``action``). :func:`apply_initiative` works out the new ``initiative_order``, ``active_turn`` and
``round_number`` from the current state, validates the result as a whole, and only then applies
it through :func:`ttrpg_mcp.bridge.state.apply_change`, one ``set`` per top-level key that
actually changes, unconditionally (``previous_version=None``: the bridge serialises these
operations itself). So an operation either applies fully or not at all, and the returned
:class:`~ttrpg_mcp.bridge.state.StateChange` list is exactly what to broadcast, in order.

The rules a table expects:

* the order is sorted by initiative, highest first; ties keep the order they were given in;
* ``next`` and ``previous`` skip combatants whose conditions include ``defeated`` (when every
  combatant is defeated they step one place, so a turn always moves); passing the end of the
  order starts the next round, and ``previous`` never goes before turn 0 of round 1;
* ``add``, ``remove`` and ``update`` keep whoever is acting the one acting: the turn index
  follows that combatant. Removing the acting combatant hands the turn to the next one, exactly
  as ``next`` would have.

``active_turn`` past the end of the order (only a direct ``state_update`` can leave it there) is
read as the last combatant. This module is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.state import (
    MAX_COMBATANTS,
    Combatant,
    SharedState,
    StateChange,
    apply_change,
    validate_document,
)

__all__ = [
    "DEFEATED",
    "AddCombatant",
    "ClearInitiative",
    "CombatantPatch",
    "InitiativeUpdate",
    "NextTurn",
    "PreviousTurn",
    "RemoveCombatant",
    "SetOrder",
    "UpdateCombatant",
    "apply_initiative",
    "parse_initiative_update",
    "sort_by_initiative",
]

DEFEATED = "defeated"


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SetOrder(_Op):
    """Replace the order with these combatants (sorted here), back to turn 0 of round 1."""

    action: Literal["set"]
    combatants: list[Combatant] = Field(max_length=MAX_COMBATANTS)


class NextTurn(_Op):
    """The next combatant acts; past the last one a new round begins."""

    action: Literal["next"]


class PreviousTurn(_Op):
    """Go back one turn (a mistake at the table), not before turn 0 of round 1."""

    action: Literal["previous"]


class AddCombatant(_Op):
    """Insert one combatant where its initiative puts it; whoever is acting keeps acting."""

    action: Literal["add"]
    combatant: Combatant


class RemoveCombatant(_Op):
    """Take one combatant out; if it was acting, the turn passes on."""

    action: Literal["remove"]
    combatant_id: str = Field(min_length=1, max_length=64)


class CombatantPatch(BaseModel):
    """The fields of one combatant to change, found by ``id``; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    initiative: int | float | None = Field(default=None, allow_inf_nan=False)
    hp: int | None = None
    max_hp: int | None = None
    conditions: list[str] | None = None
    hidden: bool | None = None
    character_id: str | None = None


class UpdateCombatant(_Op):
    """Patch one combatant; a new initiative re-sorts the order, keeping the acting one acting."""

    action: Literal["update"]
    combatant: CombatantPatch


class ClearInitiative(_Op):
    """End the encounter: no combatants, turn 0 of round 1."""

    action: Literal["clear"]


InitiativeUpdate = Annotated[
    SetOrder | NextTurn | PreviousTurn | AddCombatant | RemoveCombatant | UpdateCombatant | ClearInitiative,
    Field(discriminator="action"),
]
_ADAPTER: TypeAdapter[InitiativeUpdate] = TypeAdapter(InitiativeUpdate)


def parse_initiative_update(data: Any) -> InitiativeUpdate:
    """The operation in an ``initiative_update`` message's data, or ``invalid_message``."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as error:
        problems = [
            {"loc": list(problem["loc"]), "msg": problem["msg"], "type": problem["type"]}
            for problem in error.errors(include_url=False, include_input=False)
        ]
        raise BridgeError(
            "invalid_message", "the initiative_update data does not match its schema", {"errors": problems}
        ) from None


def sort_by_initiative(order: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Highest initiative first; Python's sort is stable, so ties keep their given order."""
    return sorted(order, key=lambda combatant: -combatant["initiative"])


def _defeated(combatant: dict[str, Any]) -> bool:
    return DEFEATED in combatant["conditions"]


def _step(order: Sequence[dict[str, Any]], turn: int, direction: int) -> tuple[int, int]:
    """The next (or previous) combatant able to act from ``turn``, and the rounds crossed (-1, 0, 1)."""
    count = len(order)
    for distance in range(1, count + 1):
        position = turn + direction * distance
        if not _defeated(order[position % count]):
            return position % count, (position // count)
    # Everyone is defeated: step one place anyway, so a turn always moves.
    position = turn + direction
    return position % count, position // count


def _index_of(order: Sequence[dict[str, Any]], combatant_id: str) -> int:
    for index, combatant in enumerate(order):
        if combatant["id"] == combatant_id:
            return index
    raise BridgeError(
        "not_found", f"no combatant {combatant_id!r} in the initiative order", {"combatant_id": combatant_id}
    )


def _plan(
    op: InitiativeUpdate, order: list[dict[str, Any]], turn: int, round_number: int
) -> tuple[list[dict[str, Any]], int, int]:
    """The new (order, active_turn, round_number) after ``op``."""
    if order:
        turn = min(turn, len(order) - 1)
    match op:
        case SetOrder(combatants=combatants):
            return sort_by_initiative([c.model_dump(mode="json") for c in combatants]), 0, 1
        case ClearInitiative():
            return [], 0, 1
        case NextTurn():
            if not order:
                return order, turn, round_number
            turn, rounds = _step(order, turn, +1)
            return order, turn, round_number + rounds
        case PreviousTurn():
            if not order:
                return order, turn, round_number
            previous, rounds = _step(order, turn, -1)
            if round_number + rounds < 1:
                return order, 0, 1
            return order, previous, round_number + rounds
        case AddCombatant(combatant=combatant):
            new = combatant.model_dump(mode="json")
            # After every combatant with the same or higher initiative: a newcomer acts last in a tie.
            position = sum(1 for other in order if other["initiative"] >= new["initiative"])
            new_order = [*order[:position], new, *order[position:]]
            return new_order, turn + 1 if order and position <= turn else turn, round_number
        case RemoveCombatant(combatant_id=combatant_id):
            index = _index_of(order, combatant_id)
            new_order = [*order[:index], *order[index + 1 :]]
            if not new_order:
                return new_order, 0, round_number
            if index < turn:
                return new_order, turn - 1, round_number
            if index > turn:
                return new_order, turn, round_number
            # The acting combatant leaves: whoever `next` would have chosen acts now.
            remaining = [*order[:index], {**order[index], "conditions": [DEFEATED]}, *order[index + 1 :]]
            successor, rounds = _step(remaining, index, +1)
            successor_id = order[successor]["id"]
            return new_order, _index_of(new_order, successor_id), round_number + rounds
        case UpdateCombatant(combatant=patch):
            index = _index_of(order, patch.id)
            changes = patch.model_dump(mode="json", exclude_unset=True, exclude={"id"})
            new_order = list(order)
            new_order[index] = {**order[index], **changes}
            if "initiative" in changes and changes["initiative"] != order[index]["initiative"]:
                acting_id = order[turn]["id"]
                new_order = sort_by_initiative(new_order)
                return new_order, _index_of(new_order, acting_id), round_number
            return new_order, turn, round_number


def apply_initiative(
    state: SharedState, op: InitiativeUpdate, *, now: datetime | None = None
) -> list[StateChange]:
    """Apply ``op`` to ``state``; the changes made, in order (none if nothing changed).

    Raises ``not_found`` for an unknown combatant id and ``invalid_params`` when the result would
    be invalid (two combatants with one id, say); ``state`` is untouched then.
    """
    document = state.document
    old_order: list[dict[str, Any]] = document["initiative_order"]
    order, turn, round_number = _plan(op, list(old_order), document["active_turn"], document["round_number"])
    if order == old_order and turn == document["active_turn"] and round_number == document["round_number"]:
        return []
    # Check the end result before applying anything, so that the operation is all or nothing.
    candidate = validate_document(
        {**document, "initiative_order": order, "active_turn": turn, "round_number": round_number},
        path=("initiative_order",),
    )
    changes: list[StateChange] = []
    if candidate["initiative_order"] != old_order:
        changed = [
            i
            for i, (a, b) in enumerate(zip(old_order, candidate["initiative_order"], strict=False))
            if a != b
        ]
        if len(old_order) == len(candidate["initiative_order"]) and len(changed) == 1:
            # One combatant patched in place: a change to that entry alone.
            index = changed[0]
            changes.append(
                apply_change(
                    state,
                    ("initiative_order", index),
                    "set",
                    candidate["initiative_order"][index],
                    None,
                    now=now,
                )
            )
        else:
            changes.append(
                apply_change(
                    state, ("initiative_order",), "set", candidate["initiative_order"], None, now=now
                )
            )
    if turn != document["active_turn"]:
        changes.append(apply_change(state, ("active_turn",), "set", turn, None, now=now))
    if round_number != document["round_number"]:
        changes.append(apply_change(state, ("round_number",), "set", round_number, None, now=now))
    return changes
