"""Who is asking, read from the MCP request in flight: the one door from the SDK to ``secrecy``.

The bridge names its caller in the request's ``_meta`` (see ``secrecy.META_KEY``); a request
without that key, such as Claude Desktop's over stdio, is the local GM with a full view.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context

from ttrpg_mcp.server.secrecy import Viewer, viewer_from_meta

__all__ = ["request_viewer"]


def request_viewer(ctx: Context[Any] | None) -> Viewer:
    """The viewer of the request ``ctx`` belongs to; the local GM outside a request."""
    if ctx is None:
        return viewer_from_meta(None)
    try:
        meta = ctx.request_context.meta
    except ValueError:  # no request in flight: a direct call, as in tests
        meta = None
    return viewer_from_meta(meta)
