"""The MCP server refuses arguments a tool does not take, and words schema errors as sentences.

The SDK validates a call's arguments with the tool's pydantic model, which ignores names it
does not know: ``create_character {"class": "Wizard"}`` would create a character and drop the
class in silence. :func:`check_tool_arguments` wraps the server's ``call_tool`` (the one door
every ``tools/call`` goes through) so that such a call fails as a tool error naming the unknown
argument, the accepted ones and the closest match (see :mod:`ttrpg_mcp.tool_arguments`), and
so that a validation failure reads ``invalid_input: create_character: level: input should be
greater than or equal to 1`` instead of pydantic's report with its type tags and links.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from ttrpg_mcp.tool_arguments import find_unknown, sentence

__all__ = ["check_tool_arguments"]

# A refusal names at most this many problems; the rest are counted.
_MAX_PROBLEMS = 5

CallTool = Callable[..., Awaitable[Any]]


def check_tool_arguments(server: MCPServer[Any]) -> None:
    """Make every ``tools/call`` of ``server`` refuse unknown arguments, with helpful messages."""
    original: CallTool = server.call_tool
    # Input schemas by tool name, read once: listing every tool per call cost a quarter of a
    # millisecond of a 1 ms call. A name not seen yet (a tool added later) refreshes the map.
    schemas: dict[str, dict[str, Any]] = {}

    async def call_tool(name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        if name not in schemas:
            schemas.update({tool.name: tool.input_schema for tool in await server.list_tools()})
        schema = schemas.get(name)
        if schema is not None:
            unknown = find_unknown(name, arguments, schema)
            if unknown is not None:
                raise ToolError(f"invalid_input: {unknown.message}")
        try:
            return await original(name, arguments, context)
        except ToolError as error:
            cause = error.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(f"invalid_input: {validation_sentences(name, cause)}") from cause
            raise

    # The SDK's request handler calls self.call_tool: an attribute on the instance takes its place.
    setattr(server, "call_tool", call_tool)  # noqa: B010  # mypy refuses assigning to a method


def validation_sentences(tool: str, error: ValidationError) -> str:
    """pydantic's problems as ``tool: where: what`` sentences, joined; no values, no links."""
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    lines = [sentence(tool, problem["loc"], problem["msg"]) for problem in problems[:_MAX_PROBLEMS]]
    if len(problems) > _MAX_PROBLEMS:
        lines.append(f"and {len(problems) - _MAX_PROBLEMS} more")
    return "; ".join(lines)
