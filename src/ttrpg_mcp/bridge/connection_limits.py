"""Limits on TCP connections, enforced before any HTTP is parsed.

uvicorn keeps a connection that never sends a request open forever, and counts nothing per
client address: 2,000 idle or half-sent connections used up the file descriptors the MCP pool
and the store need. :class:`GuardedProtocol` sits in front of uvicorn's own HTTP protocol on
every accepted socket and

- refuses a connection over the cap at once, with a plain ``503`` and a JSON error body
  ``too_many_connections``: over ``max_connections`` in all (never more than the open-files limit
  less ``fd_reserve``, which stays free for MCP children, the stores and logs) or over
  ``max_connections_per_address`` from one client address;
- closes a connection that has not sent a complete request line and headers (the WebSocket
  handshake included) within ``header_timeout`` seconds.

uvicorn's protocol may swap itself for a WebSocket protocol after an upgrade; it does so
through :class:`_TransportProxy`, so the guard stays in front, sees every connection end and
releases its count exactly once.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import structlog

from ttrpg_mcp.bridge.errors import ERROR_CODES

__all__ = ["ConnectionLimits", "GuardedProtocol", "effective_max_connections", "guarded_protocol_class"]

log = structlog.get_logger("ttrpg_mcp.bridge.connections")

REFUSAL_CODE = "too_many_connections"


def effective_max_connections(configured: int, open_files: int, fd_reserve: int) -> int:
    """The global cap: configured, but never eating into the descriptors kept for the rest."""
    return max(1, min(configured, open_files - fd_reserve))


@dataclass
class ConnectionLimits:
    """The counts and caps shared by every connection of one server."""

    max_connections: int
    max_per_address: int
    header_timeout: float
    open: int = 0
    refused: int = 0
    timed_out: int = 0
    by_address: Counter[str] = field(default_factory=Counter)

    def admit(self, address: str) -> str | None:
        """Count a new connection from ``address``; or why it is refused (nothing counted)."""
        if self.open >= self.max_connections:
            return f"the bridge holds its maximum of {self.max_connections} connections"
        if self.by_address[address] >= self.max_per_address:
            return f"your address holds its maximum of {self.max_per_address} connections"
        self.open += 1
        self.by_address[address] += 1
        return None

    def release(self, address: str) -> None:
        self.open -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]


def _refusal(reason: str) -> bytes:
    body = json.dumps(
        {"error": {"code": REFUSAL_CODE, "message": f"{reason}; retry shortly", "data": None}}
    ).encode()
    status = ERROR_CODES[REFUSAL_CODE][0]
    head = (
        f"HTTP/1.1 {status} Service Unavailable\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class _TransportProxy:
    """The transport as uvicorn's protocol sees it: ``set_protocol`` swaps the guard's inner one."""

    def __init__(self, transport: asyncio.Transport, guard: GuardedProtocol) -> None:
        self._transport = transport
        self._guard = guard

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._guard.switch_to(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol | None:
        return self._guard.inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedProtocol(asyncio.Protocol):
    """One accepted socket: admitted or refused, timed until its headers are in, then relayed."""

    def __init__(self, make_inner: Callable[[], asyncio.Protocol], limits: ConnectionLimits) -> None:
        self._make_inner = make_inner
        self._limits = limits
        self._transport: asyncio.Transport | None = None
        self._address = ""
        self._admitted = False
        self._first: asyncio.BaseProtocol | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.inner: asyncio.BaseProtocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast("asyncio.Transport", transport)  # uvloop's are not asyncio subclasses
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple | list) and peer else "unknown"
        refusal = self._limits.admit(self._address)
        if refusal is not None:
            self._limits.refused += 1
            if self._limits.refused % 100 == 1:  # a flood logs a line per hundred refusals
                log.warning(
                    "connection_refused", client=self._address, reason=refusal, refused=self._limits.refused
                )
            transport.write(_refusal(refusal))
            transport.close()
            return
        self._admitted = True
        inner = self._make_inner()
        self.inner = self._first = inner
        inner.connection_made(_TransportProxy(transport, self))  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._limits.header_timeout, self._check_headers)

    def switch_to(self, protocol: asyncio.BaseProtocol) -> None:
        """The connection was upgraded (to a WebSocket): its request is complete.

        The HTTP protocol and the header timer are let go at once; kept, they would cost every
        open WebSocket a few kilobytes for as long as it lives.
        """
        self.inner = protocol
        self._first = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_headers(self) -> None:
        """Close a connection still without a complete request once ``header_timeout`` is up."""
        self._timer = None
        if self._first is None or getattr(self.inner, "cycle", None) is not None:
            return  # upgraded, or a request under way
        self._limits.timed_out += 1
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if isinstance(self.inner, asyncio.Protocol):
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if isinstance(self.inner, asyncio.Protocol):
            return self.inner.eof_received()
        return None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._admitted:
            return
        self._admitted = False
        self._limits.release(self._address)
        if self.inner is not None:
            self.inner.connection_lost(exc)


def guarded_protocol_class(
    inner_class: type[asyncio.Protocol], limits: ConnectionLimits
) -> type[asyncio.Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)``: uvicorn's ``inner_class`` behind the guard."""

    class Guarded(GuardedProtocol):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(lambda: inner_class(**kwargs), limits)

    return Guarded
