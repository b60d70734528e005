"""A short-lived cache of read-only tool results, cleared when a write touches the campaign.

Players at one table ask the same things (the campaign, a character, a rules search) again and
again; each answer from the MCP server costs a round trip through a child. Only tools the server
marks read-only (``readOnlyHint``) are cached, never the spike's non-cacheable operations, keyed
by the campaign the session sits at, the tool, its canonical parameters and the audience: the
MCP server leaves the GM's secrets out of what players and spectators read, so a GM's answer is
never served to a player, and since a note may be shared with one player alone, every
non-GM's answers are their own. A write through the bridge to a campaign clears that campaign's
entries at once, and the content feed (:mod:`ttrpg_mcp.bridge.content_feed`) clears them for
every write it sees, whoever made it (Claude Desktop on the same store included), within one
poll. Pure: time is passed in.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from ttrpg_mcp.server.secrecy import GM, Viewer

__all__ = ["NEVER_CACHED", "CacheKey", "ResponseCache", "audience"]

# (campaign, tool, canonical parameters, audience)
CacheKey = tuple[str, str, str, str]

# The spike's list of operations whose answers must never be reused.
NEVER_CACHED = frozenset(
    {"dice_roll", "roll_dice", "update_character", "save_campaign", "cursor_move", "canvas_draw"}
)


def audience(viewer: Viewer | None) -> str:
    """Who may share an answer: the GMs of the campaign together, anyone else alone."""
    if viewer is None:
        return "spectator:"
    if viewer.role == GM:
        return GM
    return f"{viewer.role}:{viewer.user_id or ''}"


class ResponseCache:
    """Tool results by (campaign, tool, parameters), for ``ttl`` seconds, at most ``max_entries``."""

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[CacheKey, tuple[float, dict[str, Any]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(
        campaign_id: str | None, tool: str, params: dict[str, Any], viewer: Viewer | None = None
    ) -> CacheKey:
        canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
        return (campaign_id or "", tool, canonical, audience(viewer))

    def get(self, key: CacheKey, now: float) -> dict[str, Any] | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= now:
            if entry is not None:
                del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: CacheKey, value: dict[str, Any], now: float) -> None:
        if self.ttl <= 0 or key[1] in NEVER_CACHED:
            return
        self._entries[key] = (now + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def invalidate_campaign(self, campaign_id: str | None) -> None:
        """Forget every entry of a campaign (after a write to it)."""
        for key in [key for key in self._entries if key[0] == (campaign_id or "")]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
