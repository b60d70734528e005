"""The SSE fallback: ``GET /api/events`` streams a session's messages, ``POST /api/messages`` sends.

For clients that cannot hold a WebSocket (proxies that strip ``Upgrade``, locked-down networks),
the same session is split over two kinds of HTTP request:

- ``GET /api/events`` (an ``EventSource``) authenticates with ``?token=``, the ``ttrpg_access``
  cookie or ``Authorization: Bearer``, opens a session exactly as ``/ws?token=`` does (joining
  ``campaign_id`` when given, resuming after ``Last-Event-ID`` or ``last_seq`` + ``epoch``), and
  streams every message the session gets, one SSE event each: ``data:`` is the JSON envelope,
  ``id:`` its ``seq`` when it has one, so the browser resumes by itself after a drop. A bad
  token is answered 401 before the stream starts.
- ``POST /api/messages`` takes one envelope, as on the WebSocket, and answers with its reply.
  An envelope whose ``session_id`` names a live SSE session of the same user is handled in it
  (its table applies); without ``session_id`` it runs in a short-lived session of its own.

A stream goes through these states::

    OPENING -> OPEN -> CLOSING -> CLOSED

It is authenticated and registered (in ``bridge.connections`` and :class:`SseSessions`) before
the response starts. What arrives before the response starts (the replay of a resumed session)
waits in a list bounded by ``replay_limit + outbox_limit``; after, messages queue in a bounded
outbox that the response drains. A client too slow to drain it has its stream cut at once (the
response is left unfinished, which uvicorn logs); it reconnects and resumes from its last
``seq``. :meth:`SseStream.close` ends the stream after what is queued. The response owns the
stream's end: whatever way it finishes (client gone, closed, cut, cancelled), the session is
released.

Shutdown: the bridge's drain sends ``disconnect`` (:meth:`SseStream.announce_shutdown`), waits for
in-flight requests, then closes. sse-starlette also notices the server exiting and would cancel
streams on its own; the response asks it for a grace period instead and does the same drain
itself if the bridge has not (under a plain uvicorn, for instance), so a client always gets the
notice before its stream ends.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import structlog
from fastapi import APIRouter, Cookie, Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Gauge
from pydantic import BaseModel, ConfigDict
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from ttrpg_mcp.bridge import frames, protocol
from ttrpg_mcp.bridge.close_codes import CLOSE_SERVICE_RESTART, CLOSE_TRY_AGAIN_LATER
from ttrpg_mcp.bridge.delivered import DeliveredEvents
from ttrpg_mcp.bridge.dispatch import BridgeSession, Outcome
from ttrpg_mcp.bridge.errors import ERROR_CODES, BridgeError
from ttrpg_mcp.bridge.http.auth_routes import ErrorDetail, error_response, error_responses
from ttrpg_mcp.bridge.ordering import ArrivalOrder, Turn
from ttrpg_mcp.bridge.origins import origin_allowed
from ttrpg_mcp.bridge.outbox_budget import OutboxBudget
from ttrpg_mcp.bridge.runtime import RETRY_AFTER_MS

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.auth.service import AuthenticatedUser
    from ttrpg_mcp.bridge.runtime import Bridge

__all__ = [
    "ACCESS_COOKIE",
    "KEEPALIVE_INTERVAL",
    "RECONNECT_DELAY_MS",
    "WRITE_BATCH",
    "WRITE_BATCH_BYTES",
    "ReplyEnvelope",
    "SseSessions",
    "SseStream",
    "StreamState",
    "install_sse_routes",
]

log = structlog.get_logger("ttrpg_mcp.bridge.sse")

# Proxies and load balancers commonly cut a response idle for 30-60 s; a comment line every
# 15 s keeps the stream open through them at a cost of a few bytes.
KEEPALIVE_INTERVAL = 15.0
# The ``retry:`` sent once per stream: how long an EventSource waits before reconnecting. The
# same wait the bridge asks for after a shutdown notice, so a restart is bridged in one try.
RECONNECT_DELAY_MS = RETRY_AFTER_MS
# The cookie a browser may carry the access token in (EventSource cannot set headers).
ACCESS_COOKIE = "ttrpg_access"
# On server exit sse-starlette cancels streams after this much more than the bridge's drain
# needs (in-flight grace, then writing the last messages); uvicorn's own limit is grace + 5 s.
_EXIT_MARGIN = 3.0
# An oversize message is read only this far: enough to find its ``id`` for the error reply.
_ID_SCAN_BYTES = 512
_DRAIN_POLL = 0.05
# Queued messages (or bytes of them) one write of the stream carries at most; past either the
# response writes what it has and lets other tasks run before taking more.
WRITE_BATCH = 64
WRITE_BATCH_BYTES = 64 * 1024


class StreamState(enum.Enum):
    OPENING = "opening"  # authenticated; the response has not started yet
    OPEN = "open"
    CLOSING = "closing"  # nothing more is queued; the stream ends after what is
    CLOSED = "closed"


class _Close:
    """The outbox's last item: end the stream here."""

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class SseSessions:
    """The live SSE streams of one bridge, by session id, so that a POST finds its session."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self._streams: dict[str, SseStream] = {}
        self.active = Gauge(
            "sse_connections_active", "Open SSE event streams", registry=bridge.metrics.registry
        )

    def get(self, session_id: str) -> SseStream | None:
        return self._streams.get(session_id)

    def add(self, stream: SseStream) -> None:
        self._streams[stream.session.session_id] = stream
        self.active.inc()

    def discard(self, stream: SseStream) -> None:
        if self._streams.pop(stream.session.session_id, None) is not None:
            self.active.dec()

    def __len__(self) -> int:
        return len(self._streams)


class SseStream:
    """One EventSource's session, from authentication to the end of its response.

    Implements what the bridge's drain expects of a connection: :attr:`in_flight`,
    :meth:`announce_shutdown` and :meth:`close`. :meth:`send` never waits (rooms call it under
    their lock); past ``outbox_limit`` queued messages the stream is cut.
    """

    def __init__(self, bridge: Bridge, sessions: SseSessions, peer: str | None) -> None:
        self._bridge = bridge
        self._sessions = sessions
        self._peer = peer
        self.session = BridgeSession(transport="sse", send=self.send)
        self.state = StreamState.OPENING
        self.in_flight = 0
        self.end_reason = "client gone"
        # Before the response starts nothing drains the outbox, yet joining may replay up to
        # replay_limit events: they wait here, after the replies, then the outbox takes over.
        self._replies: list[dict[str, Any]] = []
        self._early: list[dict[str, Any]] = []
        self._early_limit = bridge.settings.replay_limit + bridge.settings.outbox_limit
        self._outbox, self._inbox = anyio.create_memory_object_stream[dict[str, Any] | _Close](
            bridge.settings.outbox_limit
        )
        self._budget = OutboxBudget(bridge.settings.outbox_max_bytes)
        # Cancelled to cut the response at once (slow consumer); may be cancelled before it starts.
        self.cut_scope = anyio.CancelScope()
        # Set by sse-starlette when the server is exiting.
        self.server_exiting = anyio.Event()
        self._announced = False
        # POSTs of one session are applied in the order they arrive, like one socket's frames.
        self._order = ArrivalOrder()
        self._delivered = DeliveredEvents()

    # -- opening ------------------------------------------------------------------------------

    async def open(
        self, token: str, campaign_id: str | None, last_seq: int | None, epoch: str | None
    ) -> None:
        """Authenticate and join; a refused token (or a full quota) raises :class:`BridgeError`."""
        bridge = self._bridge
        try:
            self._replies = await bridge.dispatcher.open_session(
                self.session, token, campaign_id, None, last_seq=last_seq, epoch=epoch
            )
        except BaseException:
            await self.finish(logged=False)
            raise
        for reply in self._replies:
            self._delivered.admit(reply)
        bridge.connections.add(self)
        self._sessions.add(self)
        bridge.pool.add_listener(self.session.session_id, self._on_notification)
        log.info(
            "sse_opened",
            client=self._peer,
            campaign_id=campaign_id,
            resume_from=last_seq,
            transport="sse",
        )
        if bridge.dispatcher.shutting_down:  # the drain started while we authenticated
            await self._drain_self()

    @property
    def user_id(self) -> str | None:
        return self.session.user.user_id if self.session.user is not None else None

    def refresh_user(self, user: AuthenticatedUser) -> None:
        """A POST proved the same user with a token that lives longer: the session follows it."""
        current = self.session.user
        if (
            current is not None
            and user.user_id == current.user_id
            and user.token_expires_at > current.token_expires_at
        ):
            self.session.user = user

    # -- handling POSTs -----------------------------------------------------------------------

    def take_turn(self) -> Turn:
        """The next POST's place in this session's order (take it as the request arrives)."""
        return self._order.take()

    async def handle(self, raw: bytes, turn: Turn | None = None) -> Outcome:
        """One POSTed message in this session; replies beyond the first go to the stream."""
        self.in_flight += 1
        try:
            outcome = await self._bridge.dispatcher.handle_raw(self.session, raw, turn)
            for reply in outcome.replies[:1]:  # answered in the POST's response
                self._delivered.admit(reply)
            for extra in outcome.replies[1:]:
                await self.send(extra)
            if outcome.close is not None:
                self.close(*outcome.close)
            return outcome
        finally:
            self.in_flight -= 1

    # -- sending ------------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        """Queue a message for the stream; a client too slow to drain its queue is cut off."""
        self._queue(message)

    def _queue(self, message: dict[str, Any]) -> None:
        if not self._delivered.admit(message):
            return  # a replay overlapping what this stream already got: sent once only
        if self.state is StreamState.OPENING:
            if len(self._early) >= self._early_limit:
                self._cut()
            else:
                self._early.append(message)
            return
        if self.state is not StreamState.OPEN:
            return
        if not self._budget.admit(message):
            self._cut()  # over the byte budget: as slow as a full queue
            return
        try:
            self._outbox.send_nowait(message)
        except anyio.WouldBlock:
            self._budget.release(message)
            self._cut()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._budget.release(message)

    def close(self, code: int, reason: str) -> None:
        """End the stream after everything queued so far (``code`` is kept for the log)."""
        if self.state in (StreamState.CLOSING, StreamState.CLOSED):
            return
        self.state = StreamState.CLOSING
        try:
            self._outbox.send_nowait(_Close(code, reason))
        except anyio.WouldBlock:
            self._cut()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    async def announce_shutdown(self, retry_after_ms: int) -> None:
        """Tell the client the bridge is going away and when to come back (once)."""
        if self._announced:
            return
        self._announced = True
        await self.send(
            protocol.envelope(
                "disconnect",
                session_id=self.session.session_id,
                reason="server shutting down",
                retry_after=retry_after_ms,
            )
        )

    def _cut(self) -> None:
        limit = self._bridge.settings.outbox_limit
        log.warning(
            "slow_consumer_disconnected",
            queued=limit,
            queued_bytes=self._budget.queued,
            transport="sse",
            slow_session=self.session.session_id,  # the log context is the sender's
        )
        self._bridge.metrics.ws_errors_total.labels(error_type="slow_consumer").inc()
        self.state = StreamState.CLOSING
        self.end_reason = f"{CLOSE_TRY_AGAIN_LATER}: client too slow; reconnect to resume"
        self.cut_scope.cancel()

    def _on_notification(self, notification: dict[str, Any]) -> None:
        """An MCP child's notification for this session, forwarded as an event."""
        self._queue(
            protocol.envelope(
                "mcp_notification", session_id=self.session.session_id, data=notification, scope="session"
            )
        )

    # -- the response's side ------------------------------------------------------------------

    async def events(self) -> AsyncIterator[bytes]:
        """What the response streams: the opening replies, what came meanwhile, then the outbox.

        Each chunk is every message queued at that moment, encoded as consecutive SSE events
        (up to :data:`WRITE_BATCH` messages or :data:`WRITE_BATCH_BYTES`): one write and one
        event-loop pass per chunk rather than per message, which at a busy table is one per
        seat per event. Between full chunks it lets other tasks run, like the WebSocket writer.
        """
        if self.state is StreamState.OPENING:
            self.state = StreamState.OPEN
        retry: int | None = RECONNECT_DELAY_MS
        pending = [*self._replies, *self._early]
        self._replies, self._early = [], []
        for start in range(0, len(pending), WRITE_BATCH):
            chunk = bytearray()
            for message in pending[start : start + WRITE_BATCH]:
                chunk += _sse_event(message, retry)
                retry = None
            yield bytes(chunk)
        async for first in self._inbox:
            chunk = bytearray()
            taken: list[dict[str, Any]] = []
            item: dict[str, Any] | _Close = first
            while True:
                if isinstance(item, _Close):
                    if chunk:
                        yield bytes(chunk)
                        self._release(taken)
                    self.end_reason = f"{item.code}: {item.reason}"
                    return
                chunk += _sse_event(item, retry)
                taken.append(item)
                retry = None
                if len(taken) >= WRITE_BATCH or len(chunk) >= WRITE_BATCH_BYTES:
                    break
                try:
                    item = self._inbox.receive_nowait()
                except anyio.WouldBlock:
                    break
            yield bytes(chunk)
            self._release(taken)

    def _release(self, sent: list[dict[str, Any]]) -> None:
        for message in sent:
            self._budget.release(message)

    async def background(self) -> None:
        """Runs beside the response: heartbeats, and the drain when the server exits first."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._heartbeats)
            await self.server_exiting.wait()
            await self._drain_self()

    async def _heartbeats(self) -> None:
        interval = self._bridge.settings.heartbeat_interval
        while True:
            await anyio.sleep(interval)
            await self.send(protocol.envelope("heartbeat", session_id=self.session.session_id))

    async def _drain_self(self) -> None:
        """What the bridge's drain does, for this stream alone."""
        await self.announce_shutdown(RETRY_AFTER_MS)
        with anyio.move_on_after(self._bridge.settings.shutdown_grace):
            while self.in_flight:  # noqa: ASYNC110  # in_flight is a plain counter, like the drain's
                await anyio.sleep(_DRAIN_POLL)
        self.close(CLOSE_SERVICE_RESTART, "server shutting down; reconnect shortly")

    async def finish(self, *, logged: bool = True) -> None:
        """Release everything the session holds; safe to call twice, and under cancellation."""
        if self.state is StreamState.CLOSED:
            return
        self.state = StreamState.CLOSED
        with anyio.CancelScope(shield=True):
            self._sessions.discard(self)
            self._bridge.connections.discard(self)
            self._outbox.close()
            self._inbox.close()
            await self._bridge.release_session(self.session)
            if self.session.authenticated_at is not None:
                duration = time.monotonic() - self.session.started
                self._bridge.metrics.session_duration_seconds.observe(duration)
            if logged:
                log.info(
                    "sse_closed",
                    reason=self.end_reason,
                    duration=round(time.monotonic() - self.session.started, 3),
                )


