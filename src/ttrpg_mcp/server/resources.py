"""MCP resources: a campaign, a character sheet and a rules section, each readable by URI.

Resources are what a client can attach as context without a tool call (Claude Desktop's
"attach" menu): the campaign and character as JSON, a rules section as Markdown. Each read
is for the viewer the request's ``_meta`` names (see ``secrecy``), like the tools.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from ttrpg_mcp.server import campaigns, entities, play, rules
from ttrpg_mcp.server.errors import ContentError
from ttrpg_mcp.server.secrecy import GM, redact_session
from ttrpg_mcp.server.store.database import Database
from ttrpg_mcp.server.viewers import request_viewer
from ttrpg_mcp.server.views import PlaySessionView

__all__ = ["register_resources"]


def register_resources(server: MCPServer[Any], database: Database) -> None:
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
