"""One client connection's state, whatever its transport: what every table layer passes around.

Below ``dispatch`` (which handles its messages) and the table domain (``rooms``, ``table``),
which only read and update it, so that none of them imports another for this type.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.auth.service import AuthenticatedUser

__all__ = ["AgentIdentity", "BridgeSession"]


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """An AI agent seated at a table on someone's behalf (an MCP client over ``/mcp``).

    It is a participant of its own, beside the person it acts for: its own seat (``seat_id``),
    presence and role, and a name that says whose assistant it is ("Claude, assistant of Mira").
    """

    seat_id: str
    client: str
    label: str


@dataclass(eq=False)
class BridgeSession:
    """One authenticated (or authenticating) client connection's state, whatever its transport."""

    transport: str
    send: Callable[[dict[str, Any]], Awaitable[None]]
    session_id: str = field(default_factory=lambda: f"ses_{uuid.uuid4().hex}")
    user: AuthenticatedUser | None = None
    campaign_id: str | None = None
    started: float = field(default_factory=time.monotonic)
    authenticated_at: float | None = None
    strikes: int = 0
    strikes_since: float = 0.0
    # Set for an agent's session: it sits at the table in a seat of its own, not its owner's.
    agent: AgentIdentity | None = None

    @property
    def authenticated(self) -> bool:
        return self.user is not None

    @property
    def seat_id(self) -> str | None:
        """The participant this session sits as: its user's seat, or its agent's own."""
        if self.agent is not None:
            return self.agent.seat_id
        return self.user.user_id if self.user is not None else None
