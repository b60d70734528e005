"""The bridge's pool of stdio MCP children: handshake, id mapping, timeouts, cancel, restart.

Modules, from the pure core outwards: ``jsonrpc`` (messages), ``inflight`` (ids, progress
tokens, deadlines of one child's requests), ``restarts`` (backoff and the crash-loop breaker) and
``routing`` (which sessions a notification reaches) do no I/O; ``catalog`` (the cached tools,
resources and prompts), ``process`` (environment, process group, dying with the bridge),
``child`` (one child and its JSON-RPC session), ``supervisor`` (the live children, kept warm and
respawned) and ``pool`` (:class:`McpPool`, the public face: which child serves a request).

Errors the pool raises are :class:`~ttrpg_mcp.bridge.errors.BridgeError` with these codes:
``mcp_error`` (the server answered with a JSON-RPC error; ``data["jsonrpc_code"]``,
``data["detail"]``), ``mcp_timeout`` (no answer in time; cancelled in the child),
``mcp_child_crashed`` (the child died with the request in flight), ``mcp_unavailable`` (no child
can serve: not started, crash loop, isolation cap, start failure) and ``shutting_down``.
"""

from __future__ import annotations

from ttrpg_mcp.bridge.mcp_pool.child import ChildState, McpChildProcess
from ttrpg_mcp.bridge.mcp_pool.pool import McpPool
from ttrpg_mcp.bridge.mcp_pool.routing import Listener

__all__ = ["ChildState", "Listener", "McpChildProcess", "McpPool"]
