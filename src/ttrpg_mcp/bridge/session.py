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

__all__ = ["BridgeSession"]


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

    @property
    def authenticated(self) -> bool:
        return self.user is not None
