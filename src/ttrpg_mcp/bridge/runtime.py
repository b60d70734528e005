"""The running bridge: its store, auth service, MCP pool, metrics and live connections.

:class:`Bridge` owns every long-lived resource and their order. Start: store (migrated), auth
service (signing key), MCP pool (warm children, each through the handshake), dispatcher.
Shutdown happens in two steps, because uvicorn closes sockets on its own once asked to stop:

1. :meth:`Bridge.drain` (called by :class:`ttrpg_mcp.bridge.serve.BridgeServer` before uvicorn's
   own shutdown): refuse new work, send every client ``disconnect`` with a retry hint, give
   in-flight requests ``shutdown_grace`` seconds, answer those still running with
   ``shutting_down``, then close each socket with 1012.
2. :meth:`Bridge.stop` (the app's lifespan exit): stop the MCP children (process groups, then
   SIGKILL) and close the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio
import structlog

from ttrpg_mcp.bridge import accounts, campaigns, events, retention, revocations
from ttrpg_mcp.bridge.auth.service import AuthService
from ttrpg_mcp.bridge.backplane import create_backplane, create_buckets
from ttrpg_mcp.bridge.close_codes import CLOSE_POLICY_VIOLATION, CLOSE_SERVICE_RESTART
from ttrpg_mcp.bridge.content_feed import ContentFeed
from ttrpg_mcp.bridge.content_health import ContentStoreHealth
from ttrpg_mcp.bridge.dispatch import BridgeSession, Dispatcher
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.mcp_pool import McpPool
from ttrpg_mcp.bridge.mcp_pool.process import child_environment
from ttrpg_mcp.bridge.metrics import BridgeMetrics
from ttrpg_mcp.bridge.rooms import Rooms
from ttrpg_mcp.bridge.store import BridgeStore

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.permissions import Role
    from ttrpg_mcp.bridge.settings import BridgeSettings

__all__ = ["Bridge", "LiveConnection"]

log = structlog.get_logger("ttrpg_mcp.bridge")

# Clients are told to wait this long before reconnecting after a shutdown notice: long enough
# for a restart under a process manager, short enough that players barely notice.
RETRY_AFTER_MS = 2000
_DRAIN_POLL = 0.05
# Closing handshakes take a round trip; a peer that does not answer is cut off by uvicorn after.
_CLOSE_WAIT = 3.0


class LiveConnection(Protocol):
    """What shutdown needs of an open client connection, whatever its transport."""

    in_flight: int

    async def announce_shutdown(self, retry_after_ms: int) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


class Bridge:
    """Everything one bridge process runs; created and closed by the app's lifespan."""

    def __init__(self, settings: BridgeSettings) -> None:
        self.settings = settings
        self.metrics = BridgeMetrics()
        self.store = BridgeStore(settings.resolved_database_url)
        self.auth = AuthService.from_settings(settings, self.store)
        self.pool = McpPool(
            settings.mcp, settings.mcp_command, env=child_environment() | settings.mcp_environment
        )
        # In-process fan-out, or Redis when several nodes share the table (redis_url).
        self.backplane = create_backplane(settings.redis_url, settings.redis_key_prefix)
        self.rooms = Rooms(self.store, settings, self.backplane)
        # Rate limits every node spends from.
        self.buckets = create_buckets(settings.redis_url, settings.redis_key_prefix)
        self.dispatcher = Dispatcher(
            settings=settings,
            auth=self.auth,
            pool=self.pool,
            metrics=self.metrics,
            rooms=self.rooms,
            store=self.store,
            buckets=self.buckets,
        )
        # The content store the pool's children write (and Claude Desktop's server, on the same
        # data directory): its changes become table events.
        self.content_feed = ContentFeed(
            settings.content_store,
            self.rooms,
            self.store,
            on_change=self.dispatcher.cache.invalidate_campaign,
        )
        self.rooms.combat_of = self.content_feed.combat_of
        content_store = settings.content_store
        self.content_health = ContentStoreHealth(content_store if isinstance(content_store, Path) else None)
        self.pool.on_tool_result = self.content_health.observe
        self.connections: set[LiveConnection] = set()
        # Told the ledger subject of every withdrawal this node hears of (its own or the ledger's),
        # before the connections close: what remembers credentials forgets them here.
        self.on_withdrawal: list[Callable[[str], None]] = []
        self.revocations = revocations.RevocationFollower(self.store, self.apply_revocation)
        self._pruner: asyncio.Task[None] | None = None
        self.metrics.watch_pool(
            size=lambda: self.pool.size, busy=lambda: self.pool.busy, ready=lambda: float(self.pool.ready)
        )
        self.metrics.watch_breaker(lambda: self.pool.breaker)

    async def start(self) -> None:
        await anyio.to_thread.run_sync(self.store.migrate)
        await self.dispatcher.start()
        purged = await self.auth.purge_expired_tokens()
        await self.pool.start()
        self.rooms.start()
        await self.backplane.start(self.rooms.deliver_shared, self.rooms.backfill, self.rooms.reap)
        await self.content_feed.start()
        await self.revocations.start()
        self._pruner = asyncio.get_running_loop().create_task(self._prune_loop(), name="event-retention")
        log.info(
            "bridge_started",
            children=self.pool.size,
            expired_tokens_purged=purged,
            isolation=self.settings.mcp.isolation,
            database=self.settings.resolved_database_url.split("://", 1)[0],
        )

    async def drain(self) -> None:
        """Tell clients we are going, let in-flight requests finish (bounded), close sockets."""
        if self.dispatcher.shutting_down:
            return
        self.dispatcher.shutting_down = True
        connections = list(self.connections)
        log.info("bridge_draining", connections=len(connections))
        for connection in connections:
            await connection.announce_shutdown(RETRY_AFTER_MS)
        deadline = time.monotonic() + self.settings.shutdown_grace
        # Polling: in-flight counts live on many connections, and this runs once per shutdown.
        while any(c.in_flight for c in connections) and time.monotonic() < deadline:  # noqa: ASYNC110
            await anyio.sleep(_DRAIN_POLL)
        if any(c.in_flight for c in connections):
            # Requests still running get an answer before their socket closes: shutting_down.
            self.pool.fail_in_flight(BridgeError("shutting_down", "the bridge is shutting down; retry later"))
            deadline = time.monotonic() + _CLOSE_WAIT
            while any(c.in_flight for c in connections) and time.monotonic() < deadline:  # noqa: ASYNC110
                await anyio.sleep(_DRAIN_POLL)
        for connection in connections:
            connection.close(CLOSE_SERVICE_RESTART, "server shutting down; reconnect shortly")
        # Let each writer flush its notice and close before uvicorn closes what is left.
        deadline = time.monotonic() + _CLOSE_WAIT
        while self.connections and time.monotonic() < deadline:  # noqa: ASYNC110
            await anyio.sleep(_DRAIN_POLL)

    async def stop(self) -> None:
        await self.drain()
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        await self.revocations.stop()
        await self.content_feed.stop()
        await self.rooms.stop()
        await self.backplane.stop()
        if self.buckets is not None:
            await self.buckets.close()
        await self.pool.close(grace=self.settings.shutdown_grace)
        await anyio.to_thread.run_sync(self.store.close)
        log.info("bridge_stopped")

    async def prune(self) -> dict[str, int]:
        """One retention pass over the event log, the request replies and the revocation ledger."""
        settings = self.settings
        removed = await self.store.run(
            lambda db: (
                events.prune(
                    db,
                    keep=settings.event_retention_count,
                    max_age=timedelta(seconds=settings.event_retention_seconds),
                    dedupe_window=timedelta(seconds=settings.dedupe_window_seconds),
                )
                | {"revocations": revocations.prune(db)}
            )
        )
        if removed["events"] or removed["request_replies"]:
            log.info("retention_pass", **removed)
        return removed

    async def _prune_loop(self) -> None:
        next_retention = time.monotonic()  # the retention settings: at start, then daily
        while True:
            try:
                await self.prune()
                if time.monotonic() >= next_retention:
                    next_retention = time.monotonic() + self.settings.retention_interval
                    await self.apply_retention()
            except Exception:  # a failed pass is retried at the next interval; serving goes on
                log.exception("retention_pass_failed")
            await asyncio.sleep(self.settings.prune_interval)

    async def apply_retention(self) -> dict[str, int]:
        """One pass of the retention settings (audit, strokes, dice, disabled accounts)."""
        content = accounts.content_database_path(self.settings.content_store)
        removed = await anyio.to_thread.run_sync(retention.run_pass, self.store, self.settings, content)
        log.info("retention_applied", **removed)
        return removed

    async def release_session(self, session: BridgeSession) -> None:
        """Forget a closed session's routing and, in isolation mode, its leased child."""
        self.pool.remove_listener(session.session_id)
        with anyio.CancelScope(shield=True):
            await self.rooms.unregister(session)
            await self.pool.release_session(session.session_id)

    async def on_membership_changed(self, campaign_id: str, user_id: str, role: Role | None) -> None:
        """Called by the HTTP API after a role change or removal, for the live table."""
        await self.rooms.membership_changed(campaign_id, user_id, role)

    def cut_connections(self, reason: str, *, key_id: str | None = None, user_id: str | None = None) -> int:
        """Close (1008) the live connections of an API key or of a user, at once; returns how many.

        Called by the HTTP API right after a key is revoked or an account deleted, so this node
        does not wait for its next ledger poll; other nodes (and the command line's withdrawals)
        reach their connections through :class:`~ttrpg_mcp.bridge.revocations.RevocationFollower`.
        """
        cut = 0
        if key_id is not None:
            cut += self.cut_subject(revocations.key_subject(key_id), reason)
        if user_id is not None:
            cut += self.cut_subject(revocations.user_subject(user_id), reason)
        return cut

    async def apply_revocation(self, subject: str, reason: str) -> int:
        """One ledger row, on this node: close what it withdrew, re-read the membership it changed.

        A key's, a user's or an agent seat's connections close (1008, ``reason``); a member's
        seats at that table take the role the store now gives them, or leave it when none.
        Returns how many connections and seats it touched.
        """
        touched = self.cut_subject(subject, reason)
        for campaign_id, user_id in self.rooms.seated_users():
            if revocations.member_subject(campaign_id, user_id) != subject:
                continue
            role = await self.store.run(
                functools.partial(campaigns.get_role, campaign_id=campaign_id, user_id=user_id), readonly=True
            )
            await self.rooms.membership_changed(campaign_id, user_id, role)
            touched += 1
        return touched

    def cut_subject(self, subject: str, reason: str) -> int:
        """Close (1008) this node's live connections of a ledger subject (a key, a user, a seat)."""
        for forget in self.on_withdrawal:
            forget(subject)
        cut = 0
        for connection in list(self.connections):
            session = getattr(connection, "session", None)
            user = getattr(session, "user", None)
            if user is None:
                continue
            subjects = {revocations.user_subject(user.user_id)}
            if user.scope is not None:
                subjects.add(revocations.key_subject(user.scope.key_id))
            campaign_id, seat_id = getattr(session, "campaign_id", None), getattr(session, "seat_id", None)
            if campaign_id is not None and seat_id is not None:
                subjects.add(revocations.seat_subject(campaign_id, seat_id))
            if subject in subjects:
                connection.close(CLOSE_POLICY_VIOLATION, reason)
                cut += 1
        if cut:
            log.info("connections_cut", count=cut, reason=reason)
        return cut

    async def agent_credentials(self, campaign_id: str, participant_id: str) -> set[str]:
        """The API keys (or grants) an agent at a campaign's table came with, on whichever node.

        ``not_found`` if no such agent is seated anywhere.
        """
        keys = await self.rooms.agent_credentials(campaign_id, participant_id)
        if keys is None:
            raise BridgeError("not_found", "no such agent at this table", {"participant_id": participant_id})
        return keys

    def cut_agent(self, campaign_id: str, participant_id: str, reason: str) -> int:
        """End the sessions of one agent seat at once (this node's); returns how many."""
        return self.cut_subject(revocations.seat_subject(campaign_id, participant_id), reason)

    async def ready(self) -> tuple[bool, dict[str, str]]:
        """Readiness: both stores can save, at least one MCP child is ready, Redis answers if used."""
        checks: dict[str, str] = {}
        try:
            await self.store.ping()
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"unreachable: {type(exc).__name__}"
        else:
            if (failure := await self.store.writable()) is not None:
                checks["store"] = f"writes failing: {failure}"
        content_failure = await self.content_health.writable()
        checks["content_store"] = "ok" if content_failure is None else f"writes failing: {content_failure}"
        if self.pool.ready and self.pool.size > 0:
            checks["mcp"] = "ok"
        else:
            checks["mcp"] = self.pool.not_ready_reason or "no MCP child is running"
        if self.backplane.shared:
            checks["redis"] = self.backplane.problem() or "ok"
        if self.dispatcher.shutting_down:
            checks["bridge"] = "shutting down"
        return all(value == "ok" for value in checks.values()), checks
