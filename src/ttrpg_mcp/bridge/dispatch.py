"""One message's way through the bridge: decode, validate, authorise, run, reply.

The dispatcher knows no transport. A transport hands it the raw text of a frame together with
the :class:`BridgeSession` it arrived on and gets back an :class:`Outcome`: the replies to send
and, rarely, a close instruction. Every failure becomes an error reply here; nothing a client
sends raises out of :meth:`Dispatcher.handle_raw`, so a bad message never ends a connection.

MCP operations (``tool_call``, ``tool_discover``, ``resource_get``, ``prompt_get``) are answered
with ``response`` carrying ``result`` or ``error`` and the ``duration`` in milliseconds; every other
failure is an ``error`` message. Both carry the request's ``request_id``.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from ttrpg_mcp import tool_arguments
from ttrpg_mcp.bridge import audit, events, frames, protocol, requests, resends
from ttrpg_mcp.bridge.cache import ResponseCache
from ttrpg_mcp.bridge.close_codes import CLOSE_NORMAL, CLOSE_POLICY_VIOLATION
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.limits import InputLimits, check_structure
from ttrpg_mcp.bridge.ordering import Turn, unordered
from ttrpg_mcp.bridge.permissions import effective_tool_policy, tool_allowed
from ttrpg_mcp.bridge.ratelimit import RateLimiter
from ttrpg_mcp.bridge.session import BridgeSession
from ttrpg_mcp.bridge.store.group_commit import GroupCommit
from ttrpg_mcp.bridge.table import TableActions
from ttrpg_mcp.bridge.tool_errors import tool_error
from ttrpg_mcp.bridge.tool_index import ToolIndex, ToolIndexCache
from ttrpg_mcp.server.secrecy import Viewer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ttrpg_mcp.bridge.auth.service import AuthenticatedUser, AuthService
    from ttrpg_mcp.bridge.backplane import SharedBuckets
    from ttrpg_mcp.bridge.mcp_pool import McpPool
    from ttrpg_mcp.bridge.metrics import BridgeMetrics
    from ttrpg_mcp.bridge.rooms import Rooms
    from ttrpg_mcp.bridge.settings import BridgeSettings
    from ttrpg_mcp.bridge.store import BridgeStore

__all__ = ["CLOSE_NORMAL", "CLOSE_POLICY_VIOLATION", "BridgeSession", "Dispatcher", "Outcome", "tool_error"]

log = structlog.get_logger("ttrpg_mcp.bridge.dispatch")

# Rate-limit refusals are counted over this many seconds to tell a burst from abuse.
_STRIKE_WINDOW = 60.0

# The SDK prefixes a tool's error text with "Error executing tool NAME: "; after it, this
# project's server puts its own code ("not_found: ...").
# Tools whose effect spans campaigns; the HTTP API offers them with membership rules.
# Messages that change something: a resend with the same id is answered, never re-applied.
_RESENDABLE = frozenset(
    {
        "dice_roll",
        "state_update",
        "initiative_update",
        "canvas_draw",
        "campaign_update",
        "character_update",
        "tool_call",
    }
)
# Messages that change nothing at the table may run beside later ones (see bridge.ordering);
# every other message is applied and numbered in the order its connection sent it.
_SIDE_BY_SIDE = frozenset({"tool_call", "tool_discover", "resource_get", "prompt_get", "heartbeat"})
_HTTP_ONLY_TOOLS = frozenset({"create_campaign", "list_campaigns"})


@dataclass(frozen=True)
class Outcome:
    """What a transport does after one message: send ``replies``, then close if asked."""

    replies: list[dict[str, Any]] = field(default_factory=list)
    close: tuple[int, str] | None = None
    audited: bool = False  # the audit entry was written with the change


class Dispatcher:
    """Routes each validated message to its handler; shared by every transport."""

    def __init__(
        self,
        *,
        settings: BridgeSettings,
        auth: AuthService,
        pool: McpPool,
        metrics: BridgeMetrics,
        rooms: Rooms,
        store: BridgeStore,
        buckets: SharedBuckets | None = None,
    ) -> None:
        self._settings = settings
        # With several nodes, a user's message budget is one across all of them (Redis).
        self._buckets = buckets
        self._auth = auth
        # The last catalog sent in a session_created and its JSON (see _with_catalog_json).
        self._catalog_json: tuple[object, str] | None = None
        self._pool = pool
        self._metrics = metrics
        self._rooms = rooms
        self._store = store
        self._running: dict[tuple[str, str], anyio.Event] = {}
        # Replies of MCP changes kept for resends, with their audit entries: calls that finish
        # together share one transaction (see group_commit); each reply still waits for it.
        self._keep_replies = GroupCommit(store.run)
        self._tool_policy = effective_tool_policy(settings.tool_policy)
        self.cache = ResponseCache(settings.cache_ttl_seconds, settings.cache_max_entries)
        self._table = TableActions(rooms=rooms, pool=pool, on_write=self.cache.invalidate_campaign)
        self._tools = ToolIndexCache()
        # Which requests have a stored reply: a new request id is told apart without a read.
        self._stored_requests = resends.StoredRequests(
            window=settings.dedupe_window_seconds, sole_writer=store.dialect == "sqlite"
        )
        self._message_limiter = RateLimiter(settings.rate_messages_per_second, settings.rate_messages_burst)
        self._cursor_limiter = RateLimiter(settings.rate_cursor_per_second, settings.rate_cursor_burst)
        self._limits = InputLimits(
            max_depth=settings.max_depth,
            max_array=settings.max_array_length,
            max_string=settings.max_string_length,
            max_keys=settings.max_object_keys,
        )
        self.shutting_down = False

    async def start(self) -> None:
        """Learn which requests the store holds replies for (one read), so new ones need none."""
        window, capacity = timedelta(seconds=self._settings.dedupe_window_seconds), resends.DEFAULT_CAPACITY
        keys = await self._store.run(lambda db: resends.recent_keys(db, window, capacity + 1), readonly=True)
        self._stored_requests.load(keys[-capacity:], complete=len(keys) <= capacity)

    # -- entry points -------------------------------------------------------------------------

    async def handle_raw(self, session: BridgeSession, raw: str | bytes, turn: Turn | None = None) -> Outcome:
        """Decode and handle one frame; any failure becomes an error reply.

        ``turn`` is the frame's place in its connection's order (taken when it was read): the
        frame waits for it, and a change holds it until applied (see :mod:`.ordering`).
        """
        turn = turn or unordered()
        try:
            await turn.wait()
            return await self._handle_raw(session, raw, turn)
        finally:
            turn.release()

    async def _handle_raw(self, session: BridgeSession, raw: str | bytes, turn: Turn) -> Outcome:
        request_id: str | None = None
        try:
            size = len(raw.encode() if isinstance(raw, str) else raw)
            if size > self._settings.max_message_bytes:
                request_id = protocol.request_id_in_prefix(raw)
                raise BridgeError(
                    "message_too_large",
                    f"message of {size} bytes exceeds the limit of {self._settings.max_message_bytes}",
                    {"limit": self._settings.max_message_bytes},
                )
            value = protocol.decode_json(raw)
            if isinstance(value, list):
                return await self._handle_batch(session, value)
        except BridgeError as error:
            self._metrics.ws_messages_total.labels(type="invalid").inc()
            return Outcome([self.error_reply(session, error, request_id)])
        return await self.handle_value(session, value, turn)

    async def handle_value(self, session: BridgeSession, value: Any, turn: Turn | None = None) -> Outcome:
        """Check, parse and handle one decoded message; a read lets ``turn`` go once parsed."""
        request_id = protocol.request_id_of(value)
        try:
            check_structure(value, self._limits)
            message = protocol.parse_client_message(value)
        except BridgeError as error:
            self._metrics.ws_messages_total.labels(type="invalid").inc()
            return Outcome([self.error_reply(session, error, request_id)])
        self._metrics.ws_messages_total.labels(type=message.type).inc()
        if turn is not None and message.type in _SIDE_BY_SIDE:
            turn.release()
        refusal = await self._rate_limit(session, message)
        if refusal is not None:
            return refusal
        return await self.handle(session, message)

    async def _rate_limit(self, session: BridgeSession, message: protocol.ClientMessage) -> Outcome | None:
        """None when within budget; else a ``rate_limited`` reply, and a close when it goes on."""
        now = time.monotonic()
        cursor = isinstance(message, protocol.CursorMove)
        limiter = self._cursor_limiter if cursor else self._message_limiter
        keys = [f"connection:{session.session_id}"]
        found = [limiter.take(key, now) for key in keys]
        if session.user is not None:
            user_key = f"user:{session.user.user_id}"
            found.append(await self._take_user(limiter, user_key, now, shared=not cursor))
        waits = [wait for wait in found if wait is not None]
        if not waits:
            return None
        if now - session.strikes_since > _STRIKE_WINDOW:
            session.strikes, session.strikes_since = 0, now
        session.strikes += 1
        retry_after = round(max(waits), 3)
        error = BridgeError(
            "rate_limited", f"too many messages; retry in {retry_after} s", {"retry_after": retry_after}
        )
        reply = self.error_reply(session, error, message.id)
        if session.strikes >= self._settings.rate_abuse_strikes:
            log.warning("rate_limit_abuse", strikes=session.strikes)
            return Outcome([reply], close=(CLOSE_POLICY_VIOLATION, "rate limit exceeded again and again"))
        return Outcome([reply])

    async def _take_user(self, limiter: RateLimiter, key: str, now: float, *, shared: bool) -> float | None:
        """A user's budget: the one every node shares when there is one, else this node's."""
        if shared and self._buckets is not None:
            try:
                return await self._buckets.take(key, limiter.rate, limiter.burst)
            except Exception:  # shared buckets unreachable: this node's own budget applies
                log.debug("shared_rate_limit_unavailable", key=key)
        return limiter.take(key, now)

    async def _handle_batch(self, session: BridgeSession, values: list[Any]) -> Outcome:
        """A batch: each message handled in order and answered as if sent alone."""
        if not values or len(values) > self._settings.max_batch:
            raise BridgeError(
                "batch_too_large" if values else "invalid_message",
                f"a batch holds 1 to {self._settings.max_batch} messages, not {len(values)}",
                {"limit": self._settings.max_batch},
            )
        replies: list[dict[str, Any]] = []
        close: tuple[int, str] | None = None
        for value in values:
            outcome = await self.handle_value(session, value)
            replies.extend(outcome.replies)
            if outcome.close is not None:
                close = outcome.close
                break
        return Outcome(replies, close)

    async def handle(self, session: BridgeSession, message: protocol.ClientMessage) -> Outcome:
        """Handle one validated message."""
        bound = structlog.contextvars.bound_contextvars(request_id=message.id, message_type=message.type)
        started = time.perf_counter()
        with bound:
            try:
                outcome = await self._route_once(session, message)
            except BridgeError as error:
                outcome = Outcome([self.error_reply(session, error, message.id)])
            except Exception:
                log.exception("message_failed")
                internal = BridgeError("internal_error", "the bridge failed to handle this message")
                outcome = Outcome([self.error_reply(session, internal, message.id)])
            if message.type in audit.AUDITED and session.user is not None and not outcome.audited:
                await self._audit(session, message, outcome)
            if message.type != "heartbeat":
                # Debug, not info: a line per message costs more than relaying it (errors,
                # refusals and sessions still log at info).
                log.debug(
                    "message_handled",
                    replies=[reply["type"] for reply in outcome.replies],
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                )
            return outcome

    async def _audit(self, session: BridgeSession, message: protocol.ClientMessage, outcome: Outcome) -> None:
        """One audit entry for a change or an MCP operation, with how it ended."""
        first = outcome.replies[0] if outcome.replies else {}
        error = first.get("error")
        result = str(error.get("code", "error")) if isinstance(error, dict) else "ok"
        user_id = session.user.user_id if session.user else None
        detail = {"duplicate": True} if first.get("duplicate") else None
        try:
            await self._store.run(
                lambda db: audit.record(
                    db,
                    campaign_id=session.campaign_id,
                    user_id=user_id,
                    action=message.type,
                    target=audit.target_of(message),
                    result=result,
                    detail=detail,
                )
            )
        except Exception:  # an audit write that fails must not fail the request it records
            log.exception("audit_write_failed")

    async def _route_once(self, session: BridgeSession, message: protocol.ClientMessage) -> Outcome:
        """Route a message; a change resent after a reconnect gets its first reply back instead.

        Requests that change something keep their reply (see :mod:`ttrpg_mcp.bridge.events`).
        A resend while the first is still running waits for it, then gets the same reply.
        """
        if message.type not in _RESENDABLE or session.user is None or await self._read_only(session, message):
            return await self._route(session, message)
        user_id = session.user.user_id
        key = (user_id, message.id)
        running = self._running.get(key)
        if running is not None:
            await running.wait()
        stored = None
        if self._stored_requests.may_hold(user_id, message.id):
            stored = await self._store.run(
                lambda db: events.stored_reply(db, user_id, message.id), readonly=True
            )
        if stored is not None:
            log.info("duplicate_request_answered")
            return Outcome([stored | {"session_id": session.session_id, "duplicate": True}])
        done = self._running[key] = anyio.Event()
        entry = audit.PendingEntry(session.campaign_id, message.type, audit.target_of(message))
        context = requests.RequestContext(user_id, message.id, audit=entry)
        requests.use(context)
        keeping = False
        try:
            if isinstance(message, protocol.ToolCall):
                outcome = await self._route(session, message)
            else:
                # A table change joins its campaign's next group commit, which runs it even if
                # this connection drops meanwhile: finish with it, so that its reply is known
                # here before a resend (after the reconnect) can arrive and apply it again.
                with anyio.CancelScope(shield=True):
                    outcome = await self._route(session, message)
            first = outcome.replies[0] if outcome.replies else None
            if first is not None and not context.stored and first["type"] != "error" and "error" not in first:
                # Changes made through the MCP server are not in this store's transaction: keep
                # the reply (and its audit entry) right after, which still answers every resend.
                def keep(db: Session) -> None:
                    events.store_reply(db, user_id, message.id, first)
                    audit.record_entry(db, entry, user_id=user_id, result="ok")

                keeping = True
                await self._keep_replies(keep)
                context.audited = True
            return replace(outcome, audited=True) if context.audited else outcome
        finally:
            if keeping or context.stored:  # remembered even if the write failed: a read too many
                self._stored_requests.add(user_id, message.id)
            requests.use(None)
            done.set()
            self._running.pop(key, None)

    async def _read_only(self, session: BridgeSession, message: protocol.ClientMessage) -> bool:
        """A tool call the MCP server marks read-only needs no dedupe record: redoing it is harmless."""
        if not isinstance(message, protocol.ToolCall):
            return False
        try:
            return (await self._tool_index(session)).read_only(message.method)
        except BridgeError:
            return False

    async def _tool_index(self, session: BridgeSession) -> ToolIndex:
        """The server's tools, indexed once per catalog (the pool caches the catalog)."""
        return self._tools.of(await self._pool.capabilities(session_id=session.session_id))

    def error_reply(
        self, session: BridgeSession, error: BridgeError, request_id: str | None
    ) -> dict[str, Any]:
        self._metrics.ws_errors_total.labels(error_type=error.code).inc()
        log.info("error_reply", code=error.code, error_message=error.message)
        return protocol.error_message(error, request_id=request_id, session_id=session.session_id)

    # -- authentication -----------------------------------------------------------------------

    async def open_session(
        self,
        session: BridgeSession,
        token: str,
        campaign_id: str | None,
        request_id: str | None,
        *,
        last_seq: int | None = None,
        epoch: str | None = None,
        batch: bool = False,
    ) -> list[dict[str, Any]]:
        """Authenticate, then join ``campaign_id`` if given: ``session_created`` (+ snapshot or error).

        A refused join does not undo the authentication: the client learns why and may join
        another campaign on the same connection. ``batch``: the replay may come as ``event_batch``.
        """
        created = await self.authenticate(session, token)
        if request_id:
            created["request_id"] = request_id
        joined: dict[str, Any] | BridgeError | None = None
        if campaign_id is not None:
            try:
                joined = await self._table.join(
                    session,
                    campaign_id,
                    request_id,
                    last_seq=last_seq,
                    epoch=epoch,
                    batch=batch and session.transport == "websocket",
                )
                created["campaign_id"] = campaign_id
            except BridgeError as error:
                joined = error
        replies: list[dict[str, Any]] = [self._with_catalog_json(created)]
        if isinstance(joined, BridgeError):
            replies.append(self.error_reply(session, joined, request_id))
        elif joined is not None:
            replies.append(joined)
        return replies

    def _with_catalog_json(self, created: dict[str, Any]) -> dict[str, Any]:
        """``session_created`` as a frame whose catalog part is encoded once per catalog.

        The catalog (every tool's schema) is most of the message and the same object for every
        session until the MCP server's lists change; the rest (user, ids) is encoded per session.
        Made last: a frame's JSON does not follow later changes to its values.
        """
        catalog = created["capabilities"]
        held = self._catalog_json
        if held is None or held[0] is not catalog:
            held = self._catalog_json = (catalog, frames.encode_body(catalog))
        body = {
            key: value for key, value in created.items() if key not in ("id", "session_id", "capabilities")
        }
        body_json = f'{frames.encode_body(body)[:-1]},"capabilities":{held[1]}}}'
        return frames.shared_frame(
            body | {"capabilities": catalog},
            body_json,
            message_id=created["id"],
            session_id=created["session_id"],
        )

    async def authenticate(self, session: BridgeSession, token: str) -> dict[str, Any]:
        """Verify a token and make the session its user's; returns the ``session_created`` message."""
        user = await self._auth.verify_access(token)
        if session.user is not None and session.user.user_id != user.user_id:
            raise BridgeError("forbidden", "this connection belongs to another user; open a new one")
        first = session.user is None
        session.user = user
        if first and session.transport != "http":  # a one-request HTTP session is not a tab
            try:
                self._rooms.register(session)
            except BridgeError:
                session.user = None
                raise
            session.authenticated_at = time.monotonic()
            structlog.contextvars.bind_contextvars(session_id=session.session_id, user=user.name)
            log.info("session_created", transport=session.transport)
        return protocol.envelope(
            "session_created",
            session_id=session.session_id,
            user={
                "id": user.user_id,
                "username": user.name,
                "name": user.name,
                "display_name": user.display_name,
            },
            campaign_id=session.campaign_id,
            capabilities=await self._capabilities(session),
            heartbeat_interval=int(self._settings.heartbeat_interval * 1000),
            # A client silent this long is closed; it sends heartbeats well within it.
            idle_timeout=int(self._settings.idle_timeout * 1000),
            protocol_version=protocol.PROTOCOL_VERSION,
        )

    async def _capabilities(self, session: BridgeSession) -> dict[str, Any]:
        try:
            return await self._pool.capabilities(session_id=session.session_id)
        except BridgeError as error:
            # A session is still useful without MCP (dice, presence); say why tools are missing.
            return {
                "tools": [],
                "resources": [],
                "resource_templates": [],
                "prompts": [],
                "error": error.to_dict(),
            }

    def _require_user(self, session: BridgeSession) -> AuthenticatedUser:
        if session.user is None:
            raise BridgeError("unauthenticated", "send 'authenticate' with an access token first")
        if session.user.token_expires_at <= time.time():
            raise BridgeError(
                "token_expired", "the access token has expired; refresh it and send 'reauthenticate'"
            )
        return session.user

    # -- routing ------------------------------------------------------------------------------

    async def _route(self, session: BridgeSession, message: protocol.ClientMessage) -> Outcome:
        match message:
            case protocol.Authenticate(token=token, campaign_id=campaign_id):
                return Outcome(await self.open_session(session, token, campaign_id, message.id))
            case protocol.Heartbeat():
                return Outcome([self._ack(session, message.id)])
            case protocol.Disconnect(reason=reason):
                return Outcome([], close=(CLOSE_NORMAL, reason or "client disconnect"))
            case _:
                pass
        if not isinstance(message, protocol.Reauthenticate):
            self._require_user(session)
        if self.shutting_down:
            raise BridgeError("shutting_down", "the bridge is shutting down; reconnect shortly")
        table = self._table
        reply: dict[str, Any] | None
        match message:
            case protocol.Reauthenticate(token=token):
                await self.authenticate(session, token)
                assert session.user is not None
                reply = self._ack(session, message.id, expires_at=session.user.token_expires_at)
            case protocol.SessionCreate(campaign_id=campaign_id):
                reply = await table.join(session, campaign_id, message.id)
            case protocol.SessionAttach(campaign_id=campaign_id, last_seq=last_seq, epoch=epoch, batch=batch):
                # Over SSE each event is a message of its own, with its seq as the event's id.
                batch = batch and session.transport == "websocket"
                reply = await table.join(
                    session, campaign_id, message.id, last_seq=last_seq, epoch=epoch, batch=batch
                )
            case protocol.DiceRoll(data=data):
                reply = await table.roll(session, message.id, data)
            case protocol.StateUpdate(data=data):
                reply = await table.change_state(session, message.id, data)
            case protocol.InitiativeUpdateMessage(data=data):
                reply = await table.change_initiative(session, message.id, data)
            case protocol.CanvasDraw(data=data):
                reply = await table.draw(session, message.id, data)
            case protocol.CursorMove(data=data, ack=ack):
                reply = table.move_cursor(session, message.id, data, ack)
            case protocol.PresenceUpdate(data=data, ack=ack):
                reply = await table.presence(session, message.id, data, ack)
            case protocol.CampaignUpdate(data=data):
                reply = await table.update_campaign(session, message.id, data)
            case protocol.CharacterUpdate(data=data):
                reply = await table.update_character(session, message.id, data)
            case (
                protocol.ToolCall() | protocol.ToolDiscover() | protocol.ResourceGet() | protocol.PromptGet()
            ):
                reply = await self._mcp(session, message)
            case _:  # pragma: no cover - every client type is matched above
                raise BridgeError("unknown_type", f"no handler for {message.type!r}")
        return Outcome([reply] if reply is not None else [])

    def _ack(self, session: BridgeSession, request_id: str, **data: Any) -> dict[str, Any]:
        return protocol.envelope(
            "ack", request_id=request_id, session_id=session.session_id, data=data or None
        )

    # -- MCP operations -----------------------------------------------------------------------

    async def _mcp(
        self,
        session: BridgeSession,
        message: protocol.ToolCall | protocol.ToolDiscover | protocol.ResourceGet | protocol.PromptGet,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        timeout = None
        if message.metadata is not None and message.metadata.timeout is not None:
            timeout = min(message.metadata.timeout / 1000, self._settings.mcp.max_request_timeout)
        try:
            result = await self._run_mcp(session, message, timeout)
        except BridgeError as error:
            self._metrics.ws_errors_total.labels(error_type=error.code).inc()
            log.info("mcp_request_failed", code=error.code, error_message=error.message)
            return self._response(session, message.id, started, error=error.to_dict())
        return self._response(session, message.id, started, result=result)

    async def _run_mcp(
        self,
        session: BridgeSession,
        message: protocol.ToolCall | protocol.ToolDiscover | protocol.ResourceGet | protocol.PromptGet,
        timeout: float | None,
    ) -> dict[str, Any]:
        match message:
            case protocol.ToolDiscover():
                catalog = dict(await self._pool.capabilities(session_id=session.session_id))
                if session.campaign_id is not None and "resources" in (
                    self._pool.server_info.get("capabilities") or {}
                ):
                    # The shared catalog is asked anonymously; the campaigns and character sheets
                    # a seat may open are listed for that seat's viewer, never cached across seats.
                    listed = await self._request(session, "resources/list", {}, timeout)
                    catalog["resources"] = [r for r in listed.get("resources") or [] if isinstance(r, dict)]
                return catalog
            case protocol.ToolCall(method=name, params=arguments):
                tools = await self._tool_index(session)
                if name not in tools:
                    raise BridgeError(
                        "unknown_tool", f"the MCP server has no tool {name!r}", {"tools": tools.names}
                    )
                self._check_tool_policy(session, name)
                arguments = self._table.tool_arguments(session, name, arguments)
                self._check_arguments(tools, name, arguments)
                self._check_campaign_scope(session, arguments.get("campaign_id"))
                read_only = tools.read_only(name)
                # Only a read-only tool's result is cached: a change needs no key (its encoding).
                key = (
                    self.cache.key(session.campaign_id, name, arguments, self._viewer(session))
                    if read_only
                    else None
                )
                cached = self.cache.get(key, time.monotonic()) if key is not None else None
                if cached is not None:
                    return cached
                self._rooms.note_actor(session)
                result = await self._request(
                    session, "tools/call", {"name": name, "arguments": arguments}, timeout
                )
                if result.get("isError"):
                    raise tool_error(name, result)
                if not read_only:
                    self.cache.invalidate_campaign(session.campaign_id)
                content = result.get("structuredContent")
                if isinstance(content, dict):
                    self._check_campaign_scope(session, content.get("campaign_id"))
                if key is not None:  # only results that passed every check are kept
                    self.cache.put(key, result, time.monotonic())
                return result
            case protocol.ResourceGet(params=params):
                scheme, _, rest = params.uri.partition("://")
                if scheme == "campaign":
                    self._check_campaign_scope(session, rest)
                result = await self._request(session, "resources/read", {"uri": params.uri}, timeout)
                for content in result.get("contents", []):
                    if content.get("mimeType") == "application/json":
                        with contextlib.suppress(ValueError, TypeError, AttributeError):
                            self._check_campaign_scope(
                                session, json.loads(content["text"]).get("campaign_id")
                            )
                return result
            case protocol.PromptGet(method=name, params=arguments):
                self._check_campaign_scope(session, arguments.get("campaign_id"))
                return await self._request(
                    session, "prompts/get", {"name": name, "arguments": arguments}, timeout
                )

    @staticmethod
    def _check_arguments(tools: ToolIndex, name: str, arguments: dict[str, Any]) -> None:
        """Arguments that do not fit the tool's input schema never reach the child."""
        schema, validator = tools.schema(name), tools.validator(name)
        if schema is None or validator is None:
            return
        unknown = tool_arguments.find_unknown(name, arguments, schema)
        if unknown is not None:  # the child's model would drop them in silence
            raise BridgeError("invalid_params", f"{name}: {unknown.message}", unknown.to_data())
        problems = sorted(validator.iter_errors(arguments), key=lambda error: list(error.absolute_path))
        if problems:
            errors = [{"loc": [str(p) for p in e.absolute_path], "msg": e.message} for e in problems[:10]]
            message = tool_arguments.sentence(name, errors[0]["loc"], errors[0]["msg"])
            raise BridgeError("invalid_params", message, {"errors": errors})

    def tool_offered(self, session: BridgeSession, name: str) -> bool:
        """Whether a session may call ``name`` (what a tool list shown to it should hold)."""
        try:
            self._check_tool_policy(session, name)
        except BridgeError:
            return False
        return True

    def _check_tool_policy(self, session: BridgeSession, name: str) -> None:
        """Who may call which tool: by role at the joined table, else the lobby's list."""
        if name in _HTTP_ONLY_TOOLS:
            raise BridgeError(
                "forbidden", f"{name} spans campaigns: use GET or POST /api/campaigns", {"tool": name}
            )
        room = self._rooms.room(session.campaign_id or "")
        seat = session.seat_id
        participant = room.participants.get(seat) if room and seat else None
        if participant is not None:
            if not tool_allowed(participant.role_of(session), name, self._tool_policy):
                raise BridgeError(
                    "forbidden",
                    f"a {participant.role_of(session)} may not call {name}",
                    {"tool": name, "role": participant.role_of(session)},
                )
            return
        lobby = self._settings.lobby_tools
        if "*" not in lobby and name not in lobby:
            raise BridgeError(
                "forbidden",
                f"join a campaign to call {name}; outside one only {', '.join(lobby)} are open",
                {"tool": name},
            )

    @staticmethod
    def _check_campaign_scope(session: BridgeSession, campaign_id: Any) -> None:
        """A request or result about a campaign must be about the one this session sits at."""
        if campaign_id is None or campaign_id == session.campaign_id:
            return
        raise BridgeError(
            "forbidden",
            "that belongs to a campaign this session has not joined (session_create first)",
            {"campaign_id": campaign_id if isinstance(campaign_id, str) else None},
        )

    def _viewer(self, session: BridgeSession) -> Viewer:
        """Who the MCP server answers: the caller's role at the joined table (a spectator outside one)."""
        user_id = session.user.user_id if session.user else None
        room = self._rooms.room(session.campaign_id or "")
        seat = session.seat_id
        participant = room.participants.get(seat) if room and seat else None
        if participant is None:
            return Viewer("spectator", user_id)
        return Viewer(participant.role_of(session), user_id, session.campaign_id)

    async def _request(
        self, session: BridgeSession, method: str, params: dict[str, Any], timeout: float | None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            return await self._pool.request(
                method, params, session_id=session.session_id, timeout=timeout, viewer=self._viewer(session)
            )
        finally:
            self._metrics.mcp_request_duration_seconds.labels(method=method).observe(
                time.perf_counter() - started
            )

    def _response(
        self, session: BridgeSession, request_id: str, started: float, **outcome: Any
    ) -> dict[str, Any]:
        duration = round((time.perf_counter() - started) * 1000, 3)
        return protocol.envelope(
            "response", request_id=request_id, session_id=session.session_id, duration=duration, **outcome
        )
