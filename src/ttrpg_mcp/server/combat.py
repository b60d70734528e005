"""The one initiative tracker: operations on a play session's combat, as pure functions.

The table's ``initiative_update`` (through the bridge) and Claude's ``set_initiative``,
``next_turn`` and ``update_initiative`` tools all change the same thing, the combat of the
campaign's running play session in the content store; this module is the rule book they share.
A :class:`Combat` is the order (combatants as JSON objects), the acting index and the round;
:func:`apply_operation` returns the combat after one :data:`CombatOperation`, validated as a
whole, or raises and changes nothing.

The rules a table expects:

* the order is sorted by initiative, highest first; ties keep the order they were given in;
* ``next`` and ``previous`` skip defeated combatants (``defeated`` set, or ``defeated`` among
  the conditions); when every combatant is defeated they step one place, so a turn always
  moves; passing the end of the order starts the next round, and ``previous`` never goes
  before turn 0 of round 1;
* ``add``, ``remove`` and ``update`` keep whoever is acting the one acting: the turn index
  follows that combatant. Removing the acting combatant hands the turn to the next one, as
  ``next`` would have;
* a combatant given without an initiative rolls ``1d20 + modifier`` (the caller resolves
  that, with the character sheet when ``character_id`` is given, before calling in here).

Pure: no I/O; the random roll is the caller's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from ttrpg_mcp.server.errors import InvalidInputError, NotFoundError

__all__ = [
    "DEFEATED",
    "MAX_COMBATANTS",
    "AddCombatant",
    "ClearInitiative",
    "Combat",
    "CombatOperation",
    "CombatantPatch",
    "CombatantSpec",
    "NextTurn",
    "PreviousTurn",
    "RemoveCombatant",
    "SetOrder",
    "UpdateCombatant",
    "apply_operation",
    "is_defeated",
    "operation_problems",
    "parse_operation",
    "sort_by_initiative",
]

DEFEATED = "defeated"
MAX_COMBATANTS = 200
_MAX_CONDITIONS = 32


class _Strict(BaseModel):
    # Strict: "5" is not an hp and true is not an initiative; what is stored is what was meant.
    model_config = ConfigDict(extra="forbid", strict=True)


class CombatantSpec(_Strict):
    """A combatant as a caller gives it; a missing initiative is rolled (1d20 + modifier)."""

    id: str | None = Field(default=None, min_length=1, max_length=64, description="Kept if given")
    name: str | None = Field(default=None, min_length=1, max_length=100, description="Unless character_id")
    initiative: int | float | None = Field(default=None, allow_inf_nan=False)
    modifier: int = Field(default=0, ge=-100, le=100, description="Initiative bonus used when rolling")
    character_id: str | None = Field(default=None, max_length=64)
    hp: int | None = None
    max_hp: int | None = Field(default=None, ge=0)
    armor_class: int | None = None
    conditions: list[str] = Field(default_factory=list, max_length=_MAX_CONDITIONS)
    hidden: bool = False

    @model_validator(mode="after")
    def _named(self) -> CombatantSpec:
        if not self.name and not self.character_id:
            raise ValueError("a combatant needs a name or a character_id")
        return self


class CombatantPatch(_Strict):
    """The fields of one combatant to change, found by ``id``; fields left out stay as they are."""

    id: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    initiative: int | float | None = Field(default=None, allow_inf_nan=False)
    hp: int | None = None
    max_hp: int | None = None
    armor_class: int | None = None
    conditions: list[str] | None = Field(default=None, max_length=_MAX_CONDITIONS)
    hidden: bool | None = None
    defeated: bool | None = None
    character_id: str | None = None


class SetOrder(_Strict):
    """Replace the order with these combatants (sorted here), back to turn 0 of round 1."""

    action: Literal["set"]
    combatants: list[CombatantSpec] = Field(max_length=MAX_COMBATANTS)


class NextTurn(_Strict):
    """The next combatant acts; past the last one a new round begins."""

    action: Literal["next"]


class PreviousTurn(_Strict):
    """Go back one turn (a mistake at the table), not before turn 0 of round 1."""

    action: Literal["previous"]


class AddCombatant(_Strict):
    """Insert one combatant where its initiative puts it; whoever is acting keeps acting."""

    action: Literal["add"]
    combatant: CombatantSpec


class RemoveCombatant(_Strict):
    """Take one combatant out; if it was acting, the turn passes on."""

    action: Literal["remove"]
    combatant_id: str = Field(min_length=1, max_length=64)


class UpdateCombatant(_Strict):
    """Patch one combatant; a new initiative re-sorts the order, keeping the acting one acting."""

    action: Literal["update"]
    combatant: CombatantPatch


class ClearInitiative(_Strict):
    """End the encounter: no combatants, turn 0 of round 1."""

    action: Literal["clear"]


CombatOperation = Annotated[
    SetOrder | NextTurn | PreviousTurn | AddCombatant | RemoveCombatant | UpdateCombatant | ClearInitiative,
    Field(discriminator="action"),
]
_ADAPTER: TypeAdapter[CombatOperation] = TypeAdapter(CombatOperation)


def parse_operation(data: Any) -> CombatOperation:
    """The operation in ``data`` (a JSON object with ``action``); ValidationError when malformed."""
    return _ADAPTER.validate_python(data)


def operation_problems(error: ValidationError) -> list[dict[str, Any]]:
    """A ValidationError as a JSON list of problems (location, message, type)."""
    return [
        {"loc": list(problem["loc"]), "msg": problem["msg"], "type": problem["type"]}
        for problem in error.errors(include_url=False, include_input=False)
    ]


@dataclass(frozen=True)
class Combat:
    """A combat as the tracker sees it: the order, who acts, which round."""

    order: list[dict[str, Any]] = field(default_factory=list)
    active_turn: int = 0
    round_number: int = 1


def is_defeated(combatant: dict[str, Any]) -> bool:
    return bool(combatant.get("defeated")) or DEFEATED in (combatant.get("conditions") or [])


def sort_by_initiative(order: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Highest initiative first; Python's sort is stable, so ties keep their given order."""
    return sorted(order, key=lambda combatant: -combatant["initiative"])


