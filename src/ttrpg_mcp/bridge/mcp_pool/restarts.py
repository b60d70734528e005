"""When to respawn a crashed child: pure bookkeeping, no I/O.

Every unexpected exit (a crash, a failed handshake, a child killed for missing a ping, the OOM
killer) is recorded with its time. The delay before the next respawn doubles with each crash
still inside the window (``restart_backoff`` .. ``restart_backoff_max``), so a flapping server
is retried quickly at first and then gently, but always retried: there is no full stop.

More than ``crash_loop_limit`` crashes within ``crash_loop_window`` seconds open the breaker.
An open breaker only reports (``/readyz``, ``/metrics``, the reason in errors) and makes a
request fail at once with ``mcp_unavailable`` when no child is ready, instead of waiting for a
respawn that is seconds away; whenever a child is ready, requests are served. It closes by
itself as the crashes age out of the window.

A spawn that fails for lack of resources (no file descriptors, no memory, no processes left:
``EMFILE``, ``ENFILE``, ``ENOMEM``, ``EAGAIN``) is not the server's fault and is not counted as a
crash; it only delays the next attempt by ``restart_backoff``.

Times are plain floats from a monotonic clock, passed in, so tests drive this directly.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["BreakerStatus", "CrashHistory"]


@dataclass(frozen=True)
class BreakerStatus:
    """What ``/readyz`` and ``/metrics`` say about restarts."""

    open: bool
    recent_crashes: int
    next_restart_in: float
    reason: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "state": "open" if self.open else "closed",
            "recent_crashes": self.recent_crashes,
            "next_restart_in": round(self.next_restart_in, 3),
            "reason": self.reason,
        }


class CrashHistory:
    """The recent crashes of one pool's children, the backoff and the crash-loop breaker."""

    def __init__(self, *, limit: int, window: float, backoff: float, backoff_max: float) -> None:
        self._limit = limit
        self._window = window
        self._backoff = backoff
        self._backoff_max = backoff_max
        self._times: deque[float] = deque()
        self._last_reason: str | None = None
        self._not_before = 0.0
        self._was_open = False

    def record(self, now: float, reason: str) -> bool:
        """Count one crash; True when it opens the breaker."""
        self._forget_before(now)
        self._times.append(now)
        self._last_reason = reason
        opened = not self._was_open and len(self._times) > self._limit
        self._was_open = len(self._times) > self._limit
        return opened

    def record_shortage(self, now: float, reason: str) -> None:
        """A spawn failed for lack of resources: retry after ``restart_backoff``, count no crash."""
        self._last_reason = reason
        self._not_before = max(self._not_before, now + self._backoff)

    def count(self, now: float) -> int:
        """Crashes within the window ending at ``now``."""
        self._forget_before(now)
        return len(self._times)

    def tripped(self, now: float) -> str | None:
        """Why the breaker is open (too many recent crashes), or None."""
        crashes = self.count(now)
        self._was_open = crashes > self._limit
        if not self._was_open:
            return None
        wait = max(self.respawn_at(now) - now, 0.0)
        return (
            f"MCP children crashed {crashes} times within {self._window:g} s "
            f"(last: {self._last_reason}); next restart in {wait:.1f} s"
        )

    def respawn_at(self, now: float) -> float:
        """The earliest time a new child may be spawned (``now`` or earlier when no crash is recent)."""
        crashes = self.count(now)
        if crashes == 0:
            return max(now, self._not_before)
        doublings = min(crashes - 1, 32)  # past 2**32 every sane backoff_max has been reached
        delay = min(self._backoff * float(2**doublings), self._backoff_max)
        return max(self._times[-1] + delay, self._not_before)

    def status(self, now: float) -> BreakerStatus:
        reason = self.tripped(now)
        return BreakerStatus(
            open=reason is not None,
            recent_crashes=self.count(now),
            next_restart_in=max(self.respawn_at(now) - now, 0.0),
            reason=reason,
        )

    @property
    def last_reason(self) -> str | None:
        return self._last_reason

    def _forget_before(self, now: float) -> None:
        while self._times and self._times[0] <= now - self._window:
            self._times.popleft()
