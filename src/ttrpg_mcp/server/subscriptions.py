"""``resources/subscribe``: a client hears when a campaign or a character changes, whoever changed it.

Claude Desktop talks to its own ``ttrpg-mcp`` process, while the table writes through the
bridge's pool children: other processes on the same database. So a subscription cannot wait
for this process's own writes; :class:`ResourceWatch` follows the content store's change log
(the same feed the bridge follows) and sends ``notifications/resources/updated`` for each
subscribed URI a change touches: ``campaign://{id}`` for any change in the campaign (its
sheet, characters, notes, combat...), ``character://{id}`` for a change to that character.

The log is polled only while someone is subscribed, so the pool's children, which nobody
subscribes to, never poll. A subscription starts at the newest change when it is made.
(Clients of the 2026 protocol use ``subscriptions/listen``; the tools publish their own
process's writes there.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from sqlalchemy import func, select

from ttrpg_mcp.server.store.models import ContentChange

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext
    from mcp.server.mcpserver import MCPServer
    from mcp.server.session import ServerSession

    from ttrpg_mcp.server.store.database import Database

__all__ = ["POLL_INTERVAL", "ResourceWatch", "uris_of"]

# A tenth of a second: an assistant hears of a move at the table before anyone could type.
POLL_INTERVAL = 0.1


def _client_of(ctx: ServerRequestContext[Any, Any]) -> object:
    """The client connection a request came on: the SDK builds a new session proxy per request."""
    return getattr(ctx.session, "_connection", ctx.session)


def uris_of(campaign_id: str, kind: str, entity_id: str) -> list[str]:
    """The resource URIs a change makes stale."""
    uris = [f"campaign://{campaign_id}"]
    if kind == "character":
        uris.append(f"character://{entity_id}")
    return uris


class ResourceWatch:
    """Subscriptions of this process's clients, and the follower that notifies them."""

    def __init__(self, database: Database, interval: float = POLL_INTERVAL) -> None:
        self._database = database
        self._interval = interval
        # uri -> {client connection: a session proxy of that connection, to notify it with}
        self._subscribers: dict[str, dict[object, ServerSession]] = {}
        self._last_id: int | None = None
        self._wake = anyio.Event()

    def install(self, server: MCPServer[Any]) -> None:
        """Serve ``resources/subscribe`` and ``resources/unsubscribe`` on ``server``."""
        lowlevel = server._lowlevel_server  # the SDK registers extra methods only here
        lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, self._subscribe)
        lowlevel.add_request_handler(
            "resources/unsubscribe", types.UnsubscribeRequestParams, self._unsubscribe
        )

    @asynccontextmanager
    async def lifespan(self, _server: Any) -> AsyncIterator[dict[str, Any]]:
        """Run the follower for as long as the server runs."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._follow)
            try:
                yield {}
            finally:
                group.cancel_scope.cancel()

    # -- handlers -----------------------------------------------------------------------------

    def _newest(self) -> int:
        with self._database.read() as db:
            return int(db.scalar(select(func.max(ContentChange.id))) or 0)

    async def _subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        if self._last_id is None:
            self._last_id = await anyio.to_thread.run_sync(self._newest)
        self._subscribers.setdefault(str(params.uri), {})[_client_of(ctx)] = ctx.session
        self._wake.set()
        return types.EmptyResult()

    async def _unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        sessions = self._subscribers.get(str(params.uri), {})
        sessions.pop(_client_of(ctx), None)
        if not sessions:
            self._subscribers.pop(str(params.uri), None)
        return types.EmptyResult()

    # -- the follower -------------------------------------------------------------------------

    def _changes_after(self, after: int) -> list[tuple[int, str, str, str]]:
        with self._database.read() as db:
            rows = db.execute(
                select(
                    ContentChange.id,
                    ContentChange.campaign_id,
                    ContentChange.entity_kind,
                    ContentChange.entity_id,
                )
                .where(ContentChange.id > after)
                .order_by(ContentChange.id)
                .limit(1000)
            )
            return [(row[0], row[1], row[2], row[3]) for row in rows]

    async def _follow(self) -> None:
        while True:
            if not self._subscribers:
                # Nobody listens: no polling at all until a subscription arrives.
                self._last_id = None
                await self._wake.wait()
                self._wake = anyio.Event()
                continue
            await anyio.sleep(self._interval)
            after = self._last_id or 0
            changes = await anyio.to_thread.run_sync(self._changes_after, after)
            if not changes:
                continue
            self._last_id = changes[-1][0]
            stale: list[str] = []
            for _id, campaign_id, kind, entity_id in changes:
                stale += [uri for uri in uris_of(campaign_id, kind, entity_id) if uri not in stale]
            await self._notify(stale)

    async def _notify(self, uris: list[str]) -> None:
        for uri in uris:
            for client, session in list(self._subscribers.get(uri, {}).items()):
                try:
                    await session.send_resource_updated(uri)
                except Exception:  # a client that went away: forget it, keep the others
                    self._subscribers.get(uri, {}).pop(client, None)
