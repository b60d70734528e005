"""A synchronous "write this text frame now" for uvicorn's sans-I/O WebSocket protocol.

The ASGI ``send`` of one text frame goes through Starlette's state checks, an awaited
``writable`` event, websockets' frame object and serializer and a join of its output; at a
100-seat table that is a few microseconds per seat per event, most of the bridge's send cost.
:class:`DirectSendProtocol` is uvicorn's ``websockets-sansio`` protocol with one addition: the
ASGI scope carries, under ``scope["extensions"][DIRECT_SEND]``, a plain function that frames one
text message and hands it to the transport at once, or returns False when it cannot (the
socket is closing or closed, the transport has paused writing for flow control, its buffer is
over :data:`BUFFER_LIMIT`, a compression extension was negotiated, or websockets has output of
its own pending). The caller then takes the ordinary ASGI ``send`` path, which waits for the
transport. Under another ASGI server the key is absent and nothing changes.

The frame header is made here rather than by websockets' ``send_text`` + ``data_to_send``: an
unmasked server text frame with FIN set is two to ten bytes of header before the UTF-8
payload, and building it costs about a sixth of websockets' ``Frame.serialize`` path (measured
1.5 µs against 9 µs per 600-byte frame on the bench machine). It leaves websockets' protocol
state as ``send_text`` would: an unfragmented frame changes nothing in it, and the direct write
is refused unless the connection is OPEN with no continuation in progress and nothing queued
in its output, so frames never pass each other.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

__all__ = ["BUFFER_LIMIT", "DIRECT_SEND", "DirectSend", "DirectSendProtocol", "direct_send_of"]

# The key under ``scope["extensions"]``; its value is a :data:`DirectSend`.
DIRECT_SEND = "ttrpg.direct_send"
# Bytes the transport may already hold for the peer and still take a direct write: asyncio's
# default high-water mark, past which it pauses writing anyway, and no more than the smallest
# outbox byte budget the bridge allows (``outbox_max_bytes``), so a seat that stops reading still
# ends up over its budget in the outbox and is cut (1013) as before.
BUFFER_LIMIT = 64 * 1024

DirectSend = Callable[[str], bool]
"""Write one text frame now; False (nothing written) when the caller must use ASGI ``send``."""

_FIN_TEXT = 0x81
_SHORT = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def _header(length: int) -> bytes:
    """The header of an unmasked, unfragmented text frame of ``length`` payload bytes (RFC 6455 5.2)."""
    if length < 126:
        return bytes((_FIN_TEXT, length))
    if length < 65536:
        return _SHORT.pack(_FIN_TEXT, 126, length)
    return _LONG.pack(_FIN_TEXT, 127, length)


def direct_send_of(scope: Any) -> DirectSend | None:
    """The direct write the server put in ``scope``, or None (another server: use ``send``)."""
    extensions = scope.get("extensions") if isinstance(scope, dict) else None
    found = extensions.get(DIRECT_SEND) if isinstance(extensions, dict) else None
    return found if callable(found) else None


class DirectSendProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, plus :meth:`write_text` in the ASGI scope."""

    _write: Callable[[bytes], object]
    _buffered: Callable[[], int]
    _closing: Callable[[], bool]

    async def run_asgi(self) -> None:
        # The scope was built by handle_connect just before this task was created; the app has
        # not seen it yet. The transport's methods are looked up once (it may be a proxy).
        self._write = self.transport.write
        self._buffered = self.transport.get_write_buffer_size
        self._closing = self.transport.is_closing
        extensions: dict[str, Any] = self.scope["extensions"]
        extensions[DIRECT_SEND] = self.write_text
        await super().run_asgi()

    def write_text(self, text: str) -> bool:
        """Frame ``text`` and write it to the transport now; False when it must wait instead."""
        conn = self.conn
        if (
            self.close_sent
            or self.disconnected
            or not self.handshake_complete
            or self.initial_response is not None
            or conn.state is not State.OPEN
            or conn.expect_continuation_frame
            or conn.extensions  # compressed frames are websockets' to make
            or conn.writes  # its own output (a pong, a close) goes first, by the slow path
            or not self.writable.is_set()
            or self._closing()
            or self._buffered() > BUFFER_LIMIT
        ):
            return False
        data = text.encode()
        self._write(_header(len(data)) + data)
        return True
