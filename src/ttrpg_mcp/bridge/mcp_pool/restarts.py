"""When to respawn a crashed child, and when to stop trying: pure bookkeeping, no I/O.

Every unexpected exit (a crash, a failed handshake, a child killed for missing a ping) is
recorded with its time. The delay before the next respawn doubles with each crash still inside
the window (``restart_backoff`` .. ``restart_backoff_max``), so a flapping server is retried
quickly at first and then gently. More than ``crash_loop_limit`` crashes within
``crash_loop_window`` seconds trip the breaker: no more respawns, the pool reports not ready
with the reason, and requests fail with ``mcp_unavailable``. The breaker resets by itself
``crash_loop_window`` seconds after it tripped: by then every crash that tripped it has aged
out of the window, so the pool starts afresh (one more attempt, then backoff again), which
recovers from a transient cause (a full disk, a locked database) without an operator.

Times are plain floats from a monotonic clock, passed in, so tests drive this directly.
"""

from __future__ import annotations

from collections import deque

__all__ = ["CrashHistory"]


class CrashHistory:
    """The recent crashes of one pool's children, the backoff and the crash-loop breaker."""

    def __init__(self, *, limit: int, window: float, backoff: float, backoff_max: float) -> None:
        self._limit = limit
        self._window = window
        self._backoff = backoff
        self._backoff_max = backoff_max
        self._times: deque[float] = deque()
        self._last_reason: str | None = None
        self._tripped_at: float | None = None
        self._trip_reason: str | None = None

    def record(self, now: float, reason: str) -> bool:
        """Count one crash; True when it trips the breaker."""
        self._forget_before(now)
        self._times.append(now)
        self._last_reason = reason
        if self._tripped_at is None and len(self._times) > self._limit:
            self._tripped_at = now
            self._trip_reason = (
                f"MCP children crashed {len(self._times)} times within {self._window:g} s "
                f"(last: {reason}); not restarting for {self._window:g} s"
            )
            return True
        return False

    def count(self, now: float) -> int:
        """Crashes within the window ending at ``now``."""
        self._forget_before(now)
        return len(self._times)

    def tripped(self, now: float) -> str | None:
        """The reason the breaker is open, or None; it closes once its window has passed."""
        if self._tripped_at is not None and now >= self._tripped_at + self._window:
            self._tripped_at = None
            self._trip_reason = None
        return self._trip_reason

    def respawn_at(self, now: float) -> float:
        """The earliest time a new child may be spawned (``now`` or earlier when no crash is recent)."""
        if self.tripped(now) is not None and self._tripped_at is not None:
            return self._tripped_at + self._window
        crashes = self.count(now)
        if crashes == 0:
            return now
        doublings = min(crashes - 1, 32)  # past 2**32 every sane backoff_max has been reached
        delay = min(self._backoff * float(2**doublings), self._backoff_max)
        return self._times[-1] + delay

    @property
    def last_reason(self) -> str | None:
        return self._last_reason

    def _forget_before(self, now: float) -> None:
        while self._times and self._times[0] <= now - self._window:
            self._times.popleft()