def _sse_event(message: dict[str, Any], retry: int | None) -> bytes:
    """One message as one SSE event: ``data:`` its JSON, ``id:`` its ``seq`` when it has one."""
    seq = message.get("seq")
    return ServerSentEvent(
        frames.encode(message),
        id=str(seq) if isinstance(seq, int) else None,
        retry=retry,
    ).encode()


class _EventStreamResponse(EventSourceResponse):
    """sse-starlette's response, owning its :class:`SseStream`'s end on every path."""

    def __init__(self, stream: SseStream, grace: float) -> None:
        super().__init__(
            stream.events(),
            ping=KEEPALIVE_INTERVAL,
            data_sender_callable=stream.background,
            shutdown_event=stream.server_exiting,
            shutdown_grace_period=grace + _EXIT_MARGIN,
        )
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session_id = self._stream.session.session_id
        with structlog.contextvars.bound_contextvars(connection=session_id, session_id=session_id):
            try:
                with self._stream.cut_scope:
                    await super().__call__(scope, receive, send)
            finally:
                await self._stream.finish()


# -- routes -----------------------------------------------------------------------------------

_access_bearer = HTTPBearer(
    scheme_name="accessToken",
    description="An access token from login, register or refresh.",
    auto_error=False,
)
_AUTH_ERRORS = ("unauthenticated", "invalid_token", "token_expired")

