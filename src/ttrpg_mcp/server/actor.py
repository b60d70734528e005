"""Who a request speaks for, read from its ``_meta``, so that each write records its author.

The bridge's pool stamps every request it forwards with the table user behind it, under the
namespaced key ``ttrpg/viewer`` (``{"user_id": ..., "role": ..., "campaign_id": ...}``); a
client of the bridge cannot set it. A stdio client (Claude Desktop) sends none and is the
local GM. :class:`ActorMiddleware` runs around every request and sets the actor for the
change log (:func:`ttrpg_mcp.server.store.changes.acting_as`); tools run in worker threads,
which inherit it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ttrpg_mcp.server.store.changes import LOCAL, Actor, acting_as

__all__ = ["VIEWER_META_KEY", "ActorMiddleware", "actor_from_meta"]

VIEWER_META_KEY = "ttrpg/viewer"


def actor_from_meta(meta: Mapping[str, Any] | None) -> Actor:
    """The actor a request's ``_meta`` names; the local GM when it names none."""
    viewer = (meta or {}).get(VIEWER_META_KEY)
    if not isinstance(viewer, Mapping):
        return LOCAL
    user = viewer.get("user_id") or viewer.get("user") or viewer.get("id")
    role = viewer.get("role")
    if not isinstance(user, str) or not user:
        return LOCAL
    return Actor(user=user, role=role if isinstance(role, str) and role else "player")


class ActorMiddleware:
    """Server middleware: run each request as the actor its ``_meta`` names."""

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        meta = getattr(ctx, "meta", None)
        params = getattr(ctx, "params", None)
        if meta is None and isinstance(params, Mapping):
            meta = params.get("_meta")
        with acting_as(actor_from_meta(meta if isinstance(meta, Mapping) else None)):
            return await call_next(ctx)
