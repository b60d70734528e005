"""What the MCP server offers: its tools, resources, resource templates and prompts, cached.

Browsers ask for the catalog on every connection, and it only changes when the server says so,
so it is fetched once (every page of each ``*/list``, following ``nextCursor``) and kept until a
child sends ``notifications/{tools,resources,prompts}/list_changed``. A list the server does not
offer (no such capability at ``initialize``, or ``-32601`` method not found) is empty. A change
notification that arrives while a fetch is running wins: that fetch's result is returned to its
caller but not cached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.mcp_pool import jsonrpc

__all__ = ["CapabilityCatalog", "Catalog"]

# A server whose lists never stop paginating must not keep the catalog fetching forever.
MAX_LIST_PAGES = 100

_LISTS = (  # catalog key, method, result field, server capability that offers it
    ("tools", "tools/list", "tools", "tools"),
    ("resources", "resources/list", "resources", "resources"),
    ("resource_templates", "resources/templates/list", "resourceTemplates", "resources"),
    ("prompts", "prompts/list", "prompts", "prompts"),
)

Catalog = dict[str, list[dict[str, Any]]]
# (method, params, session_id) -> result: the pool's request, so the fetch goes where it would
Fetch = Callable[[str, dict[str, Any] | None, str], Awaitable[dict[str, Any]]]

_log = structlog.get_logger(__name__)


class CapabilityCatalog:
    """The server's catalog, fetched through the pool and cached until a list_changed."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._cached: Catalog | None = None
        self._generation = 0

    def invalidate(self) -> None:
        self._cached = None
        self._generation += 1

    async def get(self, session_id: str, server_capabilities: Any) -> Catalog:
        """The catalog: cached, or fetched now on behalf of ``session_id``."""
        if self._cached is not None:
            return self._cached
        generation = self._generation
        found: Catalog = {}
        for key, method, field, capability in _LISTS:
            if isinstance(server_capabilities, dict) and capability not in server_capabilities:
                found[key] = []
            else:
                found[key] = await self._list_all(method, field, session_id)
        if generation == self._generation:
            self._cached = found
        return found

    async def _list_all(self, method: str, field: str, session_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            try:
                page = await self._fetch(method, {"cursor": cursor} if cursor else None, session_id)
            except BridgeError as exc:
                if (
                    exc.code == "mcp_error"
                    and (exc.data or {}).get("jsonrpc_code") == jsonrpc.METHOD_NOT_FOUND
                ):
                    return items
                raise
            items.extend(item for item in page.get(field) or [] if isinstance(item, dict))
            cursor = page.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                return items
        _log.warning("mcp_list_truncated", method=method, pages=MAX_LIST_PAGES)
        return items
