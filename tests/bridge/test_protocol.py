"""The message models, without sockets: parsing, refusals, the schema, and the documentation."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttrpg_mcp.bridge import protocol
from ttrpg_mcp.bridge.errors import ERROR_CODES, BridgeError

DOCS = Path(__file__).parents[2] / "docs" / "protocol.md"


def test_a_valid_tool_call_parses_into_its_model() -> None:
    """The discriminator picks the model and defaults fill in the envelope."""
    message = protocol.parse_client_message(
        {"type": "tool_call", "method": "roll_dice", "params": {"expression": "1d6"}}
    )
    assert isinstance(message, protocol.ToolCall)
    assert message.id
    assert message.version == protocol.PROTOCOL_VERSION


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ([], "invalid_message"),
        ({"type": 3}, "invalid_message"),
        ({"type": "teleport"}, "unknown_type"),
        ({"type": "tool_call"}, "invalid_message"),
        ({"type": "tool_call", "method": "x", "params": []}, "invalid_message"),
        ({"type": "heartbeat", "surprise": 1}, "invalid_message"),
        ({"type": "dice_roll", "data": {"expression": "1d6", "visibility": "everyone"}}, "invalid_message"),
    ],
)
def test_a_wrong_message_is_refused_with_its_code(value: Any, code: str) -> None:
    """Each kind of wrong message has its own code, and a message that says where."""
    with pytest.raises(BridgeError) as refused:
        protocol.parse_client_message(value)
    assert refused.value.code == code


def test_deeply_nested_json_is_refused_not_crashed() -> None:
    """A bomb of nested arrays is an invalid_json error, never a RecursionError."""
    with pytest.raises(BridgeError) as refused:
        protocol.decode_json("[" * 100_000 + "]" * 100_000)
    assert refused.value.code == "invalid_json"


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_parsing_never_raises_anything_but_a_bridge_error(value: Any) -> None:
    """Whatever JSON value arrives, the parser answers with a model or a BridgeError."""
    code = None
    try:
        protocol.parse_client_message(value)
    except BridgeError as error:
        code = error.code
    assert code is None or code in ERROR_CODES


def test_replies_carry_the_envelope_and_leave_out_empty_fields() -> None:
    """envelope() fills id, timestamp and version; None values are dropped."""
    reply = protocol.envelope("ack", request_id="r1", session_id=None, data=None)
    assert set(reply) == {"id", "type", "timestamp", "version", "request_id"}
    error = protocol.error_message(BridgeError("forbidden", "no"), request_id="r2")
    assert error["error"] == {"code": "forbidden", "message": "no", "data": None}


def test_every_message_type_and_error_code_is_documented() -> None:
    """docs/protocol.md has a section for every type and a row for every code."""
    text = DOCS.read_text()
    headings = set(re.findall(r"^### `([a-z_]+)`", text, flags=re.MULTILINE))
    assert headings >= protocol.CLIENT_TYPES | protocol.SERVER_TYPES
    table = text.split("## Error codes", 1)[1]
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE))
    assert rows == set(ERROR_CODES)


def test_every_documented_client_example_is_a_valid_message() -> None:
    """The JSON examples in the client section parse with the real models."""
    text = DOCS.read_text()
    client_part = text.split("## Client messages", 1)[1].split("## Bridge messages", 1)[0]
    examples = re.findall(r"```json\n(.*?)\n```", client_part, flags=re.DOTALL)
    assert len(examples) >= len(protocol.CLIENT_TYPES)
    for example in examples:
        protocol.parse_client_message(json.loads(example))


def test_the_schema_command_prints_every_client_type() -> None:
    """`ttrpg-bridge schema` prints a JSON Schema that names each type."""
    output = subprocess.run(
        [sys.executable, "-m", "ttrpg_mcp.bridge.cli", "schema"], capture_output=True, text=True, check=True
    ).stdout
    schema = json.loads(output)
    assert set(schema["discriminator"]["mapping"]) == set(protocol.CLIENT_TYPES)


def test_a_dice_result_lists_every_die_as_rolls_and_the_rest_as_modifier() -> None:
    """``rolls`` holds every die in order (dropped ones too) and ``modifier`` what is added."""
    from ttrpg_mcp.dice import roll  # only this test rolls

    plain = protocol.dice_result_fields(roll("2d6+3").model_dump(mode="json"))
    assert len(plain["rolls"]) == 2
    assert plain["modifier"] == 3
    assert plain["total"] == sum(plain["rolls"]) + 3
    kept = protocol.dice_result_fields(roll("2d20kh1-1").model_dump(mode="json"))
    assert len(kept["rolls"]) == 2
    assert kept["modifier"] == -1
    assert kept["total"] == max(kept["rolls"]) - 1
