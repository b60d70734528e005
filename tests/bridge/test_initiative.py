"""Initiative operations as pure functions over a combat: order, turns, rounds, edits.

The rules are the content store's (:mod:`ttrpg_mcp.server.combat`); the table's
``initiative_update`` is parsed at the bridge's door and applied there.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.initiative import (
    AddCombatant,
    InitiativeUpdate,
    NextTurn,
    SetOrder,
    parse_initiative_update,
)
from ttrpg_mcp.server.combat import Combat, apply_operation
from ttrpg_mcp.server.errors import ContentError


class Table:
    """A combat that operations replace, as the content store does with a play session's."""

    def __init__(self) -> None:
        self.combat = Combat()
        self.counter = 0

    @property
    def document(self) -> dict[str, Any]:
        return {
            "initiative_order": self.combat.order,
            "active_turn": self.combat.active_turn,
            "round_number": self.combat.round_number,
        }


def _op(data: dict[str, Any]) -> InitiativeUpdate:
    return parse_initiative_update(data)


def _entry(table: Table, spec: Any) -> dict[str, Any]:
    table.counter += 1
    entry = spec.model_dump(mode="json", exclude={"modifier"})
    entry["id"] = entry["id"] or f"cbt_{table.counter}"
    entry["initiative"] = entry["initiative"] if entry["initiative"] is not None else spec.modifier + 10
    return entry


def _apply(table: Table, data: dict[str, Any]) -> list[tuple[str, Any]]:
    """Apply one operation; the (key, value) of each top-level part it changed."""
    op = _op(data)
    entries = []
    if isinstance(op, SetOrder):
        entries = [_entry(table, spec) for spec in op.combatants]
    elif isinstance(op, AddCombatant):
        entries = [_entry(table, op.combatant)]
    before = table.document
    table.combat = apply_operation(table.combat, op, entries)
    after = table.document
    return [(key, after[key]) for key in after if after[key] != before[key]]


def _names(table: Table) -> list[str]:
    return [combatant["name"] for combatant in table.document["initiative_order"]]


def _turn(table: Table) -> tuple[str, int]:
    """Who is acting, and in which round."""
    document = table.document
    return document["initiative_order"][document["active_turn"]]["name"], document["round_number"]


def _table(*combatants: tuple[str, float], active_turn: int = 0, round_number: int = 1) -> Table:
    table = Table()
    _apply(
        table,
        {
            "action": "set",
            "combatants": [
                {"id": name.lower(), "name": name, "initiative": init} for name, init in combatants
            ],
        },
    )
    table.combat = Combat(table.combat.order, active_turn, round_number)
    return table


def test_set_sorts_by_initiative_keeping_ties_in_the_given_order() -> None:
    """Highest first; the two 15s stay as given; ids are filled in for combatants without one."""
    state = Table()
    _apply(
        state,
        {
            "action": "set",
            "combatants": [
                {"name": "Goblin", "initiative": 8},
                {"name": "Mira", "initiative": 15},
                {"name": "Kai", "initiative": 21.5},
                {"name": "Ogre", "initiative": 15},
            ],
        },
    )
    assert _names(state) == ["Kai", "Mira", "Ogre", "Goblin"]
    assert all(c["id"] for c in state.document["initiative_order"])


def test_set_starts_the_encounter_at_turn_zero_of_round_one_with_one_change_per_key() -> None:
    """Mid-fight, a new order resets turn and round: three changes, one per top-level key, in order."""
    state = _table(("A", 10), ("B", 5), active_turn=1, round_number=4)
    changes = _apply(state, {"action": "set", "combatants": [{"name": "C", "initiative": 3}]})
    assert [key for key, _ in changes] == ["initiative_order", "active_turn", "round_number"]
    assert (state.document["active_turn"], state.document["round_number"]) == (0, 1)


def test_next_advances_and_wraps_into_a_new_round() -> None:
    """After the last combatant comes the first, one round later."""
    state = _table(("A", 10), ("B", 5))
    assert _apply(state, {"action": "next"}) == [("active_turn", 1)]
    assert _turn(state) == ("B", 1)
    assert _apply(state, {"action": "next"}) == [("active_turn", 0), ("round_number", 2)]
    assert _turn(state) == ("A", 2)


def test_next_skips_defeated_combatants() -> None:
    """A combatant whose conditions include 'defeated' is passed over."""
    state = _table(("A", 10), ("B", 5), ("C", 1))
    _apply(state, {"action": "update", "combatant": {"id": "b", "conditions": ["defeated"]}})
    _apply(state, {"action": "next"})
    assert _turn(state) == ("C", 1)


