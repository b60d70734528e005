"""Run the bridge on uvicorn, draining clients before uvicorn closes their sockets.

uvicorn's own shutdown closes WebSocket connections with 1012 at once; the bridge first wants
to tell each client why and when to come back (``disconnect``) and to let requests in flight
finish. :class:`BridgeServer` stops accepting connections, drains the bridge, then hands over to
uvicorn's shutdown, which runs the app's lifespan exit (children stopped, store closed).

Before any of that, :func:`ttrpg_mcp.bridge.startup.prepare` binds the port and checks the data
directory, so a bridge that cannot run says why in one sentence and exits non-zero.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl
import sys
from collections.abc import Generator

import structlog
import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from ttrpg_mcp.bridge.app import create_app
from ttrpg_mcp.bridge.connection_limits import (
    ConnectionLimits,
    effective_max_connections,
    guarded_protocol_class,
)
from ttrpg_mcp.bridge.runtime import Bridge
from ttrpg_mcp.bridge.settings import BridgeSettings
from ttrpg_mcp.bridge.startup import StartupError, prepare
from ttrpg_mcp.bridge.transports.direct_send import DirectSendProtocol

__all__ = ["BridgeServer", "require_tls_version", "serve"]

log = structlog.get_logger("ttrpg_mcp.bridge")

# Exit status when a start-up check fails (2 is taken by invalid settings).
EXIT_STARTUP_FAILED = 1


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

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """uvicorn re-raises SIGTERM after its shutdown, so the process would die of the signal;
        a drain that completed is a clean exit, status 0."""
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def serve(settings: BridgeSettings) -> int:
    """Serve until SIGINT or SIGTERM; the exit status."""
    try:
        prepared = prepare(settings)
    except StartupError as exc:
        print(f"ttrpg-bridge: {exc}", file=sys.stderr)
        return EXIT_STARTUP_FAILED
    # A file-size limit reached (RLIMIT_FSIZE) would kill the process; ignored, it becomes a
    # failed write, answered storage_unavailable like a full disk.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    app = create_app(settings)
    limits = ConnectionLimits(
        max_connections=effective_max_connections(
            settings.max_connections, prepared.open_files, settings.fd_reserve
        ),
        max_per_address=settings.max_connections_per_address,
        header_timeout=settings.header_timeout,
    )
    config = uvicorn.Config(
        app,
        http=guarded_protocol_class(AutoHTTPProtocol, limits),
        host=settings.host,
        port=settings.port,
        log_config=None,  # logging is configured by ttrpg_mcp.bridge.logs
        access_log=False,  # one structured event per request comes from the app instead
        # uvicorn's websockets-sansio protocol, plus a synchronous write for the table fan-out.
        ws=DirectSendProtocol,
        ws_max_size=settings.max_message_bytes * 4,  # the app answers oversize messages itself
        ws_per_message_deflate=settings.ws_compression,
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
        lifespan="on",
        ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
        ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
    )
    require_tls_version(config, settings)
    server = BridgeServer(config, app.state.bridge)
    try:
        server.run(sockets=[prepared.sock])
    finally:
        prepared.close()
    return 0 if server.started else EXIT_STARTUP_FAILED


def require_tls_version(config: uvicorn.Config, settings: BridgeSettings) -> None:
    """Refuse TLS older than ``tls_min_version`` (1.3 unless configured down to 1.2, with a warning).

    uvicorn builds its SSL context in ``Config.load``; loading here, before the server does,
    lets the bridge set the context's minimum version (the server then skips loading again).
    """
    if not settings.ssl_certfile:
        return
    config.load()
    assert config.ssl is not None
    if settings.tls_min_version == "1.2":
        log.warning(
            "tls_1_2_allowed", hint="TLS 1.2 is accepted; set tls_min_version = '1.3' when clients allow"
        )
        config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    else:
        config.ssl.minimum_version = ssl.TLSVersion.TLSv1_3
