"""The MCP tools: one small function each, over the content store and the dice engine.

Every tool's JSON Schema comes from its type hints and ``Field`` descriptions; its
description is one line a model can act on. Tools are plain functions: the SDK runs them in
worker threads, so a slow write in one never stalls the others, and SQLite's own locking
(see ``store.database``) keeps concurrent writers safe across processes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio.from_thread
from anyio import to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ttrpg_mcp import dice
from ttrpg_mcp.server import campaigns, combat, entities, play, rules
from ttrpg_mcp.server.arguments import check_tool_arguments
from ttrpg_mcp.server.errors import InvalidInputError
from ttrpg_mcp.server.replies import reply, tool_errors
from ttrpg_mcp.server.secrecy import (
    GM,
    HIDDEN_COMBATANT_NAME,
    default_note_visibility,
    redact_initiative,
    redact_session,
)
from ttrpg_mcp.server.store.changes import current_actor
from ttrpg_mcp.server.store.database import Database
from ttrpg_mcp.server.store.models import PlaySession
from ttrpg_mcp.server.viewers import request_viewer
from ttrpg_mcp.server.views import (
    CampaignList,
    CampaignView,
    CharacterView,
    EntityList,
    HpChange,
    InitiativeView,
    ItemView,
    LocationView,
    NoteView,
    NpcView,
    PlaySessionView,
    SearchResults,
    SourceList,
)

__all__ = ["DiceRoll", "register_tools"]

CampaignId = Annotated[str, Field(description="A campaign id, like camp_3f9a1c0b2d4e")]
CharacterId = Annotated[str, Field(description="A character id, like char_3f9a1c0b2d4e")]
SessionId = Annotated[str, Field(description="A play session id from start_session, like sess_3f9a1c0b2d4e")]


class DiceRoll(dice.RollResult):
    """A roll as the roll_dice tool reports it: the engine's result and what it was for."""

    purpose: str = ""


def _hidden_combatant_campaign(db: Session, target_id: str) -> str | None:
    """The campaign of the running session where ``target_id`` is a hidden combatant, if any."""
    for session in db.scalars(select(PlaySession).where(PlaySession.ended_at.is_(None))):
        if any(entry.get("id") == target_id and entry.get("hidden") for entry in session.initiative):
            return session.campaign_id
    return None


def _notify(ctx: Context | None, *uris: str, listing: bool = False) -> None:
    """Tell subscribed clients what changed; best effort, never fails the tool."""
    if ctx is None:
        return
    try:
        for uri in uris:
            anyio.from_thread.run(ctx.notify_resource_updated, uri)
        if listing:
            anyio.from_thread.run(ctx.notify_resources_changed)
    except Exception:  # noqa: S110  # a notification is a courtesy; the write has committed
        pass


def _campaign_text(view: CampaignView, verb: str) -> str:
    parts = [f"{verb} campaign {view.name!r} ({view.id}), version {view.version}."]
    if view.system or view.setting:
        parts.append(f"System: {view.system or '-'}; setting: {view.setting or '-'}.")
    if view.counts:
        parts.append(", ".join(f"{n} {label}" for label, n in view.counts.items()) + ".")
    if view.archived:
        parts.append("Archived.")
    return " ".join(parts)


def _character_text(view: CharacterView, verb: str) -> str:
    summary = " ".join(x for x in (view.race, view.character_class) if x)
    line = f"{verb} {view.name} ({view.id}): level {view.level} {summary}".rstrip()
    line += f", HP {view.hp_current}/{view.hp_max}"
    if view.hp_temp:
        line += f" (+{view.hp_temp} temp)"
    line += f", AC {view.armor_class}"
    if view.conditions:
        line += f", conditions: {', '.join(map(str, view.conditions))}"
    return line + "."


def _initiative_text(view: InitiativeView) -> str:
    if not view.order:
        return "The initiative order is empty."
    lines = [f"Round {view.round_number}."]
    for index, entry in enumerate(view.order):
        marker = "->" if index == view.active_turn else "  "
        extras = []
        if entry.hp is not None:
            extras.append(f"HP {entry.hp}/{entry.max_hp}")
        if entry.conditions:
            extras.append(", ".join(entry.conditions))
        if entry.hidden:
            extras.append("hidden")
        tail = f" ({'; '.join(extras)})" if extras else ""
        lines.append(f"{marker} {entry.initiative:>3}  {entry.name} [{entry.id}]{tail}")
    return "\n".join(lines)


