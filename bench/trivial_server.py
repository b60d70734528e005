"""A trivial MCP server on the same SDK: one tool that adds two numbers, nothing stored.

The benchmarks run it as a child over stdio beside ``ttrpg-mcp`` so that the cost of the SDK
and the process boundary alone is measured in the same run as ``roll_dice``.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

server: MCPServer[Any] = MCPServer("trivial")


@server.tool(description="Add two numbers.")
def add(a: int, b: int) -> int:
    return a + b


if __name__ == "__main__":
    server.run("stdio")
