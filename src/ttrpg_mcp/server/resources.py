"""MCP resources: a campaign, a character sheet and a rules section, each readable by URI.

Resources are what a client can attach as context without a tool call (Claude Desktop's
"attach" menu): the campaign and character as JSON, a rules section as Markdown. Each read
is for the viewer the request's ``_meta`` names (see ``secrecy``), like the tools.

``resources/list`` names the concrete campaigns and characters the viewer reaches (see
``directory``), each with a title and a description, so that a client's menu shows "Mira,
level 3 rogue" rather than a URI template to fill in by hand. The list is computed per
request: the SDK's own list is static, so its handler is replaced.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from ttrpg_mcp.server import campaigns, directory, entities, play, rules
from ttrpg_mcp.server.errors import ContentError
from ttrpg_mcp.server.secrecy import GM, Viewer, redact_session, viewer_from_meta
from ttrpg_mcp.server.store.database import Database
from ttrpg_mcp.server.viewers import request_viewer
from ttrpg_mcp.server.views import PlaySessionView

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext

__all__ = ["concrete_resources", "register_resources"]

_JSON = "application/json"


def concrete_resources(database: Database, viewer: Viewer) -> list[types.Resource]:
    """The campaigns and character sheets ``viewer`` reaches, as listed resources."""
    with database.read() as db:
        found = directory.campaigns_for(db, viewer)
        characters = directory.characters_for(db, viewer)
    listed = [
        types.Resource(
            uri=f"campaign://{c.id}",
            name=c.id,
            title=c.name,
            description=(
                f"Campaign {c.name!r} ({c.system or 'any system'}"
                + (f", {c.setting}" if c.setting else "")
                + "): its characters, NPCs, locations and running session"
            ),
            mime_type=_JSON,
        )
        for c in found
    ]
    for character in characters:
        what = " ".join(part for part in (f"level {character.level}", character.character_class) if part)
        player = f", played by {character.player_name}" if character.player_name else ""
        listed.append(
            types.Resource(
                uri=f"character://{character.id}",
                name=character.id,
                title=f"{character.name} ({what})",
                description=f"Character sheet of {character.name} in {character.campaign_name!r}{player}",
                mime_type=_JSON,
            )
        )
    return listed


def register_resources(server: MCPServer[Any], database: Database) -> None:
    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams
    ) -> types.ListResourcesResult:
        viewer = viewer_from_meta(ctx.meta)
        static = await server.list_resources()
        concrete = await anyio.to_thread.run_sync(concrete_resources, database, viewer)
        return types.ListResourcesResult(resources=[*static, *concrete])

    # The SDK's handler lists only resources registered up front; ours asks the store per viewer.
    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler("resources/list", types.PaginatedRequestParams, list_resources)

    @server.resource(
        "campaign://{campaign_id}",
        name="campaign",
        description="A campaign with its characters, NPCs, locations and running session (combat)",
        mime_type="application/json",
    )
    def campaign_resource(campaign_id: str, ctx: Context | None = None) -> str:
        viewer = request_viewer(ctx)
        try:
            with database.read() as db:
                view = campaigns.get_campaign(db, campaign_id, viewer=viewer)
                document: dict[str, Any] = view.model_dump(mode="json")
                for kind in ("characters", "npcs", "locations"):
                    listing = entities.list_entities(db, campaign_id, kind, limit=200, viewer=viewer)
                    document[kind] = listing.items
                # The running session and its combat: the initiative the table sees.
                running = play.active_session(db, campaign_id)
                session = None if running is None else PlaySessionView.model_validate(running)
                document["session"] = (
                    None if session is None else redact_session(session.model_dump(mode="json"), viewer)
                )
        except ContentError as error:
            raise ResourceError(str(error)) from None
        return json.dumps(document, indent=2, ensure_ascii=False)

    @server.resource(
        "character://{character_id}",
        name="character",
        description="A character sheet",
        mime_type="application/json",
    )
    def character_resource(character_id: str, ctx: Context | None = None) -> str:
        try:
            with database.read() as db:
                view = entities.redact_view(
                    "character", entities.get_character(db, character_id), request_viewer(ctx)
                )
        except ContentError as error:
            raise ResourceError(str(error)) from None
        return view.model_dump_json(indent=2)

    @server.resource(
        "rules://{source}/{section}",
        name="rules-section",
        description="One section of an indexed rules or lore source, as Markdown",
        mime_type="text/markdown",
    )
    def rules_resource(source: str, section: str, ctx: Context | None = None) -> str:
        gm = request_viewer(ctx).role == GM
        try:
            with database.read() as db:
                row = rules.get_section(db, source, section, with_gm_material=gm)
                title, path, kind, body = row.title, row.path, row.kind, row.body
        except ContentError as error:
            raise ResourceError(str(error)) from None
        return f"# {title}\n\n*{kind} · {path} · {source}*\n\n{body}\n"