# Tools that only read: clients (the bridge among them) may cache, retry and resend them freely.
_READ_ONLY = ToolAnnotations(read_only_hint=True)


def register_tools(server: MCPServer[Any], database: Database) -> None:  # noqa: PLR0915  # one place lists every tool
    """Add every tool to ``server``, bound to ``database``."""
    check_tool_arguments(server)  # unknown arguments are refused, not dropped in silence

    def running_campaigns() -> list[str]:
        # A roll without a campaign is logged only while exactly one session runs: asked of
        # memory until the database changes, so most rolls open no transaction at all.
        def read() -> list[str]:
            with database.read() as db:
                return play.running_campaign_ids(db)

        return database.freshness.remember("running_campaigns", read)

    # Answering running_campaigns() waits on nothing but a local file on SQLite.
    local_checks = database.dialect == "sqlite"

    @server.tool(
        description="Roll dice: 2d6+3, 4d6kh3, 1d20 [attack], 8d6!, 4d6ro1, d% ... with advantage too."
    )
    async def roll_dice(
        expression: Annotated[str, Field(description="Dice notation, e.g. '1d20+5 [attack]' or '4d6kh3'")],
        advantage: Literal["none", "advantage", "disadvantage"] = "none",
        purpose: Annotated[
            str, Field(description="What the roll is for, shown with it", max_length=200)
        ] = "",
        campaign_id: Annotated[
            str | None,
            Field(description="Show it at this campaign's table (default: the one with a running session)"),
        ] = None,
        visibility: Annotated[
            Literal["public", "gm", "blind", "self"] | None,
            Field(description="Who at the table sees it; default gm for a GM, public for a player"),
        ] = None,
    ) -> Annotated[CallToolResult, DiceRoll]:
        with tool_errors():
            result = dice.roll(expression, advantage=advantage)
        # The engine's result is validated already: its fields are taken as they are.
        roll = DiceRoll.model_construct(**dict(result), purpose=purpose)
        text = result.text + (f"  ({purpose})" if purpose else "")
        if result.crit:
            text += "  Natural 20!"
        if result.fumble:
            text += "  Natural 1."
        answer = reply(roll, text)
        # An async tool runs on the server's event loop: a sync one would cost every roll a
        # worker-thread round trip (a queue put, a wake-up and a hand-back), which was a larger
        # share of a relayed roll than the roll itself. Only what may wait on the database
        # goes to a thread: the log write, and the running-session check where it is a round
        # trip (PostgreSQL); on SQLite that check is a pragma on an idle connection.
        if campaign_id is None:
            running = running_campaigns() if local_checks else await to_thread.run_sync(running_campaigns)
            if len(running) != 1:
                return answer
        shown = visibility or ("gm" if current_actor().role == "gm" else "public")

        def log() -> None:
            with tool_errors(), database.write() as db:
                # The table's dice log shows it (through the change feed) when it belongs to a campaign.
                logged = dict(answer.structured_content or {})
                play.log_roll(db, campaign_id, logged, purpose=purpose, visibility=shown)

        await to_thread.run_sync(log)
        return answer

    @server.tool(
        description=(
            "Search the rules and lore (full-text, best first); each hit's score is relative to "
            "the best hit (1.0). Read a hit whole at its rules:// uri."
        ),
        annotations=_READ_ONLY,
    )
    def search(
        query: Annotated[str, Field(description="Words to look for, e.g. 'grapple prone'", max_length=500)],
        source: Annotated[str | None, Field(description="Only this source (see list_sources)")] = None,
        kind: Annotated[
            Literal["rule", "spell", "monster", "item", "lore"] | None, Field(description="Only this kind")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, SearchResults]:
        gm = request_viewer(ctx).role == GM
        with tool_errors(), database.read() as db:
            results = rules.search(db, query, source=source, kind=kind, limit=limit, with_gm_material=gm)
        if not results.hits:
            return reply(results, f"Nothing found for {query!r}.")
        lines = [f"{results.total} sections match {query!r}; the best {len(results.hits)}:"]
        lines += [f"- {h.title} [{h.kind}, {h.uri}]: {h.snippet}" for h in results.hits]
        return reply(results, "\n".join(lines))

    @server.tool(
        description="List the indexed rule and lore sources with their section counts.",
        annotations=_READ_ONLY,
    )
    def list_sources(ctx: Context | None = None) -> Annotated[CallToolResult, SourceList]:
        gm = request_viewer(ctx).role == GM
        with database.read() as db:
            sources = rules.list_sources(db, with_gm_material=gm)
        lines = [f"- {s.slug}: {s.title}, {s.section_count} sections {s.kinds}" for s in sources.sources]
        return reply(sources, "\n".join(lines) or "No sources are indexed.")

    @server.tool(description="Create a campaign.")
    def create_campaign(
        name: Annotated[str, Field(min_length=1, max_length=200)],
        system: Annotated[str, Field(description="Game system, e.g. 'D&D 5e'", max_length=100)] = "",
        setting: Annotated[str, Field(max_length=200)] = "",
        description: str = "",
        house_rules: list[str] | None = None,
        world_state: Annotated[
            dict[str, Any] | None, Field(description="Free-form facts about the world")
        ] = None,
        secret_keys: Annotated[
            list[str] | None, Field(description="world_state keys only the GM may see")
        ] = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, CampaignView]:
        with tool_errors(), database.write() as db:
            view = campaigns.create_campaign(
                db,
                name=name,
                system=system,
                setting=setting,
                description=description,
                house_rules=house_rules,
                world_state=world_state,
                secret_keys=secret_keys,
            )
        _notify(ctx, listing=True)
        return reply(view, _campaign_text(view, "Created"))

    @server.tool(
        description="Get a campaign with its counts and recent version history.", annotations=_READ_ONLY
    )
    def get_campaign(
        campaign_id: CampaignId, ctx: Context | None = None
    ) -> Annotated[CallToolResult, CampaignView]:
        with tool_errors(), database.read() as db:
            view = campaigns.get_campaign(db, campaign_id, viewer=request_viewer(ctx))
        return reply(view, _campaign_text(view, "Campaign"))

    @server.tool(description="List campaigns, most recently changed first.", annotations=_READ_ONLY)
    def list_campaigns(include_archived: bool = False) -> Annotated[CallToolResult, CampaignList]:
        with database.read() as db:
            listing = campaigns.list_campaigns(db, include_archived=include_archived)
        lines = [f"- {c.name} ({c.id}) {c.system}".rstrip() for c in listing.campaigns]
        return reply(listing, "\n".join(lines) or "No campaigns yet: create_campaign makes one.")

    @server.tool(
        description="Update a campaign (only the fields given); keeps the previous version for rollback. "
        "world_state merges key by key; a null value removes a key; secret_keys lists the GM-only keys."
    )
    def save_campaign(
        campaign_id: CampaignId,
        name: Annotated[str | None, Field(max_length=200)] = None,
        system: Annotated[str | None, Field(max_length=100)] = None,
        setting: Annotated[str | None, Field(max_length=200)] = None,
        description: str | None = None,
        house_rules: list[str] | None = None,
        world_state: dict[str, Any] | None = None,
        secret_keys: Annotated[
            list[str] | None, Field(description="world_state keys only the GM may see (replaces the list)")
        ] = None,
        archived: bool | None = None,
        expected_version: Annotated[
            int | None, Field(description="Refuse the save if the campaign is no longer at this version")
        ] = None,
        reason: Annotated[str, Field(description="Why, kept in the version history", max_length=200)] = "",
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, CampaignView]:
        given = {
            "name": name,
            "system": system,
            "setting": setting,
            "description": description,
            "house_rules": house_rules,
            "world_state": world_state,
            "secret_keys": secret_keys,
            "archived": archived,
        }
        changes = {key: value for key, value in given.items() if value is not None}
        with tool_errors(), database.write() as db:
            view = campaigns.save_campaign(
                db,
                campaign_id,
                changes,
                expected_version=expected_version,
                reason=reason,
                viewer=request_viewer(ctx),
            )
        _notify(ctx, f"campaign://{campaign_id}")
        return reply(view, _campaign_text(view, "Saved"))

    @server.tool(description="Restore a campaign to an earlier version (the current one is kept too).")
    def rollback_campaign(
        campaign_id: CampaignId, version: Annotated[int, Field(ge=1)], ctx: Context | None = None
    ) -> Annotated[CallToolResult, CampaignView]:
        with tool_errors(), database.write() as db:
            view = campaigns.rollback_campaign(db, campaign_id, version, viewer=request_viewer(ctx))
        _notify(ctx, f"campaign://{campaign_id}")
        return reply(view, _campaign_text(view, f"Rolled back to version {version}:"))

    @server.tool(description="Create a character in a campaign; hp_current defaults to hp_max.")
    def create_character(
        campaign_id: CampaignId,
        name: Annotated[str, Field(min_length=1, max_length=200)],
        character_class: Annotated[str, Field(max_length=100)] = "",
        level: Annotated[int, Field(ge=1, le=100)] = 1,
        race: Annotated[str, Field(max_length=100)] = "",
        abilities: Annotated[
            dict[str, int] | None, Field(description="Scores by name: {'str': 15, 'dex': 14, ...}")
        ] = None,
        hp_max: Annotated[int, Field(ge=1)] = 10,
        hp_current: Annotated[int | None, Field(ge=0)] = None,
        armor_class: Annotated[int, Field(ge=0, le=100)] = 10,
        owner: Annotated[
            str, Field(description="The user who plays it (bridge user id)", max_length=100)
        ] = "",
        player_name: Annotated[str, Field(max_length=200)] = "",
        conditions: list[str] | None = None,
        inventory: list[Any] | None = None,
        notes: str = "",
        gm_notes: Annotated[str, Field(description="The GM's notes: never shown to players")] = "",
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, CharacterView]:
        viewer = request_viewer(ctx)
        with tool_errors(), database.write() as db:
            view = entities.create_character(
                db,
                campaign_id,
                name=name,
                character_class=character_class,
                level=level,
                race=race,
                abilities=abilities,
                hp_max=hp_max,
                hp_current=hp_current,
                armor_class=armor_class,
                owner=owner,
                player_name=player_name,
                conditions=conditions,
                inventory=inventory,
                notes=notes,
                gm_notes=gm_notes if viewer.is_gm_of(campaign_id) else "",
            )
        view = entities.redact_view("character", view, viewer)
        _notify(ctx, f"campaign://{campaign_id}", listing=True)
        return reply(view, _character_text(view, "Created"))

    @server.tool(description="Get a character sheet.", annotations=_READ_ONLY)
    def get_character(
        character_id: CharacterId, ctx: Context | None = None
    ) -> Annotated[CallToolResult, CharacterView]:
        with tool_errors(), database.read() as db:
            view = entities.redact_view(
                "character", entities.get_character(db, character_id), request_viewer(ctx)
            )
        return reply(view, _character_text(view, "Character"))

    @server.tool(
        description="Update a character's fields (only those given). For damage and healing prefer update_hp."
    )
    def update_character(
        character_id: CharacterId,
        changes: Annotated[
            dict[str, Any],
            Field(description=f"Fields to set, among: {', '.join(entities.CHARACTER_FIELDS)}"),
        ],
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, CharacterView]:
        viewer = request_viewer(ctx)
        with tool_errors(), database.write() as db:
            current = entities.get_character(db, character_id)
            if "gm_notes" in changes and not viewer.is_gm_of(current.campaign_id):
                raise InvalidInputError("only the campaign's GM may change gm_notes")
            view = entities.redact_view(
                "character", entities.update_character(db, character_id, changes), viewer
            )
        _notify(ctx, f"character://{character_id}")
        return reply(view, _character_text(view, "Updated"))

    @server.tool(
        description="List a campaign's characters, NPCs, locations, items or notes, with filters.",
        annotations=_READ_ONLY,
    )
    def list_items(
        campaign_id: CampaignId,
        kind: Literal["characters", "npcs", "locations", "items", "notes"] = "characters",
        name_contains: Annotated[str, Field(description="Part of the name (or of a note's text)")] = "",
        location: Annotated[str, Field(description="NPCs only: where they are")] = "",
        owner: Annotated[str, Field(description="Characters only: the user who plays them")] = "",
        holder: Annotated[str, Field(description="Items only: who or what holds them")] = "",
        tag: Annotated[str, Field(description="Notes only: a tag")] = "",
        limit: Annotated[int, Field(ge=1, le=200)] = 50,
        offset: Annotated[int, Field(ge=0)] = 0,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, EntityList]:
        with tool_errors(), database.read() as db:
            listing = entities.list_entities(
                db,
                campaign_id,
                kind,
                name_contains=name_contains,
                location=location,
                owner=owner,
                holder=holder,
                tag=tag,
                limit=limit,
                offset=offset,
                viewer=request_viewer(ctx),
            )
        label = "title" if kind == "notes" else "name"
        lines = [f"{listing.total} {kind}:"] + [f"- {e[label] or e['id']} ({e['id']})" for e in listing.items]
        return reply(listing, "\n".join(lines))

    @server.tool(description="Create a non-player character.")
    def create_npc(
        campaign_id: CampaignId,
        name: Annotated[str, Field(min_length=1, max_length=200)],
        role: Annotated[str, Field(description="e.g. 'innkeeper', 'villain'", max_length=200)] = "",
        location: Annotated[str, Field(max_length=200)] = "",
        description: str = "",
        traits: list[str] | None = None,
        motivations: list[str] | None = None,
        relationships: Annotated[
            dict[str, str] | None, Field(description="Name -> relation, e.g. {'Mira': 'owes her a favour'}")
        ] = None,
        notes: Annotated[str, Field(description="The GM's notes: never shown to players")] = "",
        secrets: Annotated[
            list[str] | None, Field(description="What only the GM knows: never shown to players")
        ] = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, NpcView]:
        with tool_errors(), database.write() as db:
            view = entities.create_npc(
                db,
                campaign_id,
                name=name,
                role=role,
                location=location,
                description=description,
                traits=traits,
                motivations=motivations,
                relationships=relationships,
                notes=notes,
                secrets=secrets,
            )
        view = entities.redact_view("npc", view, request_viewer(ctx))
        _notify(ctx, f"campaign://{campaign_id}")
        return reply(view, f"Created NPC {view.name} ({view.id}){', ' + view.role if view.role else ''}.")

    @server.tool(description="Create a location in a campaign.")
    def create_location(
        campaign_id: CampaignId,
        name: Annotated[str, Field(min_length=1, max_length=200)],
        region: Annotated[str, Field(max_length=200)] = "",
        description: str = "",
        notes: Annotated[str, Field(description="The GM's notes: never shown to players")] = "",
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, LocationView]:
        with tool_errors(), database.write() as db:
            view = entities.create_location(
                db, campaign_id, name=name, region=region, description=description, notes=notes
            )
        view = entities.redact_view("location", view, request_viewer(ctx))
        _notify(ctx, f"campaign://{campaign_id}")
        return reply(view, f"Created location {view.name} ({view.id}).")

    @server.tool(description="Create an item, optionally held by a character, NPC or location.")
    def create_item(
        campaign_id: CampaignId,
        name: Annotated[str, Field(min_length=1, max_length=200)],
        category: Annotated[str, Field(description="e.g. 'weapon', 'potion'", max_length=100)] = "",
        description: str = "",
        properties: dict[str, Any] | None = None,
        holder: Annotated[str, Field(description="A character, NPC or location id")] = "",
        quantity: Annotated[int, Field(ge=0)] = 1,
        gm_notes: Annotated[
            str, Field(description="What only the GM knows of it: never shown to players")
        ] = "",
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, ItemView]:
        viewer = request_viewer(ctx)
        with tool_errors(), database.write() as db:
            view = entities.create_item(
                db,
                campaign_id,
                name=name,
                category=category,
                description=description,
                properties=properties,
                holder=holder,
                quantity=quantity,
                gm_notes=gm_notes if viewer.is_gm_of(campaign_id) else "",
            )
        view = entities.redact_view("item", view, viewer)
        _notify(ctx, f"campaign://{campaign_id}")
        return reply(view, f"Created item {view.name} x{view.quantity} ({view.id}).")

    @server.tool(
        description="Add a note to a campaign; during a running session it belongs to that session. "
        "A GM's note is GM-only unless visibility says 'players' (or one player's user id)."
    )
    def add_note(
        campaign_id: CampaignId,
        body: Annotated[str, Field(min_length=1, max_length=100_000)],
        title: Annotated[str, Field(max_length=200)] = "",
        tags: list[str] | None = None,
        session_id: Annotated[str | None, Field(description="Attach to this session instead")] = None,
        visibility: Annotated[
            str | None,
            Field(
                description="Who may read it: 'gm', 'players', or one player's user id. "
                "Default: 'gm' for a GM's note, 'players' for a player's",
                max_length=100,
            ),
        ] = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, NoteView]:
        viewer = request_viewer(ctx)
        with tool_errors(), database.write() as db:
            view = entities.add_note(
                db,
                campaign_id,
                body=body,
                title=title,
                tags=tags,
                session_id=session_id,
                visibility=default_note_visibility(viewer) if visibility is None else visibility,
                author=viewer.user_id or "",
            )
        _notify(ctx, f"campaign://{campaign_id}")
        where = f" to session {view.session_id}" if view.session_id else ""
        return reply(view, f"Added note {view.title or view.id!r}{where}.")

    @server.tool(description="Start the next play session of a campaign (one runs at a time).")
    def start_session(
        campaign_id: CampaignId, title: Annotated[str, Field(max_length=200)] = "", ctx: Context | None = None
    ) -> Annotated[CallToolResult, PlaySessionView]:
        with tool_errors(), database.write() as db:
            view = play.start_session(db, campaign_id, title=title)
        view = PlaySessionView.model_validate(redact_session(view.model_dump(), request_viewer(ctx)))
        _notify(ctx, f"campaign://{campaign_id}")
        return reply(view, f"Started session {view.number}, {view.title!r} ({view.id}).")

    @server.tool(
        description="Set the initiative order of a running session; combatants without initiative roll "
        "1d20 + modifier. Starts round 1."
    )
    def set_initiative(
        session_id: SessionId, combatants: list[play.CombatantInput], ctx: Context | None = None
    ) -> Annotated[CallToolResult, InitiativeView]:
        with tool_errors(), database.write() as db:
            view = play.set_initiative(db, session_id, combatants)
        view = InitiativeView.model_validate(redact_initiative(view.model_dump(), request_viewer(ctx)))
        return reply(view, _initiative_text(view))

    @server.tool(description="Advance to the next combatant's turn (skipping the defeated).")
    def next_turn(
        session_id: SessionId, ctx: Context | None = None
    ) -> Annotated[CallToolResult, InitiativeView]:
        with tool_errors(), database.write() as db:
            view = play.next_turn(db, session_id)
        view = InitiativeView.model_validate(redact_initiative(view.model_dump(), request_viewer(ctx)))
        current = view.current.name if view.current else "nobody"
        return reply(view, f"Round {view.round_number}: {current}'s turn.\n{_initiative_text(view)}")

    @server.tool(
        description="Change the initiative of a campaign's running session like the table does: "
        "set, next, previous, add, remove, update (hp, conditions, hidden...), clear."
    )
    def update_initiative(
        campaign_id: CampaignId,
        operation: Annotated[
            combat.CombatOperation,
            Field(description="{'action': 'next'}, {'action': 'add', 'combatant': {...}}, ..."),
        ],
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, InitiativeView]:
        with tool_errors(), database.write() as db:
            view = play.update_initiative(db, campaign_id, operation)
        _notify(ctx, f"campaign://{campaign_id}")
        current = view.current.name if view.current else "nobody"
        return reply(view, f"Round {view.round_number}: {current}'s turn.\n{_initiative_text(view)}")

    @server.tool(
        description="Damage or heal a character or a combatant; applies unconscious/dying/dead at 0 HP, "
        "temporary HP first, healing wakes."
    )
    def update_hp(
        target_id: Annotated[str, Field(description="A character id, or a combatant id from set_initiative")],
        amount: Annotated[int, Field(ge=0, le=1_000_000)],
        kind: Literal["damage", "healing", "temp"] = "damage",
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, HpChange]:
        viewer = request_viewer(ctx)
        with tool_errors(), database.write() as db:
            hidden_in = _hidden_combatant_campaign(db, target_id)
            change = play.damage_or_heal(db, target_id, amount, kind)
        if target_id.startswith("char_"):
            _notify(ctx, f"character://{target_id}")
        if hidden_in is not None and not viewer.is_gm_of(hidden_in):
            # Whoever may hit a hidden combatant learns nothing of it but that the blow landed.
            masked = HpChange(
                target_id=target_id,
                name=HIDDEN_COMBATANT_NAME,
                amount=amount,
                kind=kind,
                hp_before=0,
                hp_after=0,
                hp_max=0,
                hp_temp=0,
                conditions=[],
                conditions_added=[],
                conditions_removed=[],
            )
            return reply(masked, f"{HIDDEN_COMBATANT_NAME}: {kind} {amount}.")
        text = f"{change.name}: {change.hp_before} -> {change.hp_after}/{change.hp_max} HP ({kind} {amount})."
        if change.conditions_added:
            text += f" Now {', '.join(change.conditions_added)}."
        if change.conditions_removed:
            text += f" No longer {', '.join(change.conditions_removed)}."
        return reply(change, text)

    @server.tool(description="End a running session, with an optional summary for the recap.")
    def end_session(
        session_id: SessionId, summary: str = "", ctx: Context | None = None
    ) -> Annotated[CallToolResult, PlaySessionView]:
        with tool_errors(), database.write() as db:
            view = play.end_session(db, session_id, summary=summary)
        view = PlaySessionView.model_validate(redact_session(view.model_dump(), request_viewer(ctx)))
        _notify(ctx, f"campaign://{view.campaign_id}")
        return reply(view, f"Ended session {view.number}, {view.title!r}.")