def _step(order: Sequence[dict[str, Any]], turn: int, direction: int) -> tuple[int, int]:
    """The next (or previous) combatant able to act from ``turn``, and the rounds crossed (-1, 0, 1)."""
    count = len(order)
    for distance in range(1, count + 1):
        position = turn + direction * distance
        if not is_defeated(order[position % count]):
            return position % count, (position // count)
    # Everyone is defeated: step one place anyway, so a turn always moves.
    position = turn + direction
    return position % count, position // count


def _index_of(order: Sequence[dict[str, Any]], combatant_id: str) -> int:
    for index, combatant in enumerate(order):
        if combatant["id"] == combatant_id:
            return index
    raise NotFoundError(f"no combatant {combatant_id!r} in the initiative order")


def _plan(op: CombatOperation, combat: Combat, entries: list[dict[str, Any]]) -> Combat:
    order, turn, round_number = list(combat.order), combat.active_turn, combat.round_number
    if order:
        turn = min(turn, len(order) - 1)
    match op:
        case SetOrder():
            return Combat(sort_by_initiative(entries), 0, 1)
        case ClearInitiative():
            return Combat([], 0, 1)
        case NextTurn():
            if not order:
                return combat
            turn, rounds = _step(order, turn, +1)
            return Combat(order, turn, round_number + rounds)
        case PreviousTurn():
            if not order:
                return combat
            previous, rounds = _step(order, turn, -1)
            if round_number + rounds < 1:
                return Combat(order, 0, 1)
            return Combat(order, previous, round_number + rounds)
        case AddCombatant():
            (new,) = entries
            # After every combatant with the same or higher initiative: a newcomer acts last in a tie.
            position = sum(1 for other in order if other["initiative"] >= new["initiative"])
            new_order = [*order[:position], new, *order[position:]]
            return Combat(new_order, turn + 1 if order and position <= turn else turn, round_number)
        case RemoveCombatant(combatant_id=combatant_id):
            index = _index_of(order, combatant_id)
            new_order = [*order[:index], *order[index + 1 :]]
            if not new_order:
                return Combat(new_order, 0, round_number)
            if index < turn:
                return Combat(new_order, turn - 1, round_number)
            if index > turn:
                return Combat(new_order, turn, round_number)
            # The acting combatant leaves: whoever `next` would have chosen acts now.
            remaining = [*order[:index], {**order[index], "defeated": True}, *order[index + 1 :]]
            successor, rounds = _step(remaining, index, +1)
            successor_id = order[successor]["id"]
            return Combat(new_order, _index_of(new_order, successor_id), round_number + rounds)
        case UpdateCombatant(combatant=patch):
            index = _index_of(order, patch.id)
            changes = patch.model_dump(mode="json", exclude_unset=True, exclude={"id"})
            new_order = list(order)
            new_order[index] = {**order[index], **changes}
            if "initiative" in changes and changes["initiative"] is None:
                raise InvalidInputError("a combatant's initiative cannot be removed")
            if "initiative" in changes and changes["initiative"] != order[index]["initiative"]:
                acting_id = order[turn]["id"]
                new_order = sort_by_initiative(new_order)
                return Combat(new_order, _index_of(new_order, acting_id), round_number)
            return Combat(new_order, turn, round_number)
    raise InvalidInputError(f"unknown initiative action {op!r}")  # pragma: no cover - union is closed


def apply_operation(combat: Combat, op: CombatOperation, entries: Sequence[dict[str, Any]] = ()) -> Combat:
    """The combat after ``op``; ``entries`` are the resolved combatants of a ``set`` or ``add``.

    Raises ``NotFoundError`` for an unknown combatant id and ``InvalidInputError`` when the
    result would be invalid (two combatants with one id, say); nothing is changed then.
    """
    result = _plan(op, combat, list(entries))
    ids = [combatant["id"] for combatant in result.order]
    if len(ids) != len(set(ids)):
        raise InvalidInputError("combatant ids in the initiative order must be unique")
    if len(ids) > MAX_COMBATANTS:
        raise InvalidInputError(f"at most {MAX_COMBATANTS} combatants")
    if not result.order:
        return replace(result, active_turn=0)
    return result
