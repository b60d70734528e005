"""MCP prompts: ready-made requests a GM picks from a menu, filled with campaign data.

Each prompt gathers what the model needs (notes of the last session, the party's levels,
matching monsters from the rules index) so that the model starts from the table's facts
instead of inventing them. Only facts the asking viewer may see go in (see ``secrecy``): a
player's recap is built from the notes shared with them, never from the GM's.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field
from sqlalchemy import select

from ttrpg_mcp.server import campaigns, entities, rules
from ttrpg_mcp.server.errors import ContentError, InvalidInputError
from ttrpg_mcp.server.secrecy import GM, redact_all
from ttrpg_mcp.server.store.database import Database
from ttrpg_mcp.server.store.models import Note, PlaySession
from ttrpg_mcp.server.viewers import request_viewer
from ttrpg_mcp.server.views import NoteView

__all__ = ["DIFFICULTIES", "register_prompts"]

DIFFICULTIES = ("easy", "medium", "hard", "deadly")

# Every argument says what it wants, for a client's form; ids complete by name (``completions``).
CampaignId = Annotated[str, Field(description="The campaign's id (camp_...); completes from its name")]
OptionalCampaignId = Annotated[
    str, Field(description="The campaign's id (camp_...) to fit the NPC into; empty for none")
]
SessionId = Annotated[
    str, Field(description="The play session's id (sess_...); empty for the campaign's latest session")
]
NpcRole = Annotated[str, Field(description="What the NPC does, e.g. 'innkeeper' or 'smuggler'")]
NpcLocation = Annotated[str, Field(description="Where the party meets them, e.g. 'the docks'")]
NpcTone = Annotated[str, Field(description="The mood they bring, e.g. 'comic' or 'menacing'")]
Difficulty = Annotated[str, Field(description="One of easy, medium, hard, deadly")]
Environment = Annotated[str, Field(description="Where the fight happens, e.g. 'swamp' or 'crypt'")]


def register_prompts(server: MCPServer[Any], database: Database) -> None:
    @server.prompt(description="Recap the last (or a given) play session from its notes, for the players.")
    def session_recap(campaign_id: CampaignId, session_id: SessionId = "", ctx: Context | None = None) -> str:
        viewer = request_viewer(ctx)
        with database.read() as db:
            campaign = campaigns.get_campaign(db, campaign_id, with_versions=False, viewer=viewer)
            query = select(PlaySession).where(PlaySession.campaign_id == campaign_id)
            if session_id:
                query = query.where(PlaySession.id == session_id)
            session = db.scalar(query.order_by(PlaySession.number.desc()).limit(1))
            if session is None:
                raise ContentError(f"campaign {campaign_id!r} has no play session to recap")
            rows = db.scalars(select(Note).where(Note.session_id == session.id).order_by(Note.created_at))
            notes = redact_all("notes", (NoteView.model_validate(row).model_dump() for row in rows), viewer)
        lines = [
            f"Write a vivid recap of session {session.number} ({session.title!r}) of the campaign "
            f"{campaign.name!r} ({campaign.system or 'any system'}), to read aloud at the start of the next "
            "session. Keep it under 250 words, in the past tense, and end with the open threads.",
            "",
        ]
        if session.summary:
            lines += ["The GM's summary:", session.summary, ""]
        lines.append(
            "Notes taken during the session:" if notes else "No notes were taken during the session."
        )
        lines += [f"- {note['title'] + ': ' if note['title'] else ''}{note['body']}" for note in notes]
        return "\n".join(lines)

    @server.prompt(description="Invent an NPC that fits the campaign, ready to save with create_npc.")
    def npc_generator(
        campaign_id: OptionalCampaignId = "",
        role: NpcRole = "",
        location: NpcLocation = "",
        tone: NpcTone = "",
        ctx: Context | None = None,
    ) -> str:
        viewer = request_viewer(ctx)
        context = ""
        if campaign_id:
            with database.read() as db:
                campaign = campaigns.get_campaign(db, campaign_id, with_versions=False, viewer=viewer)
                npcs = entities.list_entities(db, campaign_id, "npcs", limit=20, viewer=viewer).items
            context = (
                f"The campaign is {campaign.name!r} ({campaign.system or 'any system'}), set in "
                f"{campaign.setting or 'a world of the GM'}. {campaign.description}\n"
                f"NPCs who already exist (avoid duplicates, link to them where it helps): "
                f"{', '.join(n['name'] for n in npcs) or 'none yet'}.\n"
            )
        wants = ", ".join(
            part
            for part in (
                f"role: {role}" if role else "",
                f"found at: {location}" if location else "",
                f"tone: {tone}" if tone else "",
            )
            if part
        )
        return (
            f"Create one memorable non-player character{' (' + wants + ')' if wants else ''}.\n{context}"
            "Give a name, role, location, a two-sentence description, three traits, two motivations, "
            "one secret, and relationships to existing characters. Then save it with the create_npc tool"
            + (f" in campaign {campaign_id}." if campaign_id else ".")
        )

    @server.prompt(description="Build a combat encounter for the party, using monsters from the rules index.")
    def encounter_builder(
        campaign_id: CampaignId,
        difficulty: Difficulty = "medium",
        environment: Environment = "",
        ctx: Context | None = None,
    ) -> str:
        if difficulty not in DIFFICULTIES:
            raise InvalidInputError(f"difficulty must be one of {list(DIFFICULTIES)}, not {difficulty!r}")
        viewer = request_viewer(ctx)
        with database.read() as db:
            campaign = campaigns.get_campaign(db, campaign_id, with_versions=False, viewer=viewer)
            party = entities.list_entities(db, campaign_id, "characters", limit=50, viewer=viewer).items
            query = f"{environment} creature" if environment else "creature attack"
            gm = viewer.role == GM
            monsters = rules.search(db, query, kind="monster", limit=8, with_gm_material=gm).hits
        members = [
            f"{c['name']} (level {c['level']} {c['character_class']}, HP {c['hp_max']})" for c in party
        ]
        lines = [
            f"Design a {difficulty} combat encounter for the campaign {campaign.name!r} "
            f"({campaign.system or 'any system'})"
            + (f" in this environment: {environment}." if environment else "."),
            "The party: "
            + ("; ".join(members) if members else "no characters yet (assume four level 1 heroes)")
            + ".",
            "Monsters from the indexed rules you may use (read one whole with its rules:// uri):",
        ]
        lines += [f"- {hit.title} ({hit.uri}): {hit.snippet}" for hit in monsters] or ["- none indexed"]
        lines.append(
            "Give the foes with counts, their tactics, the terrain, and a twist. Then propose the "
            "set_initiative call for a running session (combatants without initiative are rolled)."
        )
        return "\n".join(lines)
