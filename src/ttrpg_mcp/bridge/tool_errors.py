"""A tool's ``isError`` result as the bridge's error, with the server's own code kept.

Shared by ``dispatch`` (tool calls) and ``table`` (the table's actions that call tools), below both.
"""

from __future__ import annotations

import re
from typing import Any

from ttrpg_mcp.bridge.errors import BridgeError

__all__ = ["tool_error"]

# The SDK prefixes a tool's error text with "Error executing tool NAME: "; after it, this
# project's server puts its own code ("not_found: ...").
_SDK_PREFIX = re.compile(r"^Error executing tool \S+: ")
_TOOL_CODE = re.compile(r"^([a-z_]+): ")


def tool_error(name: str, result: dict[str, Any]) -> BridgeError:
    """A tool's ``isError`` result as an error: its text as the message, its code in ``data``."""
    text = " ".join(part.get("text", "") for part in result.get("content", []) if isinstance(part, dict))
    text = _SDK_PREFIX.sub("", text.strip()) or f"tool {name!r} failed"
    data: dict[str, Any] = {"tool": name, "content": result.get("content", [])}
    match = _TOOL_CODE.match(text)
    if match:
        data["tool_code"] = match.group(1)
        if match.group(1) == "storage_unavailable":  # the content store's disk, not the caller
            return BridgeError("storage_unavailable", text, data)
    return BridgeError("tool_error", text, data)
