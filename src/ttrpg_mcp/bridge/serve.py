"""Run the bridge on uvicorn, draining clients before uvicorn closes their sockets.

uvicorn's own shutdown closes WebSocket connections with 1012 at once; the bridge first wants
to tell each client why and when to come back (``disconnect``) and to let requests in flight
finish. :class:`BridgeServer` stops accepting connections, drains the bridge, then hands over to
uvicorn's shutdown, which runs the app's lifespan exit (children stopped, store closed).
"""

from __future__ import annotations

import socket

import uvicorn

from ttrpg_mcp.bridge.app import create_app
from ttrpg_mcp.bridge.runtime import Bridge
from ttrpg_mcp.bridge.settings import BridgeSettings

__all__ = ["BridgeServer", "serve"]


class BridgeServer(uvicorn.Server):
    """uvicorn's server with the bridge's drain step first in its shutdown."""

    def __init__(self, config: uvicorn.Config, bridge: Bridge) -> None:
        super().__init__(config)
        self.bridge = bridge

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await self.bridge.drain()
        await super().shutdown(sockets)


def serve(settings: BridgeSettings) -> None:
    """Serve until SIGINT or SIGTERM."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # logging is configured by ttrpg_mcp.bridge.logs
        access_log=False,  # one structured event per request comes from the app instead
        ws="websockets-sansio",
        ws_max_size=settings.max_message_bytes * 4,  # the app answers oversize messages itself
        ws_per_message_deflate=settings.ws_compression,
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
        lifespan="on",
        ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
        ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
    )
    BridgeServer(config, app.state.bridge).run()
