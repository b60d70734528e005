"""Rate-limit buckets every node spends from: one token bucket per key, kept in Redis.

A user on two nodes, or a password guesser spreading attempts over every node behind the load
balancer, must meet one budget, not one per node. The bucket is the same as
:class:`ttrpg_mcp.bridge.ratelimit.RateLimiter`'s (``burst`` tokens refilled at ``rate`` per
second), updated by one Lua script so that two nodes never spend the same token, on Redis's
clock so that nodes need not agree on theirs. Keys expire once full again. A caller that gets a
Redis error falls back to its own in-memory bucket: limits loosen during an outage, they do not
refuse everyone.
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import Redis

__all__ = ["RedisBuckets", "SharedBuckets"]

_TAKE = """
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens, updated = tonumber(bucket[1]), tonumber(bucket[2])
if tokens == nil then tokens, updated = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = (cost - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class SharedBuckets(Protocol):
    async def take(self, key: str, rate: float, burst: float, cost: float = 1.0) -> float | None:
        """Spend ``cost`` tokens of ``key``: None if allowed, else the seconds to wait."""
        ...

    async def close(self) -> None: ...


class RedisBuckets:
    """Token buckets in Redis, ``<prefix>ratelimit:<key>``; raises the client's errors to the caller."""

    def __init__(self, url: str, *, key_prefix: str = "") -> None:
        self._prefix = key_prefix
        self._redis: Redis = Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=2.0, socket_timeout=2.0
        )
        self._script = self._redis.register_script(_TAKE)

    async def take(self, key: str, rate: float, burst: float, cost: float = 1.0) -> float | None:
        wait = float(await self._script(keys=[f"{self._prefix}ratelimit:{key}"], args=[rate, burst, cost]))
        return wait if wait > 0 else None

    async def close(self) -> None:
        await self._redis.aclose()