router = APIRouter(tags=["realtime"])


class ReplyEnvelope(BaseModel):
    """A bridge message as on the WebSocket: a reply, or an ``error`` (see docs/protocol.md)."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: str
    timestamp: int
    version: str
    session_id: str | None = None
    request_id: str | None = None
    error: ErrorDetail | None = None


def _envelope_errors(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for errors answered with an ``error`` envelope."""
    return {status: {**entry, "model": ReplyEnvelope} for status, entry in error_responses(*codes).items()}


def _token_of(
    query: str | None, cookie: str | None, credentials: HTTPAuthorizationCredentials | None
) -> tuple[str | None, bool]:
    """The access token and whether it came from the cookie (the header wins, then the query)."""
    if credentials is not None:
        return credentials.credentials, False
    if query:
        return query, False
    return (cookie or None), bool(cookie)


def _sessions(request: Request) -> SseSessions:
    sessions = getattr(request.app.state, "sse_sessions", None)
    if not isinstance(sessions, SseSessions):
        raise RuntimeError("app.state.sse_sessions is not set; call install_sse_routes(app)")
    return sessions


@router.get(
    "/api/events",
    summary="Open a session as a stream of Server-Sent Events.",
    description=(
        "The SSE fallback of `/ws`: authenticates like `/ws?token=`, joins `campaign_id` when "
        "given, and streams every message of the session as one event (`data:` the JSON "
        "envelope, `id:` its `seq` when it has one). `Last-Event-ID` (or `last_seq` with "
        "`epoch`) resumes after a drop: the missed events, or a snapshot. Send messages with "
        "`POST /api/messages` and this session's `session_id`."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "The event stream: `session_created` first, then everything the session gets.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **error_responses(*_AUTH_ERRORS, "invalid_params", "limit_reached", "shutting_down"),
    },
)
async def open_event_stream(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_access_bearer)],
    campaign_id: Annotated[
        str | None, Query(max_length=128, description="Join this campaign's table at once.")
    ] = None,
    last_seq: Annotated[
        int | None, Query(ge=0, description="The last `seq` seen (resume); `Last-Event-ID` wins.")
    ] = None,
    epoch: Annotated[str | None, Query(max_length=128, description="The epoch of that `seq`.")] = None,
    token: Annotated[
        str | None, Query(max_length=8192, description="Access token (EventSource cannot send headers).")
    ] = None,
    access_cookie: Annotated[str | None, Cookie(alias=ACCESS_COOKIE, include_in_schema=False)] = None,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="Sent by EventSource on reconnect.")
    ] = None,
) -> Response:
    sessions = _sessions(request)
    bridge = sessions.bridge
    if not origin_allowed(request.headers, bridge.settings.allowed_origins):
        return error_response(BridgeError("forbidden", "this page's origin may not use the bridge"))
    access, _from_cookie = _token_of(token, access_cookie, credentials)
    if bridge.dispatcher.shutting_down:
        return error_response(BridgeError("shutting_down", "the bridge is shutting down; reconnect shortly"))
    if access is None:
        return error_response(
            BridgeError("unauthenticated", "send an access token: ?token=, the cookie or a Bearer header")
        )
    if last_event_id:
        if not last_event_id.isdigit():
            return error_response(
                BridgeError("invalid_params", "Last-Event-ID must be the last seq seen (an integer)")
            )
        last_seq = int(last_event_id)
    client = request.client
    stream = SseStream(bridge, sessions, f"{client.host}:{client.port}" if client else None)
    with structlog.contextvars.bound_contextvars(connection=stream.session.session_id):
        try:
            await stream.open(access, campaign_id, last_seq, epoch)
        except BridgeError as error:
            bridge.metrics.ws_errors_total.labels(error_type=error.code).inc()
            log.info("sse_refused", code=error.code)
            return error_response(error)
    return _EventStreamResponse(stream, bridge.settings.shutdown_grace)


