"""One open WebSocket to the bridge: requests with replies, and a stream of events.

A single reader task owns the socket's receiving side: a message whose ``request_id`` matches a
pending request resolves that request's future; any other message goes to the events queue, and
an ``event_batch`` (a replay the client asked to have batched) as each of the events it holds.
When the socket closes, every pending request fails with :class:`ConnectionClosed` at once and
the events iterator ends; :attr:`BridgeConnection.close_code` and ``close_reason`` say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed as _WsClosed

__all__ = ["BridgeClientError", "BridgeConnection", "ConnectionClosed", "TableApi"]

# Heartbeats never go out more often than this, whatever the bridge's settings say.
MIN_HEARTBEAT_PERIOD = 0.2
# How long a request waits for its reply unless told otherwise: above the bridge's own
# default MCP timeout (30 s), so the bridge's timeout error arrives before ours.
DEFAULT_REQUEST_TIMEOUT = 40.0
_END = object()


class BridgeClientError(Exception):
    """The bridge answered a request with an error."""

    def __init__(self, code: str, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class ConnectionClosed(BridgeClientError):
    """The socket closed before a reply arrived."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__("connection_closed", f"connection closed ({code}): {reason}", {"close_code": code})
        self.close_code = code
        self.reason = reason


class TableApi(ABC):
    """What a client can do at the bridge, whatever carries the messages (WebSocket or SSE).

    A transport implements :meth:`request_raw`, :meth:`send`, :meth:`events` and
    :meth:`close`; every operation of the protocol is built on those here, once.
    :attr:`transport` says which one carries this session.
    """

    transport: Literal["websocket", "sse"]

    @abstractmethod
    async def close(self) -> None:
        """End the session (idempotent)."""

    @abstractmethod
    async def request_raw(self, message: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Send a message (which must have an ``id``) and return the reply, error or not."""

    @abstractmethod
    async def send(self, message: dict[str, Any]) -> None:
        """Send a message without waiting for a reply."""

    @abstractmethod
    def events(self) -> AsyncIterator[dict[str, Any]]:
        """Messages that are not replies, in arrival order, until the connection closes."""

    async def request(self, message: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Send a message with a fresh ``id`` and return its reply; an error reply raises."""
        message = dict(message)
        message.setdefault("id", uuid.uuid4().hex)
        reply = await self.request_raw(message, timeout=timeout)
        error = reply.get("error")
        if error:
            raise BridgeClientError(error.get("code", "unknown"), error.get("message", ""), error.get("data"))
        return reply

    async def next_event(self, type_: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """The next event of one type (others are skipped)."""
        async with asyncio.timeout(timeout):
            async for event in self.events():
                if event.get("type") == type_:
                    return event
        raise ConnectionClosed(None, "the event stream ended")

    async def call_tool(
        self, name: str, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Call an MCP tool; returns its structured result (or the raw MCP result if it has none)."""
        message: dict[str, Any] = {"type": "tool_call", "method": name, "params": params or {}}
        if timeout is not None:
            message["metadata"] = {"timeout": timeout * 1000}
        reply = await self.request(message, timeout=(timeout or DEFAULT_REQUEST_TIMEOUT) + 5)
        result = reply["result"]
        return result.get("structuredContent", result)

    async def roll_dice(
        self,
        expression: str,
        purpose: str | None = None,
        *,
        advantage: Literal["none", "advantage", "disadvantage"] = "none",
        visibility: Literal["public", "gm", "blind", "self"] = "public",
    ) -> dict[str, Any]:
        """Roll in the bridge; returns the full result (total, every die, crit and fumble flags)."""
        data: dict[str, Any] = {"expression": expression, "advantage": advantage, "visibility": visibility}
        if purpose is not None:
            data["purpose"] = purpose
        reply = await self.request({"type": "dice_roll", "data": data})
        return dict(reply["result"])

    async def discover(self) -> dict[str, Any]:
        return dict((await self.request({"type": "tool_discover"}))["result"])

    async def read_resource(self, uri: str) -> dict[str, Any]:
        return dict((await self.request({"type": "resource_get", "params": {"uri": uri}}))["result"])

    async def get_prompt(self, name: str, arguments: dict[str, str] | None = None) -> dict[str, Any]:
        message = {"type": "prompt_get", "method": name, "params": arguments or {}}
        return dict((await self.request(message))["result"])

    # -- the table ---------------------------------------------------------------------------

    async def join(self, campaign_id: str) -> dict[str, Any]:
        """Sit at a campaign's table; returns its snapshot (state, canvas, rolls, participants, seq)."""
        reply = await self.request({"type": "session_create", "campaign_id": campaign_id})
        return dict(reply["data"])

    async def attach(
        self, campaign_id: str, last_seq: int, epoch: str | None = None, *, batch: bool = True
    ) -> dict[str, Any]:
        """Sit at a table again after ``last_seq``: the missed events come as events before the
        snapshot returned here (``recovered``), or the snapshot is the whole table."""
        message: dict[str, Any] = {
            "type": "session_attach",
            "campaign_id": campaign_id,
            "last_seq": last_seq,
            "batch": batch,
        }
        if epoch is not None:
            message["epoch"] = epoch
        reply = await self.request(message)
        return dict(reply["data"])

    async def update_state(
        self,
        path: list[str | int],
        value: Any = None,
        *,
        operation: Literal["set", "merge", "delete"] = "set",
        previous_version: int | None = None,
    ) -> dict[str, Any]:
        data = {"path": path, "operation": operation, "value": value, "previous_version": previous_version}
        return dict((await self.request({"type": "state_update", "data": data}))["data"])

    async def initiative(self, action: str, **fields: Any) -> dict[str, Any]:
        reply = await self.request({"type": "initiative_update", "data": {"action": action, **fields}})
        return dict(reply.get("data") or {})

    async def draw(self, data: dict[str, Any]) -> dict[str, Any]:
        return dict((await self.request({"type": "canvas_draw", "data": data}))["data"])

    async def move_cursor(self, x: float, y: float, element: str | None = None) -> None:
        position: dict[str, Any] = {"x": x, "y": y}
        if element is not None:
            position["element"] = element
        await self.send({"type": "cursor_move", "data": {"position": position}})

    async def set_presence(self, **data: Any) -> dict[str, Any]:
        return await self.request({"type": "presence_update", "data": data, "ack": True})

    async def update_campaign(self, **changes: Any) -> dict[str, Any]:
        reply = await self.request({"type": "campaign_update", "data": changes})
        result = reply["result"]
        return dict(result.get("structuredContent", result))

    async def update_character(self, character_id: str, **changes: Any) -> dict[str, Any]:
        data = {"character_id": character_id, "changes": changes}
        result = (await self.request({"type": "character_update", "data": data}))["result"]
        return dict(result.get("structuredContent", result))

    async def heartbeat(self) -> dict[str, Any]:
        return await self.request({"type": "heartbeat"})

    async def reauthenticate(self, token: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Swap this session's access token for a fresh one (the connection stays open)."""
        return await self.request({"type": "reauthenticate", "token": token}, timeout=timeout)


class BridgeConnection(TableApi):
    """An authenticated session over one WebSocket.

    Besides the reader, a heartbeat task sends ``heartbeat`` well within the bridge's
    ``idle_timeout`` (both from ``session_created``), so a seat that only listens is never
    closed for silence; it ends with the connection.
    """

    transport: Literal["websocket", "sse"] = "websocket"

    def __init__(
        self,
        websocket: ClientConnection,
        session: dict[str, Any],
        *,
        initial: Sequence[dict[str, Any]] = (),
        heartbeats: bool = True,
    ) -> None:
        self._ws = websocket
        self.session = session
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        for message in initial:  # read while connecting (the join's answer): first in line
            self._events.put_nowait(message)
        self._reader = asyncio.create_task(self._read_loop())
        self._heartbeat: asyncio.Task[None] | None = (
            asyncio.create_task(self._heartbeat_loop()) if heartbeats else None
        )
        self.close_code: int | None = None
        self.close_reason = ""
        self.heartbeats_sent = 0
        self.batches_received = 0

    @property
    def session_id(self) -> str:
        return str(self.session["session_id"])

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    @property
    def capabilities(self) -> dict[str, Any]:
        return dict(self.session.get("capabilities") or {})

    @property
    def tool_names(self) -> list[str]:
        return sorted(tool["name"] for tool in self.capabilities.get("tools", []))

    # -- requests -----------------------------------------------------------------------------

    async def request_raw(self, message: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Send a message (which must have an ``id``) and return the reply, error or not."""
        request_id = str(message["id"])
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self.send(message)
            async with asyncio.timeout(timeout or DEFAULT_REQUEST_TIMEOUT):
                return await future
        finally:
            self._pending.pop(request_id, None)
            if future.done() and not future.cancelled():
                future.exception()  # the close may have failed it while send() was raising too

    # -- raw I/O ------------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_text(json.dumps(message))

    async def send_text(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except _WsClosed as exc:
            raise self._closed_error(exc) from None

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Messages that are not replies, in arrival order, until the connection closes."""
        while True:
            item = await self._events.get()
            if item is _END:
                self._events.put_nowait(_END)  # let other iterators end too
                return
            yield item

    def received(self) -> list[dict[str, Any]]:
        """The events already received and not yet taken by :meth:`events`, without waiting.

        After a reply that the bridge sent later on the same ordered channel (a marker), this is
        everything the bridge sent before it."""
        taken: list[dict[str, Any]] = []
        while not self._events.empty():
            item = self._events.get_nowait()
            if item is _END:
                self._events.put_nowait(_END)
                break
            taken.append(item)
        return taken

    async def wait_closed(self) -> tuple[int | None, str]:
        """Wait until the bridge closes the socket; returns its close code and reason."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._reader)
        return self.close_code, self.close_reason

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        await self._ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    def heartbeat_period(self) -> float:
        """Seconds between our heartbeats: within the bridge's idle timeout, three times over."""
        interval = float(self.session.get("heartbeat_interval") or 30_000) / 1000
        idle = float(self.session.get("idle_timeout") or interval * 3_000) / 1000
        return max(MIN_HEARTBEAT_PERIOD, min(interval, idle / 3))

    async def _heartbeat_loop(self) -> None:
        period = self.heartbeat_period()
        while True:
            await asyncio.sleep(period)
            try:
                await self.request({"type": "heartbeat"}, timeout=period * 2)
                self.heartbeats_sent += 1
            except ConnectionClosed:
                return
            except (BridgeClientError, TimeoutError):
                continue  # refused (rate limit) or slow: the next one may pass

    async def _read_loop(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                request_id = message.get("request_id")
                future = self._pending.get(request_id) if request_id else None
                if future is not None and not future.done():
                    future.set_result(message)
                elif message.get("type") == "event_batch":
                    self.batches_received += 1
                    for event in message["events"]:
                        self._events.put_nowait(event)
                else:
                    self._events.put_nowait(message)
        except _WsClosed:
            pass
        finally:
            self.close_code = self._ws.close_code
            self.close_reason = self._ws.close_reason or ""
            error = ConnectionClosed(self.close_code, self.close_reason)
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(error)
            self._events.put_nowait(_END)

    def _closed_error(self, exc: _WsClosed) -> ConnectionClosed:
        rcvd = exc.rcvd
        return ConnectionClosed(rcvd.code if rcvd else None, rcvd.reason if rcvd else str(exc))
