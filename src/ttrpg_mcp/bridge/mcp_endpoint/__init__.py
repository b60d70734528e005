"""``/mcp``: the remote MCP endpoint through which an agent joins a table by URL."""

from __future__ import annotations

from ttrpg_mcp.bridge.mcp_endpoint.endpoint import MCP_PATH, McpEndpoint

__all__ = ["MCP_PATH", "McpEndpoint"]
