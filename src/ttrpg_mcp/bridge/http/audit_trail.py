"""Audit entries for HTTP actions: sign-ins, refused sign-ins, keys, exports and deletions.

Campaign actions (invites, joins, role changes) are recorded in the same unit of work as the
change, by the route that makes it. What this module records is either outside any change (a
refused sign-in, whose unit of work rolled back) or is the account's own story, so it gets a
unit of work of its own. The client's address goes into ``detail`` of sign-in entries, which
is why deleting an account scrubs the entries about it (see ``bridge/accounts.py``).
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import Request

from ttrpg_mcp.bridge import audit
from ttrpg_mcp.bridge.store import BridgeStore

__all__ = ["client_address", "record_action"]

log = structlog.get_logger("ttrpg_mcp.bridge.http")


def client_address(request: Request) -> str:
    """The peer's address as the ASGI server saw it (behind a proxy: as the proxy headers say)."""
    return request.client.host if request.client else "unknown"


async def record_action(
    store: BridgeStore,
    action: str,
    *,
    user_id: str | None,
    campaign_id: str | None = None,
    target: str | None = None,
    result: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one entry; a failure to write is logged, never turned into a failed request."""

    def write(db: Any) -> None:
        audit.record(
            db,
            campaign_id=campaign_id,
            user_id=user_id,
            action=action,
            target=target,
            result=result,
            detail=detail,
        )

    try:
        await store.run(write)
    except Exception:  # the action itself already happened (or was refused); say so in the log
        log.exception("audit_write_failed", action=action)