_MESSAGE_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "One client message, exactly as on the WebSocket "
                "(`ttrpg-bridge schema` prints every type's schema).",
                "required": ["type"],
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string"},
                    "session_id": {"type": "string", "description": "Your SSE session, if any."},
                },
                "additionalProperties": True,
            },
            "example": {
                "id": "d20",
                "type": "dice_roll",
                "session_id": "ses_5be0a1",
                "data": {"expression": "1d20+5", "purpose": "attack"},
            },
        }
    },
}


@router.post(
    "/api/messages",
    summary="Send one message, as on the WebSocket, and get its reply.",
    description=(
        "With `session_id` naming your live `/api/events` session the message is handled in "
        "it (its campaign applies, its events come on the stream); without it, in a session of "
        "its own that ends with the request. The body of every answer is a message envelope; "
        "errors carry `error` with the code's HTTP status."
    ),
    response_class=JSONResponse,
    responses={
        200: {"model": ReplyEnvelope, "description": "The reply."},
        202: {"model": ReplyEnvelope, "description": "Accepted; the message has no reply (an `ack`)."},
        **_envelope_errors(
            "invalid_json",
            "invalid_message",
            "unknown_type",
            "message_too_large",
            *_AUTH_ERRORS,
            "forbidden",
            "not_found",
            "conflict",
            "rate_limited",
            "mcp_unavailable",
            "mcp_timeout",
            "shutting_down",
        ),
    },
    openapi_extra={"requestBody": _MESSAGE_BODY},
)
async def post_message(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_access_bearer)],
    access_cookie: Annotated[str | None, Cookie(alias=ACCESS_COOKIE, include_in_schema=False)] = None,
) -> JSONResponse:
    sessions = _sessions(request)
    bridge = sessions.bridge
    if not origin_allowed(request.headers, bridge.settings.allowed_origins):
        return _error(BridgeError("forbidden", "this page's origin may not use the bridge"))
    access, from_cookie = _token_of(None, access_cookie, credentials)
    if access is None:
        return _error(BridgeError("unauthenticated", "send the access token as 'Authorization: Bearer'"))
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if from_cookie and media_type != "application/json":
        # A cross-site form can post text/plain with the cookie; it cannot send application/json.
        return _error(BridgeError("forbidden", "a cookie-authenticated message must be application/json"))
    limit = bridge.settings.max_message_bytes
    raw, complete = await _read_body(request, limit)
    if not complete:
        bridge.metrics.ws_errors_total.labels(error_type="message_too_large").inc()
        error = BridgeError(
            "message_too_large", f"message exceeds the limit of {limit} bytes", {"limit": limit}
        )
        return _error(error, protocol.request_id_in_prefix(raw))
    request_id, session_id = _ids_of(raw)
    if session_id is None:
        return await _handle_alone(bridge, access, raw, request_id)
    stream = sessions.get(session_id)
    if stream is None:
        error = BridgeError(
            "not_found",
            "no live event stream has this session_id; open /api/events again",
            {"session_id": session_id},
        )
        return _error(error, request_id)
    turn = stream.take_turn()
    try:
        return await _handle_in_session(bridge, stream, access, raw, request_id, session_id, turn)
    finally:
        turn.release()  # whatever happened, later POSTs of the session go on


