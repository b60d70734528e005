"""Structural limits on decoded messages, without sockets."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.limits import InputLimits, check_structure

LIMITS = InputLimits(max_depth=8, max_array=50, max_string=100, max_keys=20)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"next": value}
    return value


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (_nested(9), "message_too_deep"),
        ({"data": list(range(51))}, "value_too_long"),
        ({"data": {"notes": "x" * 101}}, "value_too_long"),
        ({"data": {str(n): n for n in range(21)}}, "value_too_long"),
        ({"data": {"path": [{"__proto__": {"admin": True}}]}}, "dangerous_key"),
        ({"constructor": {"prototype": 1}}, "dangerous_key"),
    ],
)
def test_each_kind_of_oversized_or_poisoned_message_has_its_own_code(value: Any, code: str) -> None:
    """Depth, array, string, object width and dangerous keys are each refused by name."""
    with pytest.raises(BridgeError) as refused:
        check_structure(value, LIMITS)
    assert refused.value.code == code


def test_a_message_at_every_limit_passes() -> None:
    """Exactly at the bounds is allowed."""
    check_structure({"a": list(range(50)), "b": "x" * 100, "c": {str(n): n for n in range(20)}}, LIMITS)
    check_structure(_nested(8), LIMITS)


def test_a_very_deep_message_is_refused_without_recursion() -> None:
    """Ten thousand levels: a clean error, not a RecursionError."""
    value: Any = []
    for _ in range(10_000):
        value = [value]
    with pytest.raises(BridgeError) as refused:
        check_structure(value, LIMITS)
    assert refused.value.code == "message_too_deep"


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=200),
        lambda c: st.lists(c, max_size=60) | st.dictionaries(st.text(max_size=12), c, max_size=25),
    )
)
def test_any_json_value_passes_or_gets_a_bridge_error(value: Any) -> None:
    """The checker never raises anything else, whatever the value."""
    code = None
    try:
        check_structure(value, LIMITS)
    except BridgeError as error:
        code = error.code
    assert code in (None, "message_too_deep", "value_too_long", "dangerous_key")
