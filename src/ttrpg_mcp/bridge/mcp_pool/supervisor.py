"""The live children of one pool: starting them, keeping enough warm, respawning after crashes.

A :class:`ChildSupervisor` owns the list of live children (starting, ready or stopping), the
leases of isolation mode, the crash history and the background tasks. A child counts against
``max_children`` from the moment it is created, before its process exists, so a burst of
requests grows the pool by one child, not by one per request. Its supervision task keeps
``min_children`` warm children (in isolation mode: unleased spares), respawning after a crash
once the backoff of :class:`CrashHistory` allows and not at all while its breaker is open.

Everything waiting on the pool's state (the supervision task, a request that wants a child)
waits on one "changed" event, which is replaced each time it fires; every such wait is bounded.

Stopping (:meth:`ChildSupervisor.stop_all`): no new child from then on; every child stopped at
once; then the supervision task and background starts are cancelled and awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

import structlog

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.mcp_pool.child import ChildState, McpChildProcess, NotificationSink
from ttrpg_mcp.bridge.mcp_pool.process import ResourceLimits
from ttrpg_mcp.bridge.mcp_pool.restarts import BreakerStatus, CrashHistory
from ttrpg_mcp.bridge.settings import McpSettings

__all__ = ["ChildSupervisor"]

# Supervision re-checks at least this often, so a missed wake-up costs seconds, not forever.
SUPERVISOR_TICK = 5.0

_log = structlog.get_logger(__name__)


class ChildSupervisor:
    """The children of one pool, their leases and crashes, and the task that keeps them warm."""

    def __init__(
        self,
        settings: McpSettings,
        command: list[str],
        env: dict[str, str],
        on_notification: NotificationSink,
    ) -> None:
        self._settings = settings
        self._command = command
        self._env = env
        self._on_notification = on_notification
        self.children: list[McpChildProcess] = []
        self.leases: dict[str, McpChildProcess] = {}
        self.crashes = CrashHistory(
            limit=settings.crash_loop_limit,
            window=settings.crash_loop_window,
            backoff=settings.restart_backoff,
            backoff_max=settings.restart_backoff_max,
        )
        self.server_info: dict[str, Any] = {}
        self.stopping = False
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    def ready(self) -> list[McpChildProcess]:
        return [child for child in self.children if child.state is ChildState.READY]

    def lease_holder(self, child: McpChildProcess) -> str | None:
        return next((session_id for session_id, leased in self.leases.items() if leased is child), None)

    def tripped(self) -> str | None:
        """Why the crash-loop breaker is open, or None."""
        return self.crashes.tripped(time.monotonic())

    def breaker(self) -> BreakerStatus:
        """The crash-loop breaker and the next restart, for readiness and metrics."""
        return self.crashes.status(time.monotonic())

    def may_spawn(self, *, starting_ok: bool = False) -> bool:
        """Room below max_children, no backoff pending and (unless ok) no child already starting."""
        now = time.monotonic()
        if self.stopping or len(self.children) >= self._settings.max_children:
            return False
        if self.crashes.respawn_at(now) > now:
            return False
        return starting_ok or not any(child.state is ChildState.STARTING for child in self.children)

    async def spawn(self, lease_to: str | None = None) -> McpChildProcess:
        """A new initialized child (leased to a session if given), or ``BridgeError``.

        The start runs in a task of its own: a caller that gives up (cancelled) does not kill a
        child that is nearly ready, which then simply joins the pool.
        """
        if self.stopping:
            raise BridgeError("shutting_down", "the bridge is shutting down")
        task = asyncio.create_task(self._start(self._new_child(lease_to)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_retrieve)
        return await asyncio.shield(task)

    def grow(self) -> None:
        """Start one more child in the background; nobody waits for it."""
        self._background(self._start_quietly(self._new_child()))

    def run(self) -> None:
        """Start the supervision task (once the initial children are up)."""
        self._background(self._supervise())

    async def wait_for_change(self, deadline: float) -> None:
        """Wait for any change, or the end of a respawn backoff; ``mcp_unavailable`` past ``deadline``."""
        now = time.monotonic()
        if now >= deadline:
            raise BridgeError(
                "mcp_unavailable", f"no MCP child became ready within {self._settings.startup_timeout:g} s"
            )
        respawn_at = self.crashes.respawn_at(now)
        await self._wait_change((respawn_at if now < respawn_at < deadline else deadline) - now)

    def notify_change(self) -> None:
        """Wake everything waiting on the pool's state."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def stop_all(self, error: BridgeError, grace: float) -> None:
        """Stop every child (failing its requests with ``error``) and every background task."""
        self.stopping = True
        self.notify_change()
        children = list(self.children)
        await asyncio.gather(*(child.stop(error, grace) for child in children), return_exceptions=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _new_child(self, lease_to: str | None = None) -> McpChildProcess:
        child = McpChildProcess(
            self._command,
            self._env,
            on_notification=self._on_notification,
            on_exit=self._on_exit,
            ping_interval=self._settings.ping_interval,
            ping_timeout=self._settings.ping_timeout,
            limits=ResourceLimits(
                memory_bytes=self._settings.memory_limit_mb * 1024 * 1024,
                cpu_seconds=self._settings.cpu_limit_seconds,
                open_files=self._settings.open_files_limit,
            ),
        )
        self.children.append(child)
        if lease_to is not None:
            self.leases[lease_to] = child
        return child

    async def _start(self, child: McpChildProcess) -> McpChildProcess:
        try:
            await child.start(self._settings.startup_timeout)
        finally:
            self.notify_change()
        self.server_info = child.initialize_result
        return child

    async def _start_quietly(self, child: McpChildProcess) -> None:
        try:
            await self._start(child)
        except BridgeError:
            pass  # the child logged why and its crash was counted
        except Exception:  # a bug must not end the supervision task
            _log.exception("mcp_pool_spawn_failed")

    async def _supervise(self) -> None:
        while not self.stopping:
            now = time.monotonic()
            wait = SUPERVISOR_TICK
            leased = set(self.leases.values())
            warm = [c for c in self.children if c.state is not ChildState.STOPPING and c not in leased]
            if len(warm) < self._settings.min_children and len(self.children) < self._settings.max_children:
                respawn_at = self.crashes.respawn_at(now)
                if respawn_at <= now:
                    await self._start_quietly(self._new_child())
                    continue
                wait = min(wait, respawn_at - now)
            await self._wait_change(wait)

    def _on_exit(self, child: McpChildProcess) -> None:
        if child in self.children:
            self.children.remove(child)
        for session_id in [sid for sid, leased in self.leases.items() if leased is child]:
            del self.leases[session_id]
        counted = child.crashed and not self.stopping
        if counted and child.resource_shortage:
            _log.warning("mcp_pool_spawn_short_of_resources", reason=child.exit_reason)
            self.crashes.record_shortage(time.monotonic(), child.exit_reason or "could not be started")
        elif counted and self.crashes.record(time.monotonic(), child.exit_reason or "exited"):
            _log.error("mcp_pool_crash_loop", reason=self.tripped())
        self.notify_change()

    async def _wait_change(self, timeout: float) -> None:
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), max(timeout, 0.0))

    def _background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a start's failure as seen when its caller stopped waiting for it."""
    if not task.cancelled():
        task.exception()
