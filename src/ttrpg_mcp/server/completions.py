"""``completion/complete``: campaign, character and session ids offered as the user types.

Ids such as ``camp_3f9a...`` are what the prompts and resource templates take, and nobody
remembers them; a client asks for completions of an argument with what has been typed so far,
which may be the start of the id or of the name ("cur" finds "Curse of the Fen"). The values
offered are ids, matched on id or name (see ``directory.matches``), only among what the asking
viewer reaches: a player is never offered another table's campaign. The SDK's completion
decorator passes no request context, so the handler is registered on the low-level server,
where ``_meta`` (who is asking) is at hand.

A character or session completion is narrowed to the campaign already chosen
(``context.arguments["campaign_id"]``) when the client sends it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types

from ttrpg_mcp.server import directory
from ttrpg_mcp.server.prompts import DIFFICULTIES
from ttrpg_mcp.server.secrecy import Viewer, viewer_from_meta
from ttrpg_mcp.server.store.database import Database

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext
    from mcp.server.mcpserver import MCPServer
    from sqlalchemy.orm import Session

__all__ = ["MAX_VALUES", "complete", "register_completions"]

# The MCP specification caps a completion answer at 100 values.
MAX_VALUES = 100

Completer = Callable[["Session", Viewer, str, dict[str, str]], list[str]]


def _campaigns(db: Session, viewer: Viewer, prefix: str, _context: dict[str, str]) -> list[str]:
    return [c.id for c in directory.campaigns_for(db, viewer) if directory.matches(prefix, c.id, c.name)]


def _characters(db: Session, viewer: Viewer, prefix: str, context: dict[str, str]) -> list[str]:
    campaign_id = context.get("campaign_id") or None
    found = directory.characters_for(db, viewer, campaign_id)
    return [c.id for c in found if directory.matches(prefix, c.id, c.name)]


def _sessions(db: Session, viewer: Viewer, prefix: str, context: dict[str, str]) -> list[str]:
    found = directory.sessions_for(db, viewer, context.get("campaign_id") or None)
    return [s.id for s in found if directory.matches(prefix, s.id, s.title, str(s.number))]


def _difficulties(_db: Session, _viewer: Viewer, prefix: str, _context: dict[str, str]) -> list[str]:
    return [value for value in DIFFICULTIES if value.startswith(prefix.strip().lower())]


# (reference, argument) -> completer; a reference is a prompt name or a resource URI template.
_COMPLETERS: dict[tuple[str, str], Completer] = {
    ("campaign://{campaign_id}", "campaign_id"): _campaigns,
    ("character://{character_id}", "character_id"): _characters,
    ("session_recap", "campaign_id"): _campaigns,
    ("session_recap", "session_id"): _sessions,
    ("npc_generator", "campaign_id"): _campaigns,
    ("encounter_builder", "campaign_id"): _campaigns,
    ("encounter_builder", "difficulty"): _difficulties,
}


def complete(
    database: Database,
    viewer: Viewer,
    ref: types.PromptReference | types.ResourceTemplateReference,
    argument: types.CompletionArgument,
    context: dict[str, str] | None = None,
) -> types.Completion:
    """The values ``viewer`` may pick for ``argument`` of ``ref``; none for what is not completed."""
    key = ref.name if isinstance(ref, types.PromptReference) else ref.uri
    completer = _COMPLETERS.get((key, argument.name))
    if completer is None:
        return types.Completion(values=[], total=0, has_more=False)
    with database.read() as db:
        values = completer(db, viewer, argument.value, context or {})
    return types.Completion(values=values[:MAX_VALUES], total=len(values), has_more=len(values) > MAX_VALUES)


def register_completions(server: MCPServer[Any], database: Database) -> None:
    """Serve ``completion/complete`` on ``server`` (and so announce the completions capability)."""

    async def handle(
        ctx: ServerRequestContext[Any, Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        viewer = viewer_from_meta(ctx.meta)
        context = params.context.arguments if params.context is not None else None
        completion = await anyio.to_thread.run_sync(
            complete, database, viewer, params.ref, params.argument, context
        )
        return types.CompleteResult(completion=completion)

    server._lowlevel_server.add_request_handler("completion/complete", types.CompleteRequestParams, handle)