def test_next_still_moves_when_everyone_is_defeated() -> None:
    """No endless search: with nobody able to act, the turn steps one place."""
    state = _table(("A", 10), ("B", 5))
    for combatant_id in ("a", "b"):
        _apply(state, {"action": "update", "combatant": {"id": combatant_id, "conditions": ["defeated"]}})
    _apply(state, {"action": "next"})
    assert _turn(state) == ("B", 1)
    _apply(state, {"action": "next"})
    assert _turn(state) == ("A", 2)


def test_previous_goes_back_across_rounds_but_not_before_the_start() -> None:
    """previous undoes next, even into the last round, and stops at turn 0 of round 1."""
    state = _table(("A", 10), ("B", 5), active_turn=0, round_number=2)
    _apply(state, {"action": "previous"})
    assert _turn(state) == ("B", 1)
    _apply(state, {"action": "previous"})
    assert _turn(state) == ("A", 1)
    assert _apply(state, {"action": "previous"}) == []
    assert _turn(state) == ("A", 1)


def test_next_and_previous_on_an_empty_order_change_nothing() -> None:
    """No combatants, no turns: no change (the store writes nothing, the feed sends nothing)."""
    state = Table()
    assert _apply(state, {"action": "next"}) == []
    assert _apply(state, {"action": "previous"}) == []


def test_adding_a_combatant_keeps_whoever_is_acting_acting() -> None:
    """A newcomer sorted in ahead of the acting combatant shifts the turn index with it."""
    state = _table(("A", 20), ("B", 10), ("C", 5), active_turn=1)
    _apply(state, {"action": "add", "combatant": {"id": "d", "name": "D", "initiative": 15}})
    assert _names(state) == ["A", "D", "B", "C"]
    assert _turn(state) == ("B", 1)
    _apply(state, {"action": "add", "combatant": {"name": "E", "initiative": 1}})
    assert _names(state) == ["A", "D", "B", "C", "E"]
    assert _turn(state) == ("B", 1)


def test_a_newcomer_acts_after_others_with_the_same_initiative() -> None:
    """Ties go to those already in the order."""
    state = _table(("A", 10), ("B", 5))
    _apply(state, {"action": "add", "combatant": {"name": "Z", "initiative": 10}})
    assert _names(state) == ["A", "Z", "B"]


def test_removing_a_combatant_before_the_acting_one_keeps_the_turn() -> None:
    """The acting combatant stays acting when someone ahead of it leaves."""
    state = _table(("A", 20), ("B", 10), ("C", 5), active_turn=2)
    _apply(state, {"action": "remove", "combatant_id": "a"})
    assert _turn(state) == ("C", 1)


def test_removing_the_acting_combatant_hands_the_turn_on() -> None:
    """The next able combatant acts; past the end that is a new round, as with next."""
    state = _table(("A", 20), ("B", 10), ("C", 5), active_turn=1)
    _apply(state, {"action": "remove", "combatant_id": "b"})
    assert _turn(state) == ("C", 1)
    _apply(state, {"action": "remove", "combatant_id": "c"})
    assert _turn(state) == ("A", 2)


def test_removing_the_last_combatant_leaves_an_empty_order_at_turn_zero() -> None:
    """An empty order has turn 0."""
    state = _table(("A", 20))
    _apply(state, {"action": "remove", "combatant_id": "a"})
    assert state.document["initiative_order"] == []
    assert state.document["active_turn"] == 0


def test_updating_a_combatant_in_place_is_one_change_to_that_entry() -> None:
    """hp and conditions change on the entry alone, with the entry's path."""
    state = _table(("A", 20), ("B", 10))
    changes = _apply(state, {"action": "update", "combatant": {"id": "b", "hp": 4, "conditions": ["prone"]}})
    assert [key for key, _ in changes] == ["initiative_order"]
    assert changes[0][1][1]["hp"] == 4
    assert changes[0][1][1]["conditions"] == ["prone"]
    assert changes[0][1][0] == state.document["initiative_order"][0]


def test_a_new_initiative_resorts_the_order_and_the_turn_follows_the_acting_combatant() -> None:
    """B acting, C rolls higher than everyone: C moves first and B keeps the turn."""
    state = _table(("A", 20), ("B", 10), ("C", 5), active_turn=1)
    _apply(state, {"action": "update", "combatant": {"id": "c", "initiative": 25}})
    assert _names(state) == ["C", "A", "B"]
    assert _turn(state) == ("B", 1)


def test_update_can_clear_a_field_with_null_and_leaves_unsent_fields_alone() -> None:
    """An explicit null is a value (unknown hp); a missing field is no change."""
    state = _table(("A", 20))
    _apply(state, {"action": "update", "combatant": {"id": "a", "hp": 9, "max_hp": 12}})
    _apply(state, {"action": "update", "combatant": {"id": "a", "hp": None}})
    combatant = state.document["initiative_order"][0]
    assert (combatant["hp"], combatant["max_hp"]) == (None, 12)


