"""Initiative operations as pure functions over the shared state: order, turns, rounds, edits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
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
    apply_initiative,
    parse_initiative_update,
)
from ttrpg_mcp.bridge.state import SharedState, apply_change, validate_document

T0 = datetime(2030, 1, 1, 20, 0, tzinfo=UTC)


def _op(data: dict[str, Any]) -> InitiativeUpdate:
    return parse_initiative_update(data)


def _apply(state: SharedState, data: dict[str, Any]) -> list[tuple[list[Any], Any]]:
    """Apply one operation; the (path, value) of each change it made."""
    return [(list(change.path), change.value) for change in apply_initiative(state, _op(data), now=T0)]


def _names(state: SharedState) -> list[str]:
    return [combatant["name"] for combatant in state.document["initiative_order"]]


def _turn(state: SharedState) -> tuple[str, int]:
    """Who is acting, and in which round."""
    document = state.document
    return document["initiative_order"][document["active_turn"]]["name"], document["round_number"]


def _table(*combatants: tuple[str, float], **extra: Any) -> SharedState:
    state = SharedState.new("camp_test", now=T0)
    _apply(
        state,
        {
            "action": "set",
            "combatants": [
                {"id": name.lower(), "name": name, "initiative": init} for name, init in combatants
            ],
        },
    )
    for key, value in extra.items():
        apply_change(state, [key], "set", value, None, now=T0)
    return state


def test_set_sorts_by_initiative_keeping_ties_in_the_given_order() -> None:
    """Highest first; the two 15s stay as given; ids are filled in for combatants without one."""
    state = SharedState.new("camp_test", now=T0)
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
    assert all(c["id"].startswith("cmb_") for c in state.document["initiative_order"])


def test_set_starts_the_encounter_at_turn_zero_of_round_one_with_one_change_per_key() -> None:
    """Mid-fight, a new order resets turn and round: three changes, one per top-level key, in order."""
    state = _table(("A", 10), ("B", 5), active_turn=1, round_number=4)
    changes = _apply(state, {"action": "set", "combatants": [{"name": "C", "initiative": 3}]})
    assert [path for path, _ in changes] == [["initiative_order"], ["active_turn"], ["round_number"]]
    assert (state.document["active_turn"], state.document["round_number"]) == (0, 1)


def test_next_advances_and_wraps_into_a_new_round() -> None:
    """After the last combatant comes the first, one round later."""
    state = _table(("A", 10), ("B", 5))
    assert _apply(state, {"action": "next"}) == [(["active_turn"], 1)]
    assert _turn(state) == ("B", 1)
    assert _apply(state, {"action": "next"}) == [(["active_turn"], 0), (["round_number"], 2)]
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
    """No combatants, no turns: no change and no version bump."""
    state = SharedState.new("camp_test", now=T0)
    assert _apply(state, {"action": "next"}) == []
    assert _apply(state, {"action": "previous"}) == []
    assert state.version == 0


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
    assert [path for path, _ in changes] == [["initiative_order", 1]]
    assert changes[0][1]["hp"] == 4
    assert changes[0][1]["conditions"] == ["prone"]


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
    before = json.dumps(state.to_json())
    with pytest.raises(BridgeError) as missing:
        _apply(state, data)
    assert missing.value.code == "not_found"
    assert json.dumps(state.to_json()) == before


def test_an_operation_that_would_break_the_document_changes_nothing_at_all() -> None:
    """Adding a second combatant with an existing id fails before any change is applied."""
    state = _table(("A", 20), ("B", 10), active_turn=1)
    before = json.dumps(state.to_json())
    with pytest.raises(BridgeError) as refused:
        _apply(state, {"action": "add", "combatant": {"id": "b", "name": "B again", "initiative": 30}})
    assert refused.value.code == "invalid_params"
    assert json.dumps(state.to_json()) == before


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


def test_players_see_hidden_combatants_masked_in_initiative_changes() -> None:
    """An order with a hidden monster reaches players with its placeholder in place."""
    state = SharedState.new("camp_test", now=T0)
    op = _op(
        {"action": "set", "combatants": [{"name": "Lurker", "initiative": 30, "hidden": True, "hp": 50}]}
    )
    (change,) = apply_initiative(state, op, now=T0)
    assert change.view(reveal_hidden=False)["value"] == [
        {"id": state.document["initiative_order"][0]["id"], "name": "Hidden combatant", "hidden": True}
    ]


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
    state = SharedState.new("camp_test", now=T0)
    for data in ops:
        acting_before = None
        document = state.document
        if document["initiative_order"]:
            acting_before = document["initiative_order"][document["active_turn"]]["id"]
        refused: str | None = None
        try:
            apply_initiative(state, _op(data), now=T0)
        except BridgeError as error:
            refused = error.code
        if refused is not None:
            assert refused in ("not_found", "invalid_params")
            continue
        document = state.document
        order = document["initiative_order"]
        assert [c["initiative"] for c in order] == sorted((c["initiative"] for c in order), reverse=True)
        assert document["active_turn"] == 0 or 0 <= document["active_turn"] < len(order)
        assert document["round_number"] >= 1
        if data["action"] in ("add", "update") and acting_before is not None:
            assert order[document["active_turn"]]["id"] == acting_before
        assert validate_document(document) == document
