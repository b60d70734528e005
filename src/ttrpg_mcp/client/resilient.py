"""A seat at a campaign's table that survives dropped connections without losing anything.

:class:`ResilientTable` keeps one connection (WebSocket, or SSE where a WebSocket cannot be
opened; :attr:`ResilientTable.transport` says which) to a campaign and, when it
drops, reconnects with backoff and resumes from the last ``seq`` it holds: the bridge replays
exactly the missed events, or sends a snapshot when they are no longer retained (then
:attr:`ResilientTable.resets` counts it). Events are kept in ``seq`` order; one that arrives
twice is counted in :attr:`duplicates` and dropped, a hole in the numbering in :attr:`gaps`.

Requests get an ``id`` once and keep it: one interrupted by a drop is sent again, with the same
id, after the reconnect, and the bridge answers a resend from its record instead of applying it
twice. So :meth:`request` returns exactly one reply per request, whatever happened in between.

The shared state is kept up to date from the snapshot and the ``state_update`` events, so a
client can compare it with the server's at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import uuid
from typing import TYPE_CHECKING, Any, Literal

import httpx

from ttrpg_mcp.client.connection import BridgeClientError, ConnectionClosed, TableApi

if TYPE_CHECKING:
    from ttrpg_mcp.client.http import BridgeClient

__all__ = ["ResilientTable"]

Transport = Literal["websocket", "sse", "auto"]
# Reconnect backoff: quick first retries (a blip), capped so a restarting bridge is found soon.
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 1.0
# A reconnect gives up after this long without success (the bridge is gone for good).
RECONNECT_DEADLINE = 60.0
# Heartbeats that may go missing before the connection is taken for dead.
HEARTBEATS_OF_SILENCE = 2.5
# One request waits this long for its reply across any number of reconnects.
REQUEST_DEADLINE = 90.0


class ResilientTable:
    """A campaign seat that reconnects, resumes and resends on its own."""

    def __init__(self, client: BridgeClient, campaign_id: str, *, transport: Transport = "auto") -> None:
        self._client = client
        self.campaign_id = campaign_id
        self._wanted: Transport = transport
        # What the current connection runs on; with "auto", SSE when the WebSocket would not open.
        self.transport: Transport = transport
        self.events: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {}
        self.last_seq: int | None = None
        self.epoch: str | None = None
        self.first_seq: int | None = None
        self.duplicates = 0
        self.gaps = 0
        self.resets = 0
        self.reconnects = 0
        self._table: TableApi | None = None
        self._connection: contextlib.AbstractAsyncContextManager[TableApi] | None = None
        self._connected = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._closing = False

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self._connect()
        self._pump = asyncio.create_task(self._pump_loop(), name=f"table-{self.campaign_id}")

    async def close(self) -> None:
        self._closing = True
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        await self._disconnect()

    async def drop(self) -> None:
        """Cut the connection as a network failure would; the seat reconnects by itself."""
        table = self._table
        if table is not None:
            with contextlib.suppress(Exception):
                await table.close()

    async def _connect(self) -> None:
        connection = self._client.connect(
            campaign_id=self.campaign_id, transport=self._wanted, last_seq=self.last_seq, epoch=self.epoch
        )
        table = await connection.__aenter__()
        self._connection, self._table = connection, table
        self.transport = table.transport
        self._connected.set()

    async def _disconnect(self) -> None:
        self._connected.clear()
        connection, self._connection, self._table = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.__aexit__(None, None, None)

    async def _reconnect(self) -> None:
        await self._disconnect()
        delay = BACKOFF_FIRST
        async with asyncio.timeout(RECONNECT_DEADLINE):
            while not self._closing:
                try:
                    await self._connect()
                except Exception:  # refused, timed out, restarting: retry later  # any failure: retry
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, BACKOFF_MAX)
                    continue
                self.reconnects += 1
                return

    async def _pump_loop(self) -> None:
        while not self._closing:
            table = self._table
            assert table is not None
            with contextlib.suppress(TimeoutError):
                # Silence longer than a few heartbeats means a half-open connection: drop it.
                async with asyncio.timeout(self._silence_limit(table)) as deadline:
                    async for message in table.events():
                        self._receive(message)
                        deadline.reschedule(asyncio.get_running_loop().time() + self._silence_limit(table))
            if self._closing:
                return
            await self._reconnect()

    @staticmethod
    def _silence_limit(table: TableApi) -> float:
        session = getattr(table, "session", None) or {}
        interval_ms = session.get("heartbeat_interval", 30_000)
        return HEARTBEATS_OF_SILENCE * float(interval_ms) / 1000

    # -- events -------------------------------------------------------------------------------

    def _receive(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "campaign_snapshot":
            self._snapshot(message["data"])
            return
        seq = message.get("seq")
        if seq is None:
            return
        if self.last_seq is not None and seq <= self.last_seq:
            self.duplicates += 1
            return
        if self.last_seq is not None and seq != self.last_seq + 1:
            self.gaps += 1
        self.last_seq = seq
        self.events.append(message)
        if kind == "state_update":
            self._apply_state(message["data"])

    def _snapshot(self, data: dict[str, Any]) -> None:
        self.epoch = data.get("epoch", self.epoch)
        if data.get("recovered"):
            return  # the missed events come (or came) as events
        if self.last_seq is not None:
            self.resets += 1
        self.state = copy.deepcopy(data.get("state") or {})
        self.state.pop("dice_rolls", None)
        self.last_seq = data["seq"]
        if self.first_seq is None:
            self.first_seq = data["seq"]

    def _apply_state(self, change: dict[str, Any]) -> None:
        path, operation, value = change["path"], change["operation"], change.get("value")
        target: Any = self.state
        for key in path[:-1]:
            target = target[key]
        last = path[-1]
        if operation == "set":
            if isinstance(target, list) and last == len(target):
                target.append(value)
            else:
                target[last] = value
        elif operation == "merge":
            target[last] = {**target.get(last, {}), **(value or {})}
        elif isinstance(target, list):
            del target[last]
        else:
            target.pop(last, None)
        self.state["version"] = change["version"]
        self.state["last_update"] = change.get("last_update", self.state.get("last_update"))

    # -- requests -----------------------------------------------------------------------------

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a request and return its one reply, resending it (same id) across reconnects."""
        message = dict(message)
        message.setdefault("id", uuid.uuid4().hex)
        async with asyncio.timeout(REQUEST_DEADLINE):
            while True:
                await self._connected.wait()
                table = self._table
                if table is None:
                    continue
                try:
                    reply = await table.request_raw(message)
                except (ConnectionClosed, OSError, TimeoutError, httpx.TransportError):
                    await asyncio.sleep(BACKOFF_FIRST)
                    continue
                except BridgeClientError as error:
                    if error.code == "connection_closed":
                        await asyncio.sleep(BACKOFF_FIRST)
                        continue
                    raise
                if _retryable(reply.get("error")):
                    await asyncio.sleep(BACKOFF_FIRST)
                    continue
                return reply


def _retryable(error: dict[str, Any] | None) -> bool:
    """The bridge is restarting, or the seat is between connecting and rejoining: try again."""
    if not error:
        return False
    code, message = error.get("code"), error.get("message", "")
    return code == "shutting_down" or (code == "forbidden" and "join a campaign first" in message)
