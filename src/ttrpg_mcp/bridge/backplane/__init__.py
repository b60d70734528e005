"""Fan-out of campaign events and presence: in-process for one node, Redis for several.

See :mod:`~ttrpg_mcp.bridge.backplane.base` for the contract both implement.
"""

from __future__ import annotations

from ttrpg_mcp.bridge.backplane.base import Backfill, Backplane, Deliver, LoggedEvent, Reap
from ttrpg_mcp.bridge.backplane.buckets import SharedBuckets
from ttrpg_mcp.bridge.backplane.local import LocalBackplane

__all__ = [
    "Backfill",
    "Backplane",
    "Deliver",
    "LocalBackplane",
    "LoggedEvent",
    "Reap",
    "SharedBuckets",
    "create_backplane",
    "create_buckets",
]


def create_backplane(redis_url: str | None, key_prefix: str = "") -> Backplane:
    """Redis when a URL is given (imported only then), else the in-process backplane."""
    if redis_url is None:
        return LocalBackplane()
    from ttrpg_mcp.bridge.backplane.redis_bus import RedisBackplane  # noqa: PLC0415

    return RedisBackplane(redis_url, key_prefix=key_prefix)


def create_buckets(redis_url: str | None, key_prefix: str = "") -> SharedBuckets | None:
    """Rate-limit buckets shared by every node (Redis), or None: each node keeps its own."""
    if redis_url is None:
        return None
    from ttrpg_mcp.bridge.backplane.buckets import RedisBuckets  # noqa: PLC0415

    return RedisBuckets(redis_url, key_prefix=key_prefix)
