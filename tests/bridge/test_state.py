"""The shared table state without I/O: paths, operations, validation, versions, conflicts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.state import (
    HISTORY_LIMIT,
    MAX_CUSTOM_BYTES,
    MAX_NOTES_LENGTH,
    Path,
    SharedState,
    apply_change,
    validate_document,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _state() -> SharedState:
    return SharedState.new("camp_test", now=T0)


def _error(
    state: SharedState, path: list[Any], operation: Any, value: Any, previous: int | None
) -> BridgeError:
    before = (json.dumps(state.to_json()), state.version)
    with pytest.raises(BridgeError) as raised:
        apply_change(state, path, operation, value, previous, now=T0 + timedelta(seconds=1))
    assert (json.dumps(state.to_json()), state.version) == before, "a refused change changed the state"
    return raised.value


def test_a_new_state_is_an_empty_table_at_version_zero() -> None:
    """Empty notes and custom; the snapshot adds version and time (the initiative is not kept here)."""
    snapshot = _state().snapshot()
    assert snapshot == {
        "shared_notes": "",
        "custom": {},
        "version": 0,
        "last_update": "2030-01-01T12:00:00+00:00",
    }


def test_an_accepted_set_bumps_the_version_and_reports_the_change() -> None:
    """set writes the value, bumps version by one, stamps last_update and returns the change to broadcast."""
    state = _state()
    later = T0 + timedelta(minutes=5)
    change = apply_change(state, ["shared_notes"], "set", "The bridge is out.", 0, now=later)
    assert state.document["shared_notes"] == "The bridge is out."
    assert state.version == 1
    assert state.last_update == later
    assert change.view() == {
        "path": ["shared_notes"],
        "operation": "set",
        "value": "The bridge is out.",
        "version": 1,
        "previous_version": 0,
        "last_update": "2030-01-01T12:05:00+00:00",
    }


def test_set_at_the_end_of_a_list_appends_and_beyond_it_is_a_bad_path() -> None:
    """Index == length appends; a larger or negative index names the path in an invalid_params error."""
    state = _state()
    apply_change(state, ["custom", "loot"], "set", ["rope"], None, now=T0)
    apply_change(state, ["custom", "loot", 1], "set", "lantern", None, now=T0)
    assert state.document["custom"]["loot"] == ["rope", "lantern"]
    for index in (5, -1):
        error = _error(state, ["custom", "loot", index], "set", "x", None)
        assert error.code == "invalid_params"
        assert error.data == {"path": ["custom", "loot", index]}
        assert f"['custom', 'loot', {index}]" in error.message


def test_merge_is_shallow_and_needs_objects_on_both_sides() -> None:
    """merge adds and replaces top-level members of an object; a non-object on either side is refused."""
    state = _state()
    apply_change(state, ["custom"], "set", {"weather": {"sky": "grey"}, "day": 3}, None, now=T0)
    change = apply_change(state, ["custom"], "merge", {"weather": {"wind": "strong"}}, None, now=T0)
    assert state.document["custom"] == {"weather": {"wind": "strong"}, "day": 3}
    assert change.value == {"weather": {"wind": "strong"}}
    assert _error(state, ["custom"], "merge", ["not", "an", "object"], None).code == "invalid_params"
    assert _error(state, ["custom", "day"], "merge", {"a": 1}, None).code == "invalid_params"
    assert _error(state, ["shared_notes"], "merge", {"a": 1}, None).code == "invalid_params"


def test_deleting_a_top_level_key_resets_it_and_is_reported_as_a_set_of_the_default() -> None:
    """Top-level keys always exist: delete puts the default back, and clients are told exactly that."""
    state = _state()
    apply_change(state, ["shared_notes"], "set", "Kept a while.", None, now=T0)
    change = apply_change(state, ["shared_notes"], "delete", None, None, now=T0)
    assert state.document["shared_notes"] == ""
    assert (change.operation, change.value) == ("set", "")


def test_deleting_a_nested_member_removes_it() -> None:
    """Inside custom, delete removes the member and is reported as a delete."""
    state = _state()
    apply_change(state, ["custom"], "set", {"a": 1, "b": 2}, None, now=T0)
    change = apply_change(state, ["custom", "a"], "delete", None, None, now=T0)
    assert state.document["custom"] == {"b": 2}
    assert (change.operation, change.value) == ("delete", None)
    assert _error(state, ["custom", "a"], "delete", None, None).code == "invalid_params"


@pytest.mark.parametrize(
    "path",
    [
        [],
        ["version"],
        ["last_update"],
        ["dice_rolls"],
        ["secret_plans"],
        [3],
        ["custom", True],
        ["custom", 1.5],
        ["initiative_order"],
        ["round_number"],
        ["shared_notes", "x"],
        ["custom", "missing", "deeper"],
    ],
)
def test_bad_paths_are_refused_with_invalid_params(path: list[Any]) -> None:
    """Empty, read-only, unknown, mistyped or dangling paths change nothing and name themselves."""
    error = _error(_state(), path, "set", 1, None)
    assert error.code == "invalid_params"
    assert error.data is not None
    assert error.data["path"] == path


def test_an_unknown_operation_is_refused() -> None:
    """Only set, merge and delete exist."""
    assert _error(_state(), ["shared_notes"], "append", "x", None).code == "invalid_params"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["shared_notes"], "x" * (MAX_NOTES_LENGTH + 1)),
        (["shared_notes"], 42),
        (["custom"], {"blob": "x" * MAX_CUSTOM_BYTES}),
        (["custom"], {"bad": float("nan")}),
        (["custom"], ["a list"]),
    ],
)
def test_a_change_that_would_make_the_document_invalid_changes_nothing(path: list[Any], value: Any) -> None:
    """Types and bounds are checked on the whole document after the change."""
    error = _error(_state(), path, "set", value, None)
    assert error.code == "invalid_params"
    assert error.data is not None
    assert error.data["errors"]


def test_deeply_nested_custom_values_are_refused_before_being_walked() -> None:
    """Nesting is bounded, so a hostile value cannot make validation recurse without end."""
    value: Any = "bottom"
    for _ in range(100):
        value = [value]
    assert _error(_state(), ["custom", "deep"], "set", value, None).code == "invalid_params"


def test_a_stale_change_to_a_path_changed_since_is_a_conflict_with_the_current_version() -> None:
    """Two edits from version 0 to the same notes: the second is refused and told version 1."""
    state = _state()
    apply_change(state, ["shared_notes"], "set", "first", 0, now=T0)
    error = _error(state, ["shared_notes"], "set", "second", 0)
    assert error.code == "conflict"
    assert error.data is not None
    assert (error.data["current_version"], error.data["path"]) == (1, ["shared_notes"])
    assert state.document["shared_notes"] == "first"


def test_a_stale_change_to_an_untouched_path_is_accepted() -> None:
    """Changes since previous_version elsewhere in the document do not block this one."""
    state = _state()
    apply_change(state, ["custom", "weather"], "set", "rain", 0, now=T0)
    change = apply_change(state, ["custom", "day"], "set", 2, 0, now=T0)
    assert change.version == 2
    assert state.document["custom"] == {"weather": "rain", "day": 2}


def test_a_change_above_or_below_a_changed_path_overlaps_it() -> None:
    """A prefix either way is an overlap: the parent object, or a member inside the changed one."""
    state = _state()
    apply_change(state, ["custom", "weather"], "set", {"sky": "grey"}, 0, now=T0)
    assert _error(state, ["custom"], "merge", {"x": 1}, 0).code == "conflict"
    assert _error(state, ["custom", "weather", "sky"], "set", "blue", 0).code == "conflict"


def test_deleting_a_list_element_is_reported_as_a_delete_though_the_next_one_moves_up() -> None:
    """The element after the deleted one takes its index; the change is still a plain delete."""
    state = _state()
    apply_change(state, ["custom", "list"], "set", ["a", "b"], None, now=T0)
    change = apply_change(state, ["custom", "list", 0], "delete", None, None, now=T0)
    assert state.document["custom"]["list"] == ["b"]
    assert (change.operation, change.value) == ("delete", None)


def test_removing_a_list_element_conflicts_with_stale_changes_to_other_elements() -> None:
    """A delete shifts indexes, so a stale change to any element of that list is refused."""
    state = _state()
    apply_change(state, ["custom", "list"], "set", ["a", "b", "c"], None, now=T0)
    base = state.version
    apply_change(state, ["custom", "list", 0], "delete", None, base, now=T0)
    assert _error(state, ["custom", "list", 1], "set", "B", base).code == "conflict"


def test_two_stale_appends_to_one_list_do_not_both_land_on_one_index() -> None:
    """Appending claims the list, so the second appender from the same version gets a conflict."""
    state = _state()
    apply_change(state, ["custom", "list"], "set", [], None, now=T0)
    base = state.version
    apply_change(state, ["custom", "list", 0], "set", "first", base, now=T0)
    assert _error(state, ["custom", "list", 0], "set", "second", base).code == "conflict"


def test_a_previous_version_from_the_future_is_invalid_and_one_older_than_history_conflicts() -> None:
    """Unknown versions are refused; beyond the remembered history nothing proves a change safe."""
    state = _state()
    assert _error(state, ["shared_notes"], "set", "x", 1).code == "invalid_params"
    for index in range(HISTORY_LIMIT + 1):
        apply_change(state, ["custom", f"k{index}"], "set", index, None, now=T0)
    assert len(state.history) == HISTORY_LIMIT
    assert _error(state, ["shared_notes"], "set", "x", 0).code == "conflict"
    assert apply_change(state, ["shared_notes"], "set", "x", 1, now=T0).version == HISTORY_LIMIT + 2


def test_an_unconditional_change_is_never_a_conflict() -> None:
    """previous_version None applies whatever happened since (the bridge's own operations)."""
    state = _state()
    apply_change(state, ["shared_notes"], "set", "a", 0, now=T0)
    assert apply_change(state, ["shared_notes"], "set", "b", None, now=T0).previous_version is None


def test_the_state_survives_a_json_round_trip() -> None:
    """to_json is plain JSON; from_json rebuilds document, version, time and history."""
    state = _state()
    apply_change(state, ["custom", "map"], "set", {"zoom": 2}, None, now=T0)
    apply_change(state, ["shared_notes"], "set", "Round one.", None, now=T0 + timedelta(hours=1))
    rebuilt = SharedState.from_json("camp_test", json.loads(json.dumps(state.to_json())))
    assert rebuilt == state


def test_loading_a_document_from_an_older_schema_fills_in_new_keys() -> None:
    """A stored document without a key added later comes back with that key's default."""
    rebuilt = SharedState.from_json(
        "camp_test",
        {"document": {"shared_notes": "old"}, "version": 3, "last_update": T0.isoformat(), "history": []},
    )
    assert rebuilt.document["custom"] == {}
    assert rebuilt.document["shared_notes"] == "old"


def test_loading_a_document_that_still_holds_the_old_initiative_keys_leaves_them_behind() -> None:
    """Documents stored before the initiative moved to the content store load without those keys."""
    old = {"initiative_order": [{"id": "a", "name": "Orc"}], "active_turn": 0, "round_number": 4}
    rebuilt = SharedState.from_json(
        "camp_test",
        {"document": old | {"shared_notes": "kept"}, "version": 2, "last_update": T0.isoformat()},
    )
    assert rebuilt.document == {"shared_notes": "kept", "custom": {}}
    assert rebuilt.version == 2


def test_a_naive_time_is_refused() -> None:
    """Times are aware UTC everywhere; a naive one is ambiguous."""
    with pytest.raises(ValueError, match="naive"):
        apply_change(_state(), ["shared_notes"], "set", "x", None, now=datetime(2030, 1, 1))


# -- properties -------------------------------------------------------------------------------

_keys = st.sampled_from(["a", "b", "c"])
_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=5))
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=8,
)
_paths: st.SearchStrategy[list[Any]] = st.one_of(
    st.just(["shared_notes"]),
    st.just(["custom"]),
    st.lists(st.one_of(_keys, st.integers(0, 3)), min_size=1, max_size=3).map(lambda rest: ["custom", *rest]),
    st.just(["initiative_order"]),  # no longer shared state: always refused
)
_values = st.one_of(
    _json,
    st.integers(-2, 10),
    st.text(max_size=10),
)
_changes = st.tuples(_paths, st.sampled_from(["set", "merge", "delete"]), _values)


