"""The request being handled, for code far below the dispatcher that must know it.

The dispatcher sets :func:`current` for each request that may be resent after a reconnect;
:meth:`ttrpg_mcp.bridge.rooms.Rooms.commit` reads it to keep the reply in the same transaction
as the change. A context variable rather than a parameter: each request runs in its own task,
and the value would otherwise have to be threaded through every handler of the table.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.audit import PendingEntry

__all__ = ["RequestContext", "current", "use"]


@dataclass
class RequestContext:
    """Who sent the request, its id, and whether its reply has been stored."""

    user_id: str
    request_id: str
    stored: bool = False
    # The audit entry to write with the change, in its transaction (campaign_id, action, target).
    audit: PendingEntry | None = None
    audited: bool = False


_CURRENT: ContextVar[RequestContext | None] = ContextVar("ttrpg_request", default=None)


def current() -> RequestContext | None:
    return _CURRENT.get()


def use(context: RequestContext | None) -> None:
    """Set the request for the rest of the current task (each request has its own task)."""
    _CURRENT.set(context)
