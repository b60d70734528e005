"""Token buckets: how many messages (or logins) a key may send, and when it may send again.

Each key (a user, a connection, an IP address, an account name) has a bucket of ``burst``
tokens refilled at ``rate`` per second; a message takes one. An empty bucket answers with
the seconds until a token is back, which the bridge sends as ``retry_after``. Buckets live in
memory, least recently used first out beyond ``max_keys``, so a flood of new keys cannot grow
memory without bound. Time is passed in (a monotonic clock), so the logic is tested without
waiting. The logic here is pure; with several nodes, :meth:`LoginThrottle.check_shared` and
:meth:`AddressThrottle.check_shared` spend from buckets every node shares (Redis, see
:mod:`ttrpg_mcp.bridge.backplane.buckets`), and fall back to these when those cannot be reached.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ttrpg_mcp.bridge.errors import BridgeError

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.backplane.buckets import SharedBuckets

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

    def __init__(
        self, per_minute_account: int, per_minute_ip: int, shared: SharedBuckets | None = None
    ) -> None:
        self._accounts = RateLimiter(per_minute_account / 60, per_minute_account)
        self._addresses = RateLimiter(per_minute_ip / 60, per_minute_ip)
        self._shared = shared

    def check(self, name: str, address: str, now: float | None = None) -> None:
        """Spend one attempt of both budgets; ``rate_limited`` with ``retry_after`` when either is out."""
        moment = time.monotonic() if now is None else now
        self._refuse(
            [
                self._accounts.take(f"account:{name.strip().lower()}", moment),
                self._addresses.take(f"address:{address}", moment),
            ]
        )

    async def check_shared(self, name: str, address: str) -> None:
        """As :meth:`check`, from the buckets every node shares when there are some."""
        if self._shared is None:
            self.check(name, address)
            return
        try:
            waits = [
                await self._shared.take(f"login:account:{name.strip().lower()}", *_budget(self._accounts)),
                await self._shared.take(f"login:address:{address}", *_budget(self._addresses)),
            ]
        except Exception:  # shared buckets unreachable: this node's own budget still applies
            self.check(name, address)
            return
        self._refuse(waits)

    @staticmethod
    def _refuse(found: list[float | None]) -> None:
        waits = [wait for wait in found if wait is not None]
        if waits:
            retry_after = round(max(waits), 1)
            raise BridgeError(
                "rate_limited",
                f"too many login attempts; retry in {retry_after} s",
                {"retry_after": retry_after},
            )


class AddressThrottle:
    """Attempts per client address alone: registrations, which run Argon2 like a login does."""

    def __init__(
        self, per_minute: int, what: str = "registration", shared: SharedBuckets | None = None
    ) -> None:
        self._addresses = RateLimiter(per_minute / 60, per_minute)
        self._what = what
        self._shared = shared

    def check(self, address: str, now: float | None = None) -> None:
        """Spend one attempt of ``address``; ``rate_limited`` with ``retry_after`` when it is out."""
        self._refuse(self._addresses.take(address, time.monotonic() if now is None else now))

    async def check_shared(self, address: str) -> None:
        """As :meth:`check`, from the buckets every node shares when there are some."""
        if self._shared is None:
            self.check(address)
            return
        try:
            wait = await self._shared.take(f"{self._what}:address:{address}", *_budget(self._addresses))
        except Exception:  # shared buckets unreachable: this node's own budget still applies
            self.check(address)
            return
        self._refuse(wait)

    def _refuse(self, wait: float | None) -> None:
        if wait is not None:
            retry_after = round(wait, 1)
            raise BridgeError(
                "rate_limited",
                f"too many {self._what} attempts; retry in {retry_after} s",
                {"retry_after": retry_after},
            )


def _budget(limiter: RateLimiter) -> tuple[float, float]:
    return limiter.rate, limiter.burst
