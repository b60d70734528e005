"""``/mcp``: MCP Streamable HTTP on the bridge, for agents that join a table by URL.

:class:`McpEndpoint` is an ASGI app in two layers:

1. The bearer check, on every HTTP request: :func:`~.auth.resolve_bearer` turns the
   ``Authorization`` header into a :class:`~.auth.Principal` (an API key verified lately comes
   from :class:`~.auth.VerifiedKeys` instead, until it is withdrawn) or the request is refused (401 with
   ``WWW-Authenticate: Bearer resource_metadata=...``, or 403 ``campaign_required``) before the
   MCP layer sees it. The principal rides in the ASGI scope: as ``user`` (the SDK's
   :class:`AuthenticatedUser`, so the session manager keeps each session to the credential that
   opened it) and under :data:`PRINCIPAL_SCOPE_KEY` for the handlers.
2. The SDK's :class:`StreamableHTTPSessionManager` (sessions, SSE streams resumable through a
   :class:`~.event_store.BoundedEventStore`, idle expiry) around the low-level server of
   :mod:`.server`.

Each MCP session has one :class:`~.agents.AgentConnection`, made at ``initialize`` and kept in
the SDK connection's ``state``; the connection's ``exit_stack`` releases it however the session
ends. Ending a session from the bridge's side (a revoked key) terminates its transport in a task
of the endpoint's own task group.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser as SdkUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.responses import JSONResponse

from ttrpg_mcp.bridge.auth.api_keys import is_api_key
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.mcp_endpoint.agents import AgentConnection
from ttrpg_mcp.bridge.mcp_endpoint.auth import (
    Principal,
    VerifiedKeys,
    bearer_token,
    resolve_bearer,
    www_authenticate,
)
from ttrpg_mcp.bridge.mcp_endpoint.event_store import BoundedEventStore
from ttrpg_mcp.bridge.mcp_endpoint.server import build_server

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from mcp.server.connection import Connection
    from mcp.server.context import ServerRequestContext
    from starlette.types import Receive, Scope, Send

    from ttrpg_mcp.bridge.runtime import Bridge

__all__ = ["MCP_PATH", "PRINCIPAL_SCOPE_KEY", "McpEndpoint"]

log = structlog.get_logger("ttrpg_mcp.bridge.mcp_endpoint")

MCP_PATH = "/mcp"
PRINCIPAL_SCOPE_KEY = "ttrpg.principal"
_AGENT_KEY = "ttrpg.agent"
# The SSE ``retry:`` hint: a dropped stream is resumed this soon (the drain's hint too).
_RETRY_INTERVAL_MS = 2000


class McpEndpoint:
    """The ``/mcp`` ASGI app of one bridge; :meth:`run` must wrap its lifetime."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.server = build_server(self)
        self.manager = StreamableHTTPSessionManager(
            app=self.server,
            event_store=BoundedEventStore(),
            retry_interval=_RETRY_INTERVAL_MS,
            session_idle_timeout=bridge.settings.mcp_idle_timeout,
            max_request_body_size=bridge.settings.max_message_bytes,
        )
        self._tasks: TaskGroup | None = None
        # Verified API keys, forgotten as soon as this node hears of a withdrawal.
        self.keys = VerifiedKeys()
        bridge.on_withdrawal.append(self.keys.forget)

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Serve sessions until the block ends; then every session ends (and leaves its table)."""
        async with anyio.create_task_group() as tasks, self.manager.run():
            self._tasks = tasks
            try:
                yield
            finally:
                self._tasks = None
                tasks.cancel_scope.cancel()

    # -- HTTP ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # pragma: no cover - the route is HTTP only
            return
        request = Request(scope)
        try:
            principal = await self._principal(request.headers.get("authorization"))
        except BridgeError as error:
            await self._refusal(request, error)(scope, receive, send)
            return
        token = AccessToken(
            token="",  # never kept: the credential is checked again on every request
            client_id=principal.credential_id,
            scopes=[],
            subject=principal.user.user_id,
        )
        scope["user"] = SdkUser(token)
        scope[PRINCIPAL_SCOPE_KEY] = principal
        await self.manager.handle_request(scope, receive, send)

    async def _principal(self, authorization: str | None) -> Principal:
        """Who the request's bearer credential is: an API key verified lately is not read again."""
        token = bearer_token(authorization)
        if is_api_key(token):
            known = self.keys.principal(token)
            if known is not None:
                return known
        generation = self.keys.generation
        principal = await resolve_bearer(self.bridge.auth, authorization)
        self.keys.remember(token, principal, generation)
        return principal

    def _refusal(self, request: Request, error: BridgeError) -> JSONResponse:
        # The same base the OAuth metadata names (bridge/http/oauth_routes.py).
        base = self.bridge.settings.public_url or str(request.base_url)
        headers = {"WWW-Authenticate": www_authenticate(base, error)}
        status = error.http_status if error.http_status in (401, 403) else 401
        return JSONResponse({"error": error.to_dict()}, status_code=status, headers=headers)

    # -- sessions -----------------------------------------------------------------------------

    async def seat(self, ctx: ServerRequestContext[Any, Any]) -> AgentConnection:
        """Seat the agent of the session ``ctx`` opens (its ``initialize``)."""
        connection = _connection_of(ctx)
        existing = connection.state.get(_AGENT_KEY)
        if isinstance(existing, AgentConnection):
            return existing
        if connection.session_id is None:
            raise BridgeError(
                "invalid_message", "agents keep a session at the table: connect with the initialize handshake"
            )
        principal, token = _principal_of(ctx)
        client_info = (ctx.params or {}).get("clientInfo") or {}
        client_name = str(client_info.get("title") or client_info.get("name") or "Agent")
        agent = AgentConnection(self.bridge, principal, connection.session_id, self._end_session)
        await agent.open(token, client_name)
        connection.state[_AGENT_KEY] = agent
        connection.exit_stack.push_async_callback(agent.release)
        return agent

    def agent_of(self, ctx: ServerRequestContext[Any, Any]) -> AgentConnection:
        """The agent of the session a request belongs to, up to date with this request's credential."""
        agent = _connection_of(ctx).state.get(_AGENT_KEY)
        if not isinstance(agent, AgentConnection):
            raise BridgeError("unauthenticated", "this session has no agent at a table: initialize first")
        principal, _token = _principal_of(ctx)
        agent.refresh(principal)
        return agent

    def _end_session(self, mcp_session_id: str) -> None:
        """End an MCP session from the bridge's side (its transport answers 404 from now on)."""
        # The manager keeps its transports by session id and offers no public way to end one.
        transports: dict[str, Any] = getattr(self.manager, "_server_instances", {})
        transport = transports.get(mcp_session_id)
        if transport is None or self._tasks is None:
            return
        self._tasks.start_soon(transport.terminate, name=f"mcp-end-{mcp_session_id[:8]}")


def _connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection:
    """The SDK connection (one per MCP session) a request arrived on."""
    # The low-level context exposes the connection only through its session.
    connection: Connection = ctx.session._connection
    return connection


def _principal_of(ctx: ServerRequestContext[Any, Any]) -> tuple[Principal, str]:
    """The principal the bearer check put in this request's scope, and the token it came from."""
    request = ctx.request
    if not isinstance(request, Request) or not isinstance(request.scope.get(PRINCIPAL_SCOPE_KEY), Principal):
        raise BridgeError("unauthenticated", "send Authorization: Bearer <API key or access token>")
    principal: Principal = request.scope[PRINCIPAL_SCOPE_KEY]
    token = bearer_token(request.headers.get("authorization"))
    assert is_api_key(token) == (principal.kind == "api_key")
    return principal, token