async def _handle_in_session(
    bridge: Bridge,
    stream: SseStream,
    access: str,
    raw: bytes,
    request_id: str | None,
    session_id: str,
    turn: Turn,
) -> JSONResponse:
    try:
        user = await bridge.auth.verify_access(access)
    except BridgeError as error:
        return _error(error, request_id)
    if user.user_id != stream.user_id:
        return _error(BridgeError("forbidden", "that session belongs to another user"), request_id)
    stream.refresh_user(user)
    with structlog.contextvars.bound_contextvars(connection=session_id, session_id=session_id):
        outcome = await stream.handle(raw, turn)
    return _answer(outcome, request_id, session_id, batch=_is_batch(raw))


async def _handle_alone(bridge: Bridge, token: str, raw: bytes, request_id: str | None) -> JSONResponse:
    """A message without a session: authenticated, handled and released within the request."""

    async def nowhere(_message: dict[str, Any]) -> None:
        """Nothing follows a one-request session; messages for it have nowhere to go."""

    session = BridgeSession(transport="http", send=nowhere)
    try:
        try:
            await bridge.dispatcher.authenticate(session, token)
        except BridgeError as error:
            return _error(error, request_id)
        outcome = await bridge.dispatcher.handle_raw(session, raw)
    finally:
        await bridge.release_session(session)
    return _answer(outcome, request_id, session.session_id, batch=_is_batch(raw))


