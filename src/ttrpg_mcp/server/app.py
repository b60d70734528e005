"""Assembles the MCP server: the SDK's ``MCPServer`` with our tools, resources and prompts.

The database is opened (and migrated, and the starter compendium indexed when it changed)
before the server answers its first request, so that a client never sees a half-made store.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

from ttrpg_mcp import __version__
from ttrpg_mcp.server import rules
from ttrpg_mcp.server.actor import ActorMiddleware
from ttrpg_mcp.server.completions import register_completions
from ttrpg_mcp.server.prompts import register_prompts
from ttrpg_mcp.server.resources import register_resources
from ttrpg_mcp.server.store.changes import prune_changes
from ttrpg_mcp.server.store.database import Database
from ttrpg_mcp.server.subscriptions import ResourceWatch
from ttrpg_mcp.server.tools import register_tools

__all__ = ["INSTRUCTIONS", "build_server", "open_database"]

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
Tools for running tabletop role-playing campaigns. Campaigns hold characters, NPCs, \
locations, items and notes; ids carry a prefix (camp_, char_, npc_, loc_, item_, note_, sess_). \
Use search to look rules and lore up before ruling on them, and read a hit whole at its \
rules:// uri. Roll with roll_dice rather than inventing numbers. During play: start_session, \
set_initiative, next_turn, update_hp (damage or healing), add_note, end_session. Every \
save_campaign keeps the previous version; rollback_campaign restores one."""


def open_database(data_dir: Path) -> Database:
    database = Database.open(data_dir)
    with database.write() as db:
        if rules.ensure_compendium(db):
            log.info("indexed the starter compendium")
        pruned = prune_changes(db)
        if pruned:
            log.info("pruned %d old entries of the change log", pruned)
    return database


def build_server(database: Database) -> MCPServer[Any]:
    # resources/subscribe, fed by the content store's change log (writes from any process).
    watch = ResourceWatch(database)
    server: MCPServer[Any] = MCPServer(
        "ttrpg-mcp",
        lifespan=watch.lifespan,
        title="TTRPG campaign tools",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url="https://github.com/ttrpg-mcp/ttrpg-mcp",
    )
    # Each write records who made it (the change feed); the bridge names its user in _meta.
    server.middleware.append(ActorMiddleware())
    register_tools(server, database)
    register_resources(server, database)
    watch.install(server)
    register_prompts(server, database)
    register_completions(server, database)
    return server
