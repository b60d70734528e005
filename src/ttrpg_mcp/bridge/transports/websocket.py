"""The WebSocket transport (``/ws``): a thin adapter between a socket and the dispatcher.

A connection goes through these states::

    CONNECTING -> AUTHENTICATING -> OPEN -> CLOSING -> CLOSED

It authenticates with ``?token=`` at once, or with an ``authenticate`` message within
``auth_timeout`` seconds; anything else closes it with 1008 and a reason. Once open, two tasks
share one task group: the reader (each frame is handled in its own task, at most
:data:`MAX_CONCURRENT_REQUESTS` at once, so a slow tool call does not hold up a dice roll; each
takes its turn as it is read, so changes are still applied in the order sent) and the
writer (draining a bounded outbox). The writer runs only while the outbox holds something: it
is started by the message that finds it idle and ends once the outbox is empty. A message
that finds nothing queued or being written is not queued at all when the server offers a
synchronous write (:mod:`ttrpg_mcp.bridge.transports.direct_send`) and the socket takes it at
once: that is nearly every frame of a table's fan-out, which then costs no queue and no task.
The heartbeat is an event-loop timer, not a task: a ``heartbeat`` every
``heartbeat_interval``, and a peer silent for ``idle_timeout`` is closed. Neither waits as a
task because most connections are idle most of the time, and a waiting task, its frames and
the event it waits on cost kilobytes each. When the reader ends or the writer closes the
socket, the group is cancelled; in-flight MCP requests are then cancelled in their child too.

Shutdown (:meth:`WebSocketConnection.announce_shutdown`) sends ``disconnect`` with a reason and a
retry hint; the bridge then waits for in-flight requests and closes with 1012.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ttrpg_mcp.bridge import frames, protocol
from ttrpg_mcp.bridge.close_codes import (
    CLOSE_GOING_AWAY,
    CLOSE_POLICY_VIOLATION,
    CLOSE_SERVICE_RESTART,
    CLOSE_TRY_AGAIN_LATER,
)
from ttrpg_mcp.bridge.delivered import DeliveredEvents
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.ordering import ArrivalOrder, Turn
from ttrpg_mcp.bridge.origins import origin_allowed
from ttrpg_mcp.bridge.outbox_budget import OutboxBudget
from ttrpg_mcp.bridge.session import BridgeSession
from ttrpg_mcp.bridge.transports.direct_send import direct_send_of

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.runtime import Bridge

__all__ = ["MAX_CONCURRENT_REQUESTS", "OUTBOX_LIMIT", "WebSocketConnection", "websocket_endpoint"]

log = structlog.get_logger("ttrpg_mcp.bridge.websocket")

# One connection may run this many requests at once; beyond, reading pauses (back-pressure).
MAX_CONCURRENT_REQUESTS = 32
# Messages queued for a client that reads slowly (default of the ``outbox_limit`` setting);
# past it the client is disconnected and may reconnect.
OUTBOX_LIMIT = 1024
# Queued messages a writer sends before it lets other tasks run.
WRITER_BATCH = 64
# How long a too-slow peer has to read up to our close frame before we stop waiting for it.
SLOW_CLOSE_TIMEOUT = 30.0
# RFC 6455 allows 123 bytes of close reason.
_MAX_REASON_BYTES = 123


class ConnectionState(enum.Enum):
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


def _reason(text: str) -> str:
    return text.encode()[:_MAX_REASON_BYTES].decode(errors="ignore")


async def websocket_endpoint(websocket: WebSocket) -> None:
    """The ``/ws`` route."""
    bridge: Bridge = websocket.app.state.bridge
    await WebSocketConnection(websocket, bridge).run()


class WebSocketConnection:
    """One browser (or client) socket, from accept to close."""

    def __init__(self, websocket: WebSocket, bridge: Bridge) -> None:
        self._ws = websocket
        self._bridge = bridge
        self._settings = bridge.settings
        self._outbox: MemoryObjectSendStream[dict[str, Any] | tuple[int, str]]
        self._inbox: MemoryObjectReceiveStream[dict[str, Any] | tuple[int, str]]
        self._outbox, self._inbox = anyio.create_memory_object_stream(bridge.settings.outbox_limit)
        self._budget = OutboxBudget(bridge.settings.outbox_max_bytes)
        self.session = BridgeSession(transport="websocket", send=self.send)
        self.state = ConnectionState.CONNECTING
        self.in_flight = 0
        self._last_received = time.monotonic()
        self._cancel: anyio.CancelScope | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._writing = False
        self._too_slow = False
        self._early: deque[dict[str, Any]] | None = deque()
        self._beat_timer: asyncio.TimerHandle | None = None
        self._last_beat = 0.0
        self._order = ArrivalOrder()
        self._delivered = DeliveredEvents()
        # The server's synchronous write of one frame (see direct_send), when it offers one.
        self._direct = direct_send_of(websocket.scope)

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> None:
        if not origin_allowed(self._ws.headers, self._settings.allowed_origins):
            # Before accept: the browser gets a refused handshake (HTTP 403), never a socket.
            log.warning("origin_refused", origin=self._ws.headers.get("origin"))
            self._bridge.metrics.ws_errors_total.labels(error_type="origin_refused").inc()
            await self._ws.close(CLOSE_POLICY_VIOLATION, "origin not allowed")
            return
        offered = self._ws.scope.get("subprotocols", [])
        await self._ws.accept(subprotocol=protocol.SUBPROTOCOL if protocol.SUBPROTOCOL in offered else None)
        metrics = self._bridge.metrics
        metrics.ws_connections_active.inc()
        with structlog.contextvars.bound_contextvars(connection=self.session.session_id):
            log.info(
                "connection_opened", client=_peer(self._ws), subprotocol=self._ws.scope.get("subprotocols")
            )
            try:
                if self._bridge.dispatcher.shutting_down:
                    await self._close_now(CLOSE_SERVICE_RESTART, "server shutting down; reconnect shortly")
                    return
                if await self._authenticate():
                    self._bridge.connections.add(self)
                    self._bridge.pool.add_listener(self.session.session_id, self._on_notification)
                    await self._serve()
                    if self._too_slow:
                        # The close frame waits behind what the peer has not read: bounded.
                        with anyio.move_on_after(SLOW_CLOSE_TIMEOUT):
                            await self._close_now(
                                CLOSE_TRY_AGAIN_LATER, "client too slow; reconnect to resume"
                            )
            finally:
                self._bridge.connections.discard(self)
                # Whatever is still queued will not be sent: the outbox's streams end here.
                self._outbox.close()
                self._inbox.close()
                await self._bridge.release_session(self.session)
                metrics.ws_connections_active.dec()
                if self.session.authenticated_at is not None:
                    metrics.session_duration_seconds.observe(time.monotonic() - self.session.started)
                self.state = ConnectionState.CLOSED
                log.info("connection_closed", duration=round(time.monotonic() - self.session.started, 3))

    async def _authenticate(self) -> bool:
        """True once the peer has proven who it is; False after closing it with 1008."""
        self.state = ConnectionState.AUTHENTICATING
        dispatcher = self._bridge.dispatcher
        token = self._ws.query_params.get("token")
        try:
            if token:
                query = self._ws.query_params
                last_seq = int(query["last_seq"]) if query.get("last_seq", "").isdigit() else None
                replies = await dispatcher.open_session(
                    self.session,
                    token,
                    query.get("campaign_id"),
                    None,
                    last_seq=last_seq,
                    epoch=query.get("epoch"),
                    batch=query.get("batch", "").lower() in ("1", "true"),
                )
                for reply in replies:
                    self._delivered.admit(reply)
                    await self._send_now(reply)
            else:
                with anyio.fail_after(self._settings.auth_timeout):
                    raw = await self._receive()
                if raw is None:
                    return False
                value = protocol.decode_json(raw)
                message = protocol.parse_client_message(value)
                if not isinstance(message, protocol.Authenticate):
                    raise BridgeError("unauthenticated", "the first message must be 'authenticate'")
                for reply in await dispatcher.open_session(
                    self.session, message.token, message.campaign_id, message.id
                ):
                    self._delivered.admit(reply)
                    await self._send_now(reply)
        except TimeoutError:
            self._bridge.metrics.ws_errors_total.labels(error_type="auth_timeout").inc()
            await self._close_now(CLOSE_POLICY_VIOLATION, "authentication timeout")
            return False
        except BridgeError as error:
            self._bridge.metrics.ws_errors_total.labels(error_type=error.code).inc()
            log.info("authentication_refused", code=error.code)
            await self._close_now(CLOSE_POLICY_VIOLATION, f"{error.code}: {error.message}")
            return False
        # What arrived while authenticating (a replay can be long) goes out before anything else.
        while self._early:
            await self._send_now(self._early.popleft())  # a replay can be thousands long
        self._early = None
        self.state = ConnectionState.OPEN
        return True

    async def _serve(self) -> None:
        try:
            async with anyio.create_task_group() as group:
                self._cancel, self._group = group.cancel_scope, group
                self._wake_writer()  # for what was queued before the group ran
                self._last_beat = time.monotonic()
                self._schedule_beat()
                limiter = anyio.CapacityLimiter(MAX_CONCURRENT_REQUESTS)
                while True:
                    raw = await self._receive()
                    if raw is None:
                        break
                    # One token per frame, held by an object of its own: two identical frames in
                    # flight at once are still two borrowers.
                    borrower = object()
                    await limiter.acquire_on_behalf_of(borrower)  # waits when too many are running
                    # The turn is taken here, in read order; changes are applied in that order.
                    group.start_soon(self._handle, raw, limiter, borrower, self._order.take())
                group.cancel_scope.cancel()
        finally:
            self._group = None
            self._stop_beats()

    async def _handle(
        self, raw: str | bytes, limiter: anyio.CapacityLimiter, borrower: object, turn: Turn
    ) -> None:
        self.in_flight += 1
        try:
            outcome = await self._bridge.dispatcher.handle_raw(self.session, raw, turn)
            for reply in outcome.replies:
                await self.send(reply)
            if outcome.close is not None:
                self.close(*outcome.close)
        finally:
            self.in_flight -= 1
            limiter.release_on_behalf_of(borrower)

    # -- sending ------------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        """Queue a message for this client; a client too slow to drain its queue is disconnected."""
        self._queue(message)

    def _queue(self, message: dict[str, Any]) -> None:
        if self.state in (ConnectionState.CLOSING, ConnectionState.CLOSED):
            return
        if not self._delivered.admit(message):
            return  # a replay overlapping what this connection already got: sent once only
        if self._early is None:
            # Nothing waiting before it (no early message, nothing in the outbox or being
            # written): straight onto the socket when the server allows it, no queue, no task.
            # Once anything is queued, everything after it queues too until the writer is done,
            # so messages keep their order.
            if (
                self._direct is not None
                and not self._writing
                and not self._budget.queued
                and self._direct(frames.encode(message))
            ):
                self._bridge.metrics.ws_frames_direct += 1
                return
        elif len(self._early) < self._settings.replay_limit + self._settings.outbox_limit:
            # Before the writer runs (authentication, replay), hold messages aside, bounded by
            # the longest replay plus a full queue.
            self._early.append(message)
            return
        try:
            if not self._budget.admit(message):
                raise anyio.WouldBlock  # over the byte budget: as slow as a full queue
            self._outbox.send_nowait(message)
            self._bridge.metrics.ws_frames_queued += 1
            self._wake_writer()
        except anyio.WouldBlock:
            # Never wait on this socket here: the caller is a room's fan-out, and waiting would
            # make one slow reader everyone's problem. Stop the connection's tasks instead;
            # run() then closes the socket with 1013 on its own time.
            self._budget.release(message)
            log.warning(
                "slow_consumer_disconnected",
                queued=self._settings.outbox_limit,
                queued_bytes=self._budget.queued,
                slow_session=self.session.session_id,  # the log context is the sender's
            )
            self._bridge.metrics.ws_errors_total.labels(error_type="slow_consumer").inc()
            self.state = ConnectionState.CLOSING
            self._too_slow = True
            if self._cancel is not None:
                self._cancel.cancel()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def close(self, code: int, reason: str) -> None:
        """Close after everything queued so far has been sent."""
        if self.state in (ConnectionState.CLOSING, ConnectionState.CLOSED):
            return
        self.state = ConnectionState.CLOSING
        try:
            self._outbox.send_nowait((code, reason))
            self._wake_writer()
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            if self._cancel is not None:
                self._cancel.cancel()

    async def announce_shutdown(self, retry_after_ms: int) -> None:
        """Tell the client the bridge is going away and when to come back."""
        await self.send(
            protocol.envelope(
                "disconnect",
                session_id=self.session.session_id,
                reason="server shutting down",
                retry_after=retry_after_ms,
            )
        )

    def _wake_writer(self) -> None:
        """Start the writer if it is not running (outside ``_serve`` the outbox waits for it)."""
        if self._writing or self._group is None:
            return
        self._writing = True
        try:
            self._group.start_soon(self._write_loop)
        except RuntimeError:  # the group is ending: nothing will be sent any more
            self._writing = False

    async def _write_loop(self) -> None:
        """Send what the outbox holds, in order, then end (the next message starts a writer).

        What is queued is taken at once, without a pass through the event loop per message (at a
        busy table that would be one loop iteration per seat per event), yielding every
        :data:`WRITER_BATCH` messages so that one busy writer does not keep the others waiting
        (the socket's own flow control still pauses a full send).
        """
        taken = 0
        try:
            while True:
                try:
                    item = self._inbox.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    return
                if isinstance(item, tuple):
                    await self._close_now(*item)
                    if self._cancel is not None:
                        self._cancel.cancel()
                    return
                await self._send_now(item)
                self._budget.release(item)
                taken += 1
                if taken >= WRITER_BATCH:
                    await anyio.lowlevel.checkpoint()
                    taken = 0
        finally:
            self._writing = False

    async def _send_now(self, message: dict[str, Any]) -> None:
        text = frames.encode(message)
        if self._direct is not None and self._direct(text):
            return  # written at once; else the ASGI send waits for the socket
        try:
            await self._ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The peer went away mid-send: end the connection quietly, like a normal close.
            self.state = ConnectionState.CLOSING
            if self._cancel is not None:
                self._cancel.cancel()

    async def _close_now(self, code: int, reason: str) -> None:
        self.state = ConnectionState.CLOSING
        if self._ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self._ws.close(code, _reason(reason))

    # -- receiving and liveness ---------------------------------------------------------------

    async def _receive(self) -> str | bytes | None:
        """The next frame's payload, or None once the peer has gone."""
        if self._ws.application_state != WebSocketState.CONNECTED:
            return None
        try:
            event = await self._ws.receive()
        except RuntimeError:
            return None  # the socket was closed by us while waiting
        if event["type"] == "websocket.disconnect":
            return None
        self._last_received = time.monotonic()
        text: str | None = event.get("text")
        return text if text is not None else event.get("bytes", b"")

    def _schedule_beat(self) -> None:
        tick = min(self._settings.heartbeat_interval, self._settings.idle_timeout / 3)
        self._beat_timer = asyncio.get_running_loop().call_later(tick, self._beat)

    def _stop_beats(self) -> None:
        if self._beat_timer is not None:
            self._beat_timer.cancel()
            self._beat_timer = None

    def _beat(self) -> None:
        """Each tick: close a peer silent for ``idle_timeout``, or send a heartbeat when one is due."""
        self._beat_timer = None
        if self.state is not ConnectionState.OPEN:
            return
        now = time.monotonic()  # the timer runs in the connection's context: its log fields hold
        if now - self._last_received > self._settings.idle_timeout:
            log.info("idle_timeout", silent_for=round(now - self._last_received, 1))
            self._bridge.metrics.ws_errors_total.labels(error_type="idle_timeout").inc()
            self.close(CLOSE_GOING_AWAY, "idle timeout")
            return
        if now - self._last_beat >= self._settings.heartbeat_interval:
            self._last_beat = now
            self._queue(protocol.envelope("heartbeat", session_id=self.session.session_id))
        self._schedule_beat()

    def _on_notification(self, notification: dict[str, Any]) -> None:
        """An MCP child's notification for this session, forwarded as an event."""
        message = protocol.envelope(
            "mcp_notification", session_id=self.session.session_id, data=notification, scope="session"
        )
        if not self._budget.admit(message):
            return  # a progress note for a client this far behind is not worth its memory
        try:
            self._outbox.send_nowait(message)
            self._wake_writer()
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._budget.release(message)


def _peer(websocket: WebSocket) -> str | None:
    client = websocket.client
    return f"{client.host}:{client.port}" if client else None
