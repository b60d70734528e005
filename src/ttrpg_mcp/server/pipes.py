"""The stdio wire read and written on the event loop, not through worker threads.

The SDK's ``stdio_server`` wraps stdin and stdout in ``anyio.wrap_file``: every line read and
every reply written (a write, then a flush) is a round trip to a worker thread. Over a pipe,
three thread hand-offs per call were most of what a child spent on a relayed ``roll_dice``
besides the SDK's own request handling. When stdin and stdout are pipes (or sockets), as they
are under the bridge's pool and any MCP client, :func:`serve_stdio` reads and writes them
with asyncio's pipe transports and hands the SDK's ``stdio_server`` those streams, so its
framing and message validation stay the SDK's. Anything else (a terminal, a regular file) is
served by the SDK's own transport as before.

Like the SDK's transport, it serves the wire from duplicates of fd 0 and 1 and points those
at the null device and at stderr meanwhile, so that a stray ``print`` or a child process never
writes into the protocol stream; both are restored on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import stat
from collections.abc import AsyncIterator
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server

__all__ = ["serve_stdio"]

# A request line may be large (an imported document); the reader's buffer bound, not a size limit.
_LINE_LIMIT = 256 * 1024 * 1024


class _Lines:
    """Text lines from a pipe, as the SDK's transport iterates a wrapped stdin."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class _Writer:
    """``write`` and ``flush`` as the SDK's transport calls them on a wrapped stdout."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._writer.drain()  # waits only when the reader lags behind


def _is_pipe(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@contextlib.contextmanager
def _claimed(fd: int, diversion: int) -> Any:
    """A private duplicate of ``fd`` (the wire); ``fd`` points at ``diversion`` until exit."""
    wire = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    saved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.dup2(diversion, fd)
    try:
        yield wire
    finally:
        os.dup2(saved, fd)
        os.close(saved)


@contextlib.asynccontextmanager
async def _pipe_streams() -> AsyncIterator[tuple[_Lines, _Writer]]:
    loop = asyncio.get_running_loop()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        with _claimed(0, null) as wire_in, _claimed(1, 2) as wire_out:
            reader = asyncio.StreamReader(limit=_LINE_LIMIT)
            in_transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", buffering=0)
            )
            out_transport, out_protocol = await loop.connect_write_pipe(
                lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()),
                os.fdopen(wire_out, "wb", buffering=0),
            )
            writer = asyncio.StreamWriter(out_transport, out_protocol, None, loop)
            try:
                yield _Lines(reader), _Writer(writer)
            finally:
                in_transport.close()
                out_transport.close()
    finally:
        os.close(null)


async def _serve(server: MCPServer[Any]) -> None:
    # The SDK serves stdio only through its own wrapped files; its lowlevel server takes any streams.
    lowlevel = server._lowlevel_server
    async with _pipe_streams() as (lines, out), stdio_server(lines, out) as (read, write):  # type: ignore[arg-type]
        await lowlevel.run(read, write, lowlevel.create_initialization_options())


def serve_stdio(server: MCPServer[Any]) -> None:
    """Serve ``server`` over stdin and stdout until stdin ends (see the module docstring)."""
    if not (_is_pipe(0) and _is_pipe(1)):
        server.run("stdio")
        return
    anyio.run(_serve, server)
