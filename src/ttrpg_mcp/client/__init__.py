"""An async Python client for ``ttrpg-bridge``: log in over HTTP, then talk over ``/ws``.

The same operations as the TypeScript client, so scripts, tests and benchmarks drive the bridge
exactly as a browser does::

    async with BridgeClient("http://127.0.0.1:8080") as client:
        await client.login("mira", "correct horse")
        async with client.connect() as table:
            roll = await table.roll_dice("1d20+5", purpose="attack")
            result = await table.call_tool("search", {"query": "grapple"})
            async for event in table.events():
                ...

A client lasts a game night: it renews its tokens before they expire and reauthenticates every
live session, sends heartbeats so a listening seat is never closed for silence, falls back to
SSE when a WebSocket cannot be opened (``table.transport`` says which), and raises
:class:`BridgeClientError` when a table refuses the seat it asked for.

Replies are matched to requests by ``request_id``; everything else the bridge sends (heartbeats,
notifications, campaign events) comes out of :meth:`BridgeConnection.events`. A reply carrying an
``error`` raises :class:`BridgeClientError` with the bridge's code, message and data.
"""

from ttrpg_mcp.client.connection import BridgeClientError, BridgeConnection, ConnectionClosed, TableApi
from ttrpg_mcp.client.http import BridgeClient, Tokens
from ttrpg_mcp.client.resilient import ResilientTable
from ttrpg_mcp.client.sse import SseConnection

__all__ = [
    "BridgeClient",
    "BridgeClientError",
    "BridgeConnection",
    "ConnectionClosed",
    "ResilientTable",
    "SseConnection",
    "TableApi",
    "Tokens",
]
