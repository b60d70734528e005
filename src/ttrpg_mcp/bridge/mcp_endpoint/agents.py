"""An agent at the table: one ``/mcp`` session seated as a participant of its own.

:class:`AgentConnection` is to an MCP session what the WebSocket gateway is to a socket: it owns
a :class:`BridgeSession` and hands every request to the dispatcher as the same message a
WebSocket client would send (``tool_call``, ``resource_get``, ...), so permissions, the tool
policy, the caller's role in ``_meta``, rate limits, the audit log and the cache apply as they
do everywhere else.

Lifecycle: the MCP ``initialize`` opens it (authenticate, register, join the credential's
campaign in a seat of its own: ``participant_joined`` reaches the table); the end of the MCP
session (``DELETE``, idle timeout, bridge shutdown) releases it (``participant_left``).
:meth:`close` (a revoked key, an account deleted, a GM taking the agent from the table, the
bridge draining) refuses every later request at once and asks the endpoint to end the MCP
session. It implements what the bridge's drain and ``cut_connections`` expect of a connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.session import AgentIdentity, BridgeSession

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.mcp_endpoint.auth import Principal
    from ttrpg_mcp.bridge.runtime import Bridge

__all__ = ["AgentConnection", "agent_label"]

log = structlog.get_logger("ttrpg_mcp.bridge.mcp_endpoint")

_NAME_LIMIT = 60


def agent_label(client_name: str, owner: str) -> str:
    """How the table names an agent: "Claude, assistant of Mira"."""
    client = " ".join(client_name.split())[:_NAME_LIMIT] or "Agent"
    return f"{client}, assistant of {owner}"


class AgentConnection:
    """One MCP session's seat at its campaign's table, from ``initialize`` to the session's end."""

    def __init__(
        self, bridge: Bridge, principal: Principal, mcp_session_id: str, end_session: Callable[[str], None]
    ) -> None:
        self._bridge = bridge
        self.principal = principal
        self.mcp_session_id = mcp_session_id
        self._end_session = end_session
        self.session = BridgeSession(transport="mcp", send=self._receive_event)
        self.in_flight = 0
        self.closed: tuple[int, str] | None = None
        self.events_seen = 0

    async def open(self, token: str, client_name: str) -> dict[str, Any]:
        """Authenticate and sit at the credential's campaign; the table sees the agent join."""
        user = self.principal.user
        self.session.agent = AgentIdentity(
            seat_id=f"agt_{uuid.uuid4().hex[:20]}",
            client=client_name[:_NAME_LIMIT],
            label=agent_label(client_name, user.display_name or user.name),
        )
        replies = await self._bridge.dispatcher.open_session(
            self.session, token, self.principal.campaign_id, None
        )
        failed = next((reply for reply in replies if reply.get("type") == "error"), None)
        if failed is not None:
            await self.release()
            error = failed["error"]
            raise BridgeError(error["code"], error["message"], error.get("data"))
        self._bridge.connections.add(self)
        log.info(
            "agent_seated",
            campaign_id=self.principal.campaign_id,
            client=client_name,
            seat=self.session.agent.seat_id,
            credential=self.principal.kind,
        )
        return replies[-1]

    async def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        """One protocol message through the dispatcher, as a WebSocket frame would go; its reply."""
        if self.closed is not None:
            raise BridgeError("forbidden", f"this agent's session has ended: {self.closed[1]}")
        self.in_flight += 1
        try:
            outcome = await self._bridge.dispatcher.handle_value(self.session, message)
        finally:
            self.in_flight -= 1
        if outcome.close is not None:
            self.close(*outcome.close)
        if not outcome.replies:
            raise BridgeError("internal_error", "the bridge gave no answer to this request")
        return outcome.replies[0]

    def refresh(self, principal: Principal) -> None:
        """A later request proved the same credential again: keep its newest expiry."""
        self.principal = principal
        current = self.session.user
        if current is not None and principal.user.token_expires_at > current.token_expires_at:
            self.session.user = principal.user

    @property
    def role(self) -> str | None:
        """The agent's role at its table now (a GM may change it), None when it is not seated."""
        try:
            return self._bridge.rooms.participant(self.session).role
        except BridgeError:
            return None

    async def _receive_event(self, message: dict[str, Any]) -> None:
        # Table events for the agent's seat: an MCP client reads the table through tools and
        # resources, so they are counted, not queued (nothing here can grow without bound).
        self.events_seen += 1

    # -- what the bridge's drain and cut_connections expect ------------------------------------

    async def announce_shutdown(self, retry_after_ms: int) -> None:
        """Nothing to tell: the MCP session ends with the bridge and the client opens a new one."""

    def close(self, code: int, reason: str) -> None:
        """Refuse every later request now and end the MCP session (a revoked credential, a drain)."""
        if self.closed is not None:
            return
        self.closed = (code, reason)
        log.info("agent_session_closed", reason=reason, seat=self.session.seat_id)
        self._end_session(self.mcp_session_id)

    async def release(self) -> None:
        """The MCP session is over: leave the table and forget the session (safe to repeat)."""
        self._bridge.connections.discard(self)
        await self._bridge.release_session(self.session)