@settings(max_examples=300, deadline=None)
@given(st.lists(_changes, max_size=25))
def test_any_sequence_of_changes_keeps_the_document_valid_and_counts_versions(
    changes: list[tuple[list[Any], Any, Any]],
) -> None:
    """Valid or not, in any order: the document stays valid and version == the number accepted."""
    state = _state()
    accepted = 0
    for path, operation, value in changes:
        refused: str | None = None
        try:
            change = apply_change(state, path, operation, value, state.version, now=T0)
        except BridgeError as error:
            refused = error.code
        if refused is not None:
            assert refused == "invalid_params"
            continue
        accepted += 1
        assert change.version == accepted
    assert state.version == accepted
    assert validate_document(state.document) == state.document
    json.dumps(state.snapshot())


def _client_apply(document: dict[str, Any], change: dict[str, Any]) -> None:
    """What a client does with a state_update: the reported operation at the reported path."""
    *parents, last = change["path"]
    node: Any = document
    for step in parents:
        node = node[step]
    if change["operation"] == "set":
        if isinstance(node, list) and last == len(node):
            node.append(change["value"])
        else:
            node[last] = change["value"]
    elif change["operation"] == "merge":
        node[last] = {**node[last], **change["value"]}
    else:
        del node[last]


@settings(max_examples=300, deadline=None)
@given(st.lists(_changes, max_size=25))
def test_a_client_applying_each_reported_change_stays_identical_to_the_server(
    changes: list[tuple[list[Any], Any, Any]],
) -> None:
    """Replaying the reported changes on the starting document gives the server's document."""
    state = _state()
    apply_change(state, ["custom"], "set", {"list": ["a", "b"], "a": {"b": 1}}, None, now=T0)
    client = json.loads(json.dumps(state.document))
    for path, operation, value in changes:
        try:
            change = apply_change(state, path, operation, value, None, now=T0)
        except BridgeError:
            continue
        _client_apply(client, json.loads(json.dumps(change.view())))
        assert client == state.document


_object_paths: st.SearchStrategy[Path] = st.one_of(
    st.just(("shared_notes",)),
    st.lists(_keys, max_size=2).map(lambda rest: ("custom", *rest)),
)


def _overlap(a: Path, b: Path) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


@settings(max_examples=300, deadline=None)
@given(_object_paths, _object_paths)
def test_two_changes_from_one_version_both_land_only_when_their_paths_do_not_overlap(
    first: Path, second: Path
) -> None:
    """Concurrent edits from the same version: one wins and one conflicts exactly when paths overlap."""
    state = _state()
    apply_change(state, ["custom"], "set", {"a": {"b": {}, "c": {}}, "b": {}, "c": {}}, None, now=T0)
    base = state.version

    def value_for(path: Path) -> Any:
        return "text" if path == ("shared_notes",) else {}

    outcomes = []
    for path in (first, second):
        try:
            apply_change(state, list(path), "set", value_for(path), base, now=T0)
            outcomes.append("accepted")
        except BridgeError as error:
            outcomes.append(error.code)
    if _overlap(first, second):
        assert outcomes == ["accepted", "conflict"]
    else:
        assert outcomes == ["accepted", "accepted"]
