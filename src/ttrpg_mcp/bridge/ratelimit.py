"""Token buckets: how many messages (or logins) a key may send, and when it may send again.

Each key (a user, a connection, an IP address, an account name) has a bucket of ``burst``
tokens refilled at ``rate`` per second; a message takes one. An empty bucket answers with
the seconds until a token is back, which the bridge sends as ``retry_after``. Buckets live in
memory, least recently used first out beyond ``max_keys``, so a flood of new keys cannot grow
memory without bound. Time is passed in (a monotonic clock), so the logic is tested without
waiting. Pure: no I/O.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from ttrpg_mcp.bridge.errors import BridgeError

__all__ = ["AddressThrottle", "Bucket", "LoginThrottle", "RateLimiter"]


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Buckets of one budget (``rate`` per second, up to ``burst`` at once), by key."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()
        self._max_keys = max_keys

    def take(self, key: str, now: float, cost: float = 1.0) -> float | None:
        """Spend ``cost`` tokens of ``key``: None if allowed, else the seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(self.burst, now)
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return None
        return (cost - bucket.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


class LoginThrottle:
    """Login attempts per account and per client address, against password guessing.

    Both budgets are spent on every attempt, so guessing many passwords for one account from
    many addresses and many accounts from one address are both slowed down.
    """

    def __init__(self, per_minute_account: int, per_minute_ip: int) -> None:
        self._accounts = RateLimiter(per_minute_account / 60, per_minute_account)
        self._addresses = RateLimiter(per_minute_ip / 60, per_minute_ip)

    def check(self, name: str, address: str, now: float | None = None) -> None:
        """Spend one attempt of both budgets; ``rate_limited`` with ``retry_after`` when either is out."""
        moment = time.monotonic() if now is None else now
        waits = [
            wait
            for wait in (
                self._accounts.take(f"account:{name.strip().lower()}", moment),
                self._addresses.take(f"address:{address}", moment),
            )
            if wait is not None
        ]
        if waits:
            retry_after = round(max(waits), 1)
            raise BridgeError(
                "rate_limited",
                f"too many login attempts; retry in {retry_after} s",
                {"retry_after": retry_after},
            )


class AddressThrottle:
    """Attempts per client address alone: registrations, which run Argon2 like a login does."""

    def __init__(self, per_minute: int, what: str = "registration") -> None:
        self._addresses = RateLimiter(per_minute / 60, per_minute)
        self._what = what

    def check(self, address: str, now: float | None = None) -> None:
        """Spend one attempt of ``address``; ``rate_limited`` with ``retry_after`` when it is out."""
        wait = self._addresses.take(address, time.monotonic() if now is None else now)
        if wait is not None:
            retry_after = round(wait, 1)
            raise BridgeError(
                "rate_limited",
                f"too many {self._what} attempts; retry in {retry_after} s",
                {"retry_after": retry_after},
            )
