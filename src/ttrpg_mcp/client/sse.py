"""One session over the SSE fallback: an event stream in, one POST per message out.

:class:`SseConnection` offers what :class:`~ttrpg_mcp.client.connection.BridgeConnection` offers
over a WebSocket, over two kinds of HTTP request: ``GET /api/events`` streams every message of
the session (``session_created`` first), and each message sent is a ``POST /api/messages``
carrying this session's ``session_id``, answered in the HTTP response. So replies never come on
the stream: :meth:`SseConnection.events` yields everything else, in arrival order. Changes
(rolls, state, strokes...) are POSTed one at a time, in the order they were sent, because
separate HTTP requests may overtake each other; reads and tool calls go side by side.

A single reader task owns the stream, from the request to its end; :meth:`SseConnection.close`
cancels it (safe to call twice). When the stream ends, :meth:`events` ends, later requests raise
:class:`~ttrpg_mcp.client.connection.ConnectionClosed`, and :attr:`close_reason` says why.
:attr:`last_seq` and :attr:`epoch` follow the campaign's events so that a new connection can
resume where this one stopped (``Last-Event-ID``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx
from httpx_sse import SSEError, aconnect_sse

from ttrpg_mcp.client.connection import (
    DEFAULT_REQUEST_TIMEOUT,
    BridgeClientError,
    ConnectionClosed,
    TableApi,
)

__all__ = ["EVENTS_PATH", "MESSAGES_PATH", "SseConnection"]

EVENTS_PATH = "/api/events"
MESSAGES_PATH = "/api/messages"
# The bridge answers within its own authentication work plus listing the MCP server's
# capabilities; wait a little longer than that for session_created (as the WebSocket does).
HANDSHAKE_TIMEOUT = 30.0
# The stream is quiet between events for as long as the table is: only connecting is bounded
# (heartbeats and keep-alive comments arrive anyway; the server ends a stream it gives up on).
_STREAM_TIMEOUT = httpx.Timeout(HANDSHAKE_TIMEOUT, read=None)
_END = object()
# Messages that change nothing at the table: the bridge runs them side by side with others.
SIDE_BY_SIDE = frozenset({"tool_call", "tool_discover", "resource_get", "prompt_get", "heartbeat"})


class SseConnection(TableApi):
    """An authenticated session over ``GET /api/events`` and ``POST /api/messages``."""

    transport: Literal["websocket", "sse"] = "sse"

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str,
        *,
        campaign_id: str | None = None,
        last_seq: int | None = None,
        epoch: str | None = None,
    ) -> None:
        self._http = http
        self._token = token
        self.session: dict[str, Any] = {}
        self.campaign_id = campaign_id
        self.last_seq = last_seq
        self.epoch = epoch
        self.close_code: int | None = None
        self.close_reason = ""
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._opened: asyncio.Future[dict[str, Any]] | None = None
        self._joined: asyncio.Future[dict[str, Any]] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ended = False
        self._change_lane = asyncio.Lock()

    @property
    def session_id(self) -> str:
        return str(self.session["session_id"])

    @property
    def capabilities(self) -> dict[str, Any]:
        return dict(self.session.get("capabilities") or {})

    @property
    def tool_names(self) -> list[str]:
        return sorted(tool["name"] for tool in self.capabilities.get("tools", []))

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, *, timeout: float = HANDSHAKE_TIMEOUT) -> None:
        """Open the stream and wait for ``session_created``; a refusal raises BridgeClientError."""
        loop = asyncio.get_running_loop()
        self._opened = loop.create_future()
        # With a campaign, the message after session_created is the seat: a snapshot or a refusal.
        self._joined = loop.create_future() if self.campaign_id else None
        self._reader = asyncio.create_task(self._read_loop(), name="sse-reader")
        try:
            async with asyncio.timeout(timeout):
                self.session = await self._opened
                if self._joined is not None:
                    await self._joined
        except BaseException:
            await self.close()
            for waiting in (self._opened, self._joined):  # failed or not, nobody waits any more
                if waiting is not None and waiting.done() and not waiting.cancelled():
                    waiting.exception()
            raise

    async def close(self) -> None:
        """End the stream (idempotent); events() ends and later requests raise ConnectionClosed."""
        reader = self._reader
        if reader is None:
            return
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader

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
        """Wait until the stream ends; returns ``(close_code, close_reason)``."""
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._reader)
        return self.close_code, self.close_reason

    # -- requests -----------------------------------------------------------------------------

    async def request_raw(self, message: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """POST a message (which must have an ``id``) and return the reply, error or not."""
        token = message.get("token") if message.get("type") == "reauthenticate" else None
        response = await self._post(message, timeout, token=token if isinstance(token, str) else None)
        reply = _json_object(response)
        if reply is None:
            raise BridgeClientError(f"http_{response.status_code}", response.text[:200])
        error = reply.get("error")
        if isinstance(error, dict):
            data = error.get("data") or {}
            if error.get("code") == "not_found" and data.get("session_id") == self.session_id:
                raise ConnectionClosed(None, "the bridge no longer has this session")
        elif token is not None:
            self._token = str(token)  # the bridge took the new token: use it from now on
        if reply.get("type") == "campaign_snapshot":
            self._note_snapshot(reply.get("data") or {})
        return reply

    async def send(self, message: dict[str, Any]) -> None:
        """POST a message without reading its reply; only a transport failure raises."""
        await self._post(message, None)

    async def _post(
        self, message: dict[str, Any], timeout: float | None, *, token: str | None = None
    ) -> httpx.Response:
        if self._ended:
            raise ConnectionClosed(self.close_code, self.close_reason or "the event stream has ended")
        body = dict(message) | {"session_id": self.session_id}
        headers = {"Authorization": f"Bearer {token or self._token}"}
        # Concurrent POSTs may travel on different HTTP connections and overtake each other;
        # changes wait for the one before to be answered, so the bridge gets them in order.
        lane = contextlib.nullcontext() if message.get("type") in SIDE_BY_SIDE else self._change_lane
        try:
            async with lane:
                return await self._http.post(
                    MESSAGES_PATH, json=body, headers=headers, timeout=timeout or DEFAULT_REQUEST_TIMEOUT
                )
        except httpx.TimeoutException:
            raise TimeoutError(f"no reply to {message.get('type')!r} in time") from None
        except httpx.TransportError as exc:
            raise ConnectionClosed(None, f"could not reach the bridge: {exc!r}") from None

    # -- events -------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Streamed messages after ``session_created``, in arrival order, until the stream ends."""
        while True:
            item = await self._events.get()
            if item is _END:
                self._events.put_nowait(_END)  # let other iterators end too
                return
            yield item

    async def _read_loop(self) -> None:
        params = {
            key: value for key, value in (("campaign_id", self.campaign_id), ("epoch", self.epoch)) if value
        }
        headers = {"Authorization": f"Bearer {self._token}"}
        if self.last_seq is not None:
            headers["Last-Event-ID"] = str(self.last_seq)
        try:
            async with aconnect_sse(
                self._http, "GET", EVENTS_PATH, params=params, headers=headers, timeout=_STREAM_TIMEOUT
            ) as source:
                if source.response.status_code != 200:
                    await source.response.aread()
                    self._refused(source.response)
                    return
                async for event in source.aiter_sse():
                    message = _decode(event.data)
                    if message is not None:
                        self._receive(message)
            self.close_reason = self.close_reason or "the bridge ended the stream"
        except (httpx.HTTPError, SSEError) as exc:
            self.close_reason = self.close_reason or f"the stream failed: {exc!r}"
        finally:
            self._ended = True
            for waiting in (self._opened, self._joined):
                if waiting is not None and not waiting.done():
                    waiting.set_exception(ConnectionClosed(None, self.close_reason or "closed"))
            self._events.put_nowait(_END)

    def _refused(self, response: httpx.Response) -> None:
        body = _json_object(response) or {}
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        assert isinstance(error, dict)
        code = str(error.get("code", f"http_{response.status_code}"))
        self.close_reason = f"{code}: {error.get('message', response.text[:200])}"
        if self._opened is not None and not self._opened.done():
            self._opened.set_exception(
                BridgeClientError(code, str(error.get("message", "")), error.get("data"))
            )

    def _receive(self, message: dict[str, Any]) -> None:
        if self._opened is not None and not self._opened.done():
            if message.get("type") == "session_created":
                self._opened.set_result(message)
                return
            error = message.get("error") or {}
            self._opened.set_exception(
                BridgeClientError(error.get("code", "unexpected"), error.get("message", str(message)))
            )
            return
        kind = message.get("type")
        if self._joined is not None and not self._joined.done():
            if kind == "error":
                error = message.get("error") or {}
                self._joined.set_exception(
                    BridgeClientError(
                        error.get("code", "unexpected"), error.get("message", str(message)), error.get("data")
                    )
                )
                return
            self._joined.set_result(message)
        if kind == "campaign_snapshot":
            self._note_snapshot(message.get("data") or {})
        elif isinstance(message.get("seq"), int):
            self.last_seq = message["seq"]
        elif kind == "disconnect":
            self.close_reason = str(message.get("reason") or "disconnect")
        self._events.put_nowait(message)

    def _note_snapshot(self, data: dict[str, Any]) -> None:
        """Where this session's campaign stands; a recovered one is followed by its missed events."""
        epoch = data.get("epoch")
        if data.get("recovered"):
            self.epoch = epoch if isinstance(epoch, str) else self.epoch
            return
        seq = data.get("seq")
        if isinstance(seq, int):
            same = data.get("campaign_id") == self.campaign_id and epoch == self.epoch
            # A snapshot answering a POST can arrive after events that followed it on the stream.
            self.last_seq = max(seq, self.last_seq) if same and self.last_seq is not None else seq
        self.epoch = epoch if isinstance(epoch, str) else None
        self.campaign_id = data.get("campaign_id", self.campaign_id)


def _decode(data: str) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        value = response.json()
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
