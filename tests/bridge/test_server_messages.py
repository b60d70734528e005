"""What the bridge describes for clients: its server messages (against the docs) and its HTTP bodies."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ttrpg_mcp.bridge import protocol
from ttrpg_mcp.bridge.server_messages import SERVER_ADAPTER

DOCS = Path(__file__).parents[2] / "docs" / "protocol.md"
# Event examples in the docs show only the fields that matter; the bridge always adds these.
ENVELOPE_DEFAULTS: dict[str, Any] = {"id": "doc", "timestamp": 1764115200000, "version": "1.0.0"}


def _documented_server_examples() -> list[dict[str, Any]]:
    text = DOCS.read_text()
    part = text.split("## Bridge messages", 1)[1].split("## Roles and permissions", 1)[0]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", part, flags=re.DOTALL)]


def test_every_documented_server_example_fits_the_server_schema() -> None:
    """Each bridge message and event shown in docs/protocol.md validates against its model."""
    examples = _documented_server_examples()
    assert {example["type"] for example in examples} == protocol.SERVER_TYPES
    for example in examples:
        SERVER_ADAPTER.validate_python(ENVELOPE_DEFAULTS | example)


def test_a_server_message_with_an_undescribed_field_is_refused() -> None:
    """A field the description does not know fails, so clients' generated types cannot drift silently."""
    message = ENVELOPE_DEFAULTS | {"type": "heartbeat", "surprise": 1}
    with pytest.raises(ValidationError, match="surprise"):
        SERVER_ADAPTER.validate_python(message)


def test_the_schema_command_prints_every_server_type() -> None:
    """`ttrpg-bridge schema --messages server` names each message type the bridge sends."""
    output = subprocess.run(
        [sys.executable, "-m", "ttrpg_mcp.bridge.cli", "schema", "--messages", "server"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    schema = json.loads(output)
    assert set(schema["discriminator"]["mapping"]) == set(protocol.SERVER_TYPES)


def test_the_schema_command_prints_the_http_bodies() -> None:
    """`ttrpg-bridge schema --messages http` describes the HTTP API's bodies, for generated client types."""
    output = subprocess.run(
        [sys.executable, "-m", "ttrpg_mcp.bridge.cli", "schema", "--messages", "http"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    definitions = json.loads(output)["$defs"]
    assert {"TokenPair", "LoginRequest", "CampaignDetail", "InviteView", "ErrorResponse"} <= set(definitions)
    assert definitions["TokenPair"]["properties"]["expires_in"]["type"] == "integer"
