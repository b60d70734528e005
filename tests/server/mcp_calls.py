"""Helpers for driving a real ``ttrpg-mcp`` child process over stdio."""

from __future__ import annotations

from typing import Any

import anyio
from mcp import ClientSession
from mcp.types import CallToolResult, TextContent

# Generous: a loaded 2-core CI machine may be slow, and a hang must still fail, not stall.
CALL_TIMEOUT = 30.0


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; return its structured content."""
    with anyio.fail_after(CALL_TIMEOUT):
        result = await session.call_tool(tool, arguments)
    assert not result.is_error, f"{tool} failed: {text_of(result)}"
    assert result.structured_content is not None, f"{tool} returned no structured content"
    return result.structured_content


async def call_error(session: ClientSession, tool: str, **arguments: Any) -> str:
    """Call a tool that must fail; return its error text."""
    with anyio.fail_after(CALL_TIMEOUT):
        result = await session.call_tool(tool, arguments)
    assert result.is_error, f"{tool} should have failed but returned {result.structured_content}"
    return text_of(result)
