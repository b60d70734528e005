"""The bridge's pool of stdio MCP children: which child serves a request, leases, respawns.

Why a raw JSON-RPC relay rather than the SDK's ``ClientSession``: a ``ClientSession`` is one
client's conversation with one server; it mints its own request ids, keeps progress callbacks
per call and hands every notification to a single handler. The pool multiplexes many browser
sessions over few children, so it must rewrite each request's id and progress token into the
child's namespace, route each reply, progress notification and resource update back to the
session it belongs to, and relay results as the server wrote them (no round trip through typed
models), which keeps it correct for any stdio MCP server at any handshake protocol version.

Shared mode (default): a request goes to the ready child with the fewest requests in flight;
when even that one has ``max_in_flight`` and there is room below ``max_children``, another child
is started in the background (the request does not wait for it). Isolation mode: a session
leases a child of its own on its first request (a warm spare when there is one) and keeps it
until :meth:`McpPool.release_session`, which stops it; ``max_children`` caps the total.

Warm children. :meth:`McpPool.start` starts one child first and the rest of ``min_children``
after it, so the first one migrates and indexes a fresh data directory alone. The supervisor
(``supervisor.py``) then keeps ``min_children`` warm, respawning after crashes with backoff and
stopping at a crash loop (``restarts.py``). A request that finds no ready child waits for one
(at most ``startup_timeout``), starting it itself when nothing else is; while the crash-loop
breaker is open it fails at once with ``mcp_unavailable`` and the reason.

Shutdown (:meth:`McpPool.close`): refuse new requests with ``shutting_down``; stop every child
at once (in-flight requests fail with ``shutting_down``; stdin closed, SIGTERM to its group
after ``grace / 2``, SIGKILL after ``grace``); cancel and await the supervision task and
background starts. It runs shielded from the caller's cancellation and is idempotent.

Timeouts come from :class:`McpSettings` (documented there); the constants below are the pool's own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import anyio
import structlog

from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.mcp_pool import jsonrpc
from ttrpg_mcp.bridge.mcp_pool.catalog import CapabilityCatalog, Catalog
from ttrpg_mcp.bridge.mcp_pool.child import KILL_WAIT_TIMEOUT, ChildState, McpChildProcess
from ttrpg_mcp.bridge.mcp_pool.process import child_environment
from ttrpg_mcp.bridge.mcp_pool.restarts import BreakerStatus
from ttrpg_mcp.bridge.mcp_pool.routing import (
    Listener,
    NotificationRouter,
    is_list_changed,
    log_server_message,
)
from ttrpg_mcp.bridge.mcp_pool.supervisor import ChildSupervisor
from ttrpg_mcp.bridge.settings import McpSettings
from ttrpg_mcp.server.secrecy import META_KEY, Viewer

__all__ = ["McpPool"]

# A released isolated session's child gets this long to exit at end of input or SIGTERM.
RELEASE_GRACE = 5.0

_log = structlog.get_logger(__name__)
# Who a request is for when its caller named nobody: a spectator sees the least.
_NO_VIEWER = Viewer("spectator")


class McpPool:
    """Warm stdio MCP children shared by (or leased to) browser sessions; see the module docstring."""

    def __init__(
        self, settings: McpSettings, command: list[str], *, env: dict[str, str] | None = None
    ) -> None:
        self._settings = settings
        env = child_environment() if env is None else dict(env)
        self._children = ChildSupervisor(settings, list(command), env, self._on_notification)
        self._lease_locks: dict[str, asyncio.Lock] = {}
        self._router = NotificationRouter()
        self._catalog = CapabilityCatalog(
            lambda method, params, session_id: self.request(method, params, session_id=session_id)
        )
        # The initialize result the cached catalog belongs to: a new child's drops the cache.
        self._catalog_source: dict[str, Any] | None = None
        # Sees every tools/call result (readiness follows the content store's failures through it).
        self.on_tool_result: Callable[[dict[str, Any]], None] | None = None
        self._started = False
        self._closing = False
        self._closed = asyncio.Event()

    async def start(self) -> None:
        """Start ``min_children`` initialized children; ``mcp_unavailable`` if the first cannot start.

        Even when it raises, the supervisor keeps trying (with backoff), so call :meth:`close`.
        """
        if self._started or self._closing:
            raise RuntimeError("an McpPool starts once")
        self._started = True
        try:
            if self._settings.min_children > 0:
                await self._children.spawn()
                rest = self._settings.min_children - 1
                await asyncio.gather(*(self._children.spawn() for _ in range(rest)), return_exceptions=True)
        except BridgeError as exc:
            raise BridgeError("mcp_unavailable", exc.message) from exc
        finally:
            self._children.run()

    async def close(self, grace: float = 5.0) -> None:
        """Fail in-flight requests with ``shutting_down`` and stop every child; idempotent."""
        bound = grace + KILL_WAIT_TIMEOUT + 1.0
        if self._closing:
            with anyio.move_on_after(bound, shield=True):
                await self._closed.wait()
            return
        self._closing = True
        with anyio.move_on_after(bound * 2, shield=True):
            await self._children.stop_all(BridgeError("shutting_down", "the bridge is shutting down"), grace)
        self._closed.set()
        _log.info("mcp_pool_closed")

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session_id: str,
        timeout: float | None = None,
        viewer: Viewer | None = None,
    ) -> dict[str, Any]:
        """The ``result`` of one JSON-RPC request to a child (a tool error is a result with isError).

        ``viewer`` is who is asking; it travels in the request's ``_meta`` (see
        ``server.secrecy``), replacing anything the caller put there, and the server leaves
        out what that viewer may not see. Without one, the request is a spectator's: the
        narrowest view, so that a forgotten viewer never shows a GM's secrets.

        ``timeout`` (default ``request_timeout``, at most ``max_request_timeout``) counts from the
        last progress notification; waiting for a child to start counts apart, up to
        ``startup_timeout``. Raises :class:`BridgeError`: ``mcp_error`` (a JSON-RPC error; its code in
        ``data["jsonrpc_code"]``), ``mcp_timeout``, ``mcp_child_crashed``, ``mcp_unavailable``,
        ``shutting_down``. Safe to cancel: the child is told to stop the work.
        """
        self._raise_if_unavailable()
        if self._settings.isolation:
            child = await self._acquire_leased(session_id)
        else:
            child = await self._acquire_shared()
        ceiling = self._settings.max_request_timeout
        result = await child.request(
            method,
            jsonrpc.with_viewer(params, META_KEY, (viewer or _NO_VIEWER).to_meta()[META_KEY]),
            session_id=session_id,
            timeout=min(timeout if timeout is not None else self._settings.request_timeout, ceiling),
            max_timeout=ceiling,
        )
        if method == "tools/call" and self.on_tool_result is not None:
            self.on_tool_result(result)
        uri = params.get("uri") if params else None
        if method == "resources/subscribe" and isinstance(uri, str):
            self._router.subscribe(session_id, uri)
        elif method == "resources/unsubscribe" and isinstance(uri, str):
            self._router.unsubscribe(session_id, uri)
        return result

    def fail_in_flight(self, error: BridgeError) -> None:
        """Answer every request in flight with ``error`` now (shutdown after its grace period)."""
        for child in self._children.children:
            child.fail_requests(error)

    def add_listener(self, session_id: str, callback: Listener) -> None:
        """Route the notifications that concern ``session_id`` to ``callback`` (on the event loop)."""
        self._router.add_listener(session_id, callback)

    def remove_listener(self, session_id: str) -> None:
        self._router.remove_listener(session_id)

    async def release_session(self, session_id: str) -> None:
        """The session has ended: forget its subscriptions; in isolation mode stop its child."""
        self._router.forget(session_id)
        self._lease_locks.pop(session_id, None)
        child = self._children.leases.pop(session_id, None)
        if child is not None:
            await child.stop(BridgeError("mcp_unavailable", "the session was released"), RELEASE_GRACE)
            self._children.notify_change()

    async def capabilities(self, *, session_id: str) -> Catalog:
        """``{"tools", "resources", "resource_templates", "prompts"}``, cached.

        Kept until a list_changed notification or until another child's initialize result
        becomes the pool's (a restarted server may offer other tools).
        """
        info = self.server_info
        if info is not self._catalog_source:  # a child (re)started: its lists may differ
            self._catalog.invalidate()
            self._catalog_source = info
        return await self._catalog.get(session_id, info.get("capabilities"))

    @property
    def ready(self) -> bool:
        return self.not_ready_reason is None

    @property
    def not_ready_reason(self) -> str | None:
        if self._closing:
            return "the MCP pool is shutting down"
        if not self._started:
            return "the MCP pool has not been started"
        if not self._children.ready() and (tripped := self._children.tripped()) is not None:
            return tripped
        if self._settings.min_children > 0 and not self._children.ready():
            last = self._children.crashes.last_reason
            return "no MCP child is ready yet" + (f" (last crash: {last})" if last else "")
        return None

    @property
    def breaker(self) -> BreakerStatus:
        """The crash-loop breaker: open or closed, recent crashes, seconds to the next restart."""
        return self._children.breaker()

    @property
    def ready_children(self) -> int:
        return len(self._children.ready())

    @property
    def size(self) -> int:
        return len(self._children.children)

    @property
    def busy(self) -> int:
        return sum(1 for child in self._children.children if child.in_flight > 0)

    @property
    def server_info(self) -> dict[str, Any]:
        """The ``initialize`` result of a child (serverInfo, capabilities, protocolVersion...)."""
        return self._children.server_info

    def pids(self) -> list[int]:
        return [child.pid for child in self._children.children if child.pid is not None]

    def requests_served(self) -> dict[int, int]:
        """Requests answered by each live child, by pid (for metrics and tests)."""
        return {child.pid: child.served for child in self._children.children if child.pid is not None}

    def _raise_if_unavailable(self) -> None:
        if self._closing:
            raise BridgeError("shutting_down", "the bridge is shutting down")
        if not self._started:
            raise BridgeError("mcp_unavailable", "the MCP pool has not been started")
        # An open breaker refuses at once only when nothing can serve: a ready child still does.
        if not self._children.ready() and (tripped := self._children.tripped()) is not None:
            raise BridgeError("mcp_unavailable", tripped)

    async def _acquire_shared(self) -> McpChildProcess:
        deadline = time.monotonic() + self._settings.startup_timeout
        while True:
            self._raise_if_unavailable()
            if ready := self._children.ready():
                child = min(ready, key=lambda c: c.in_flight)
                if child.in_flight >= self._settings.max_in_flight and self._children.may_spawn():
                    self._children.grow()
                return child
            if self._children.may_spawn():
                return await self._spawn_for_request()
            await self._children.wait_for_change(deadline)

    async def _acquire_leased(self, session_id: str) -> McpChildProcess:
        lock = self._lease_locks.setdefault(session_id, asyncio.Lock())
        deadline = time.monotonic() + self._settings.startup_timeout
        async with lock:  # one lease per session even when its first requests race
            while True:
                self._raise_if_unavailable()
                leases = self._children.leases
                child = leases.get(session_id)
                if child is not None and child.state is ChildState.READY:
                    return child
                leased = set(leases.values())
                if spare := next((c for c in self._children.ready() if c not in leased), None):
                    leases[session_id] = spare
                    self._children.notify_change()  # the supervisor replaces the spare
                    return spare
                spare_starting = any(
                    c.state is ChildState.STARTING and c not in leased for c in self._children.children
                )
                if not spare_starting and self.size >= self._settings.max_children:
                    raise BridgeError(
                        "mcp_unavailable",
                        f"the isolated sessions cap of {self._settings.max_children} MCP children is reached",
                        {"max_children": self._settings.max_children},
                    )
                if not spare_starting and self._children.may_spawn(starting_ok=True):
                    return await self._spawn_for_request(lease_to=session_id)
                await self._children.wait_for_change(deadline)

    async def _spawn_for_request(self, lease_to: str | None = None) -> McpChildProcess:
        try:
            return await self._children.spawn(lease_to)
        except BridgeError as exc:
            self._raise_if_unavailable()  # shutting down, or this crash tripped the breaker
            raise BridgeError("mcp_unavailable", exc.message) from exc

    def _on_notification(
        self, child: McpChildProcess, message: dict[str, Any], session_id: str | None
    ) -> None:
        if session_id is not None:  # progress of one request
            self._router.deliver(message, [session_id])
            return
        method = message.get("method")
        if method == "notifications/message":
            log_server_message(message, child.pid)
            return
        if isinstance(method, str) and is_list_changed(method):
            self._catalog.invalidate()
        targets = self._router.targets(message, leased_to=self._children.lease_holder(child))
        self._router.deliver(message, targets)