def test_clear_ends_the_encounter() -> None:
    """No combatants, turn 0, round 1."""
    state = _table(("A", 20), ("B", 10), active_turn=1, round_number=3)
    _apply(state, {"action": "clear"})
    assert (
        state.document["initiative_order"],
        state.document["active_turn"],
        state.document["round_number"],
    ) == (
        [],
        0,
        1,
    )


@pytest.mark.parametrize(
    "data",
    [
        {"action": "remove", "combatant_id": "nobody"},
        {"action": "update", "combatant": {"id": "nobody", "hp": 1}},
    ],
)
def test_an_unknown_combatant_is_not_found_and_nothing_changes(data: dict[str, Any]) -> None:
    """Removing or updating an id that is not in the order is a not_found error."""
    state = _table(("A", 20))
    before = json.dumps(state.document)
    with pytest.raises(ContentError) as missing:
        _apply(state, data)
    assert missing.value.code == "not_found"
    assert json.dumps(state.document) == before


def test_an_operation_that_would_break_the_document_changes_nothing_at_all() -> None:
    """Adding a second combatant with an existing id fails before any change is applied."""
    state = _table(("A", 20), ("B", 10), active_turn=1)
    before = json.dumps(state.document)
    with pytest.raises(ContentError) as refused:
        _apply(state, {"action": "add", "combatant": {"id": "b", "name": "B again", "initiative": 30}})
    assert refused.value.code == "invalid_input"
    assert json.dumps(state.document) == before


@pytest.mark.parametrize(
    "data",
    [
        {"action": "teleport"},
        {"action": "set"},
        {"action": "set", "combatants": [{"initiative": 3}]},
        {"action": "remove"},
        {"action": "update", "combatant": {"hp": 3}},
        {"action": "update", "combatant": {"id": "a", "hp": "3"}},
        {"action": "next", "extra": True},
    ],
)
def test_malformed_operations_are_invalid_messages(data: dict[str, Any]) -> None:
    """The union on action refuses unknown actions, missing parts, wrong types and extra fields."""
    with pytest.raises(BridgeError) as bad:
        parse_initiative_update(data)
    assert bad.value.code == "invalid_message"


def test_parsing_picks_the_model_by_action() -> None:
    """The discriminator yields the operation's own model."""
    assert isinstance(parse_initiative_update({"action": "next"}), NextTurn)
    assert isinstance(parse_initiative_update({"action": "set", "combatants": []}), SetOrder)
    assert isinstance(parse_initiative_update({"action": "add", "combatant": {"name": "X"}}), AddCombatant)


def test_a_combatant_may_bring_a_modifier_and_roll_its_initiative() -> None:
    """modifier is accepted; without an initiative the combatant rolls (here: 10 + modifier)."""
    state = Table()
    _apply(
        state,
        {"action": "set", "combatants": [{"name": "Scout", "modifier": 4}, {"name": "Ox", "initiative": 12}]},
    )
    assert _names(state) == ["Scout", "Ox"]
    assert state.document["initiative_order"][0]["initiative"] == 14


_ops = st.one_of(
    st.just({"action": "next"}),
    st.just({"action": "previous"}),
    st.just({"action": "clear"}),
    st.builds(
        lambda i, n: {"action": "add", "combatant": {"id": f"c{i}", "name": f"C{i}", "initiative": n}},
        st.integers(0, 6),
        st.integers(0, 20),
    ),
    st.integers(0, 6).map(lambda i: {"action": "remove", "combatant_id": f"c{i}"}),
    st.builds(
        lambda i, n, down: {
            "action": "update",
            "combatant": {"id": f"c{i}", "initiative": n, "conditions": ["defeated"] if down else []},
        },
        st.integers(0, 6),
        st.integers(0, 20),
        st.booleans(),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ops, max_size=30))
def test_any_sequence_of_operations_keeps_the_order_sorted_and_the_turn_in_range(
    ops: list[dict[str, Any]],
) -> None:
    """Whatever the GM does: the order stays sorted, the turn points at a combatant, rounds stay >= 1."""
    state = Table()
    for data in ops:
        acting_before = None
        document = state.document
        if document["initiative_order"]:
            acting_before = document["initiative_order"][document["active_turn"]]["id"]
        refused: str | None = None
        try:
            _apply(state, data)
        except ContentError as error:
            refused = error.code
        if refused is not None:
            assert refused in ("not_found", "invalid_input")
            continue
        document = state.document
        order = document["initiative_order"]
        assert [c["initiative"] for c in order] == sorted((c["initiative"] for c in order), reverse=True)
        assert document["active_turn"] == 0 or 0 <= document["active_turn"] < len(order)
        assert document["round_number"] >= 1
        if data["action"] in ("add", "update") and acting_before is not None:
            assert order[document["active_turn"]]["id"] == acting_before
        assert len({c["id"] for c in order}) == len(order)
