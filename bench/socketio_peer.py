"""A python-socketio peer for the fan-out bench: one room, every ``dice_roll`` broadcast to it.

The bridge's table is a room with a broadcast at heart; python-socketio rooms are the library
most Python projects would reach for instead, so the fan-out bench runs it beside the bridge and
the bare ``websockets.broadcast`` relay. The peer is :func:`create_app`: a python-socketio
``AsyncServer`` (ASGI) under uvicorn, as the bridge runs. Each connection joins the room
:data:`ROOM` on connect; each ``dice_roll`` event it sends is emitted to the whole room, sender
included, as the relay does: no auth, no storage, no masking.

For a bench (``bench/table_fanout.py``)::

    with running_peer() as url:                         # the peer in its own process
        async with seats_at(url, 100, collector.seen) as send:
            await send(0, purpose)                      # seat 0 rolls; every seat's seen(purpose)

:func:`seats_at` speaks Socket.IO over the same raw ``websockets`` client the other rows use
(python-socketio's own packet classes encode and decode), so the load client costs the same on
every row. The peer alone: ``python bench/socketio_peer.py --port 8765`` (a Node
``socket.io-client`` connects to ``http://127.0.0.1:8765``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import engineio.packet
import socketio
import socketio.packet
import uvicorn
import websockets

from timing import close_seats

__all__ = ["EVENT", "ROOM", "create_app", "running_peer", "seats_at"]

ROOM = "table"
EVENT = "dice_roll"
# How long the peer may take to listen, and a seat to be let in, on a loaded machine.
STARTUP_DEADLINE = 60.0

Send = Callable[[int, str], Awaitable[None]]


def create_app() -> socketio.ASGIApp:
    """The peer: every connection in one room, every ``dice_roll`` emitted to the room."""
    server = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)

    async def connect(sid: str, _environ: dict[str, Any], _auth: Any = None) -> None:
        await server.enter_room(sid, ROOM)

    async def dice_roll(_sid: str, data: Any) -> None:
        await server.emit(EVENT, data, room=ROOM)

    server.on("connect", connect)
    server.on(EVENT, dice_roll)
    return socketio.ASGIApp(server)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_peer(port: int | None = None) -> Iterator[str]:
    """The peer in a child process of this one (so its CPU counts as a child's); its base URL."""
    port = port or free_port()
    command = [sys.executable, str(Path(__file__)), "--port", str(port)]
    process = subprocess.Popen(command)  # our own interpreter and script
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the python-socketio peer did not listen on port {port}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(20)


def _frame(packet_type: int, data: Any = None) -> str:
    """A Socket.IO packet in its Engine.IO message, as one WebSocket text frame."""
    inner = socketio.packet.Packet(packet_type, data=data).encode()
    return str(engineio.packet.Packet(engineio.packet.MESSAGE, data=inner).encode())


async def _seat(url: str) -> Any:
    """A WebSocket that completed the Engine.IO open and the Socket.IO connect (so it is in the room)."""
    # No client pings: the peer pings (Engine.IO) and the reader answers; a load client too busy
    # to answer its own pings in time would otherwise close seats the peer still serves. A short
    # close timeout: after a step the peer may still be sending a seat a backlog its reader no
    # longer takes, and the close frame waits behind it (10 s a seat by default, one at a time).
    address = f"{url.replace('http', 'ws', 1)}/socket.io/?EIO=4&transport=websocket"
    ws = await websockets.connect(address, ping_interval=None, max_size=None, close_timeout=0.2)
    opening = engineio.packet.Packet(encoded_packet=await ws.recv())
    if opening.packet_type != engineio.packet.OPEN:
        raise RuntimeError(f"the peer opened with {opening.packet_type}, not an Engine.IO open")
    await ws.send(_frame(socketio.packet.CONNECT))
    async with asyncio.timeout(STARTUP_DEADLINE):
        while True:
            reply = engineio.packet.Packet(encoded_packet=await ws.recv())
            if reply.packet_type == engineio.packet.MESSAGE:
                break
    if socketio.packet.Packet(encoded_packet=reply.data).packet_type != socketio.packet.CONNECT:
        raise RuntimeError("the peer refused the Socket.IO connect")
    return ws


async def _read(ws: Any, seen: Callable[[str], None]) -> None:
    """Hand each ``dice_roll``'s purpose to ``seen``; answer the peer's pings (it drops the silent)."""
    with contextlib.suppress(websockets.ConnectionClosed):
        async for raw in ws:
            outer = engineio.packet.Packet(encoded_packet=raw)
            if outer.packet_type == engineio.packet.PING:
                await ws.send(engineio.packet.Packet(engineio.packet.PONG).encode())
            elif outer.packet_type == engineio.packet.MESSAGE:
                inner = socketio.packet.Packet(encoded_packet=outer.data)
                if inner.packet_type == socketio.packet.EVENT and inner.data[0] == EVENT:
                    seen(str(inner.data[1]["data"].get("purpose", "")))


@contextlib.asynccontextmanager
async def seats_at(url: str, seats: int, seen: Callable[[str], None]) -> AsyncIterator[Send]:
    """``seats`` connections in the peer's room; yields ``send(seat, purpose)`` for a roll.

    The roll is about the size of the bridge's ``dice_roll`` event, as the bare relay's is.
    """
    sockets = [await _seat(url) for _ in range(seats)]
    readers = [asyncio.create_task(_read(ws, seen)) for ws in sockets]

    async def send(index: int, purpose: str) -> None:
        roll: dict[str, Any] = {"type": EVENT, "id": uuid.uuid4().hex, "seq": 1, "scope": "campaign"}
        roll["data"] = {"expression": "1d20+5", "total": 17, "rolls": [12], "purpose": purpose}
        # A seat the peer dropped (it missed the peer's pings under load) loses its deliveries,
        # which the bench counts; it does not end the run.
        with contextlib.suppress(websockets.ConnectionClosed):
            await sockets[index].send(_frame(socketio.packet.EVENT, [EVENT, roll]))

    try:
        yield send
    finally:
        await close_seats(readers, sockets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