async def _read_body(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body and True; or its opening bytes and False once it is known to exceed ``limit``."""
    declared = request.headers.get("content-length", "")
    oversize = declared.isdigit() and int(declared) > limit
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit or (oversize and len(body) >= _ID_SCAN_BYTES):
            return bytes(body), False
    return bytes(body), not oversize


def _is_batch(raw: bytes) -> bool:
    return raw.lstrip()[:1] == b"["


def _ids_of(raw: bytes) -> tuple[str | None, str | None]:
    """The message's ``id`` and ``session_id``, when it is a JSON object that has them."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None, None
    if isinstance(value, list) and value:  # a batch travels in the session of its first message
        value = value[0]
    session_id = value.get("session_id") if isinstance(value, dict) else None
    return protocol.request_id_of(value), session_id if isinstance(session_id, str) else None


def _answer(
    outcome: Outcome, request_id: str | None, session_id: str, *, batch: bool = False
) -> JSONResponse:
    """The HTTP answer: a message's first reply (or 202 and an ``ack``); a batch's every reply."""
    if batch:
        return JSONResponse(outcome.replies, status_code=200, headers={"Cache-Control": "no-store"})
    if not outcome.replies:
        ack = protocol.envelope("ack", request_id=request_id, session_id=session_id)
        return JSONResponse(ack, status_code=202, headers={"Cache-Control": "no-store"})
    reply = outcome.replies[0]
    status = 200
    error = reply.get("error")
    if isinstance(error, dict):
        status = ERROR_CODES.get(str(error.get("code")), (500, ""))[0]
    return JSONResponse(reply, status_code=status, headers={"Cache-Control": "no-store"})


def _error(error: BridgeError, request_id: str | None = None) -> JSONResponse:
    """An ``error`` envelope with the code's status (401s name the Bearer scheme)."""
    headers = {"Cache-Control": "no-store"}
    if error.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    body = protocol.error_message(error, request_id=request_id)
    return JSONResponse(body, status_code=error.http_status, headers=headers)


def install_sse_routes(app: FastAPI) -> None:
    """Serve ``GET /api/events`` and ``POST /api/messages`` for ``app.state.bridge``."""
    app.state.sse_sessions = SseSessions(app.state.bridge)
    app.include_router(router)
