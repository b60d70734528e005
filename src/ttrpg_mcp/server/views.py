"""What the tools return: pydantic models that become each tool's ``outputSchema``.

The ORM rows never leave the store; these views are the public shape of the data, stable
across schema changes, and are what a client sees as ``structuredContent``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CampaignList",
    "CampaignSummary",
    "CampaignVersionView",
    "CampaignView",
    "CharacterView",
    "Combatant",
    "EntityList",
    "HpChange",
    "InitiativeView",
    "ItemView",
    "LocationView",
    "NoteView",
    "NpcView",
    "PlaySessionView",
    "SearchHit",
    "SearchResults",
    "SourceList",
    "SourceView",
]


class _View(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CampaignSummary(_View):
    id: str
    name: str
    system: str
    setting: str
    archived: bool
    version: int
    updated_at: datetime


class CampaignVersionView(_View):
    version: int
    reason: str
    created_at: datetime


class CampaignView(_View):
    id: str
    name: str
    system: str
    setting: str
    description: str
    house_rules: list[Any]
    world_state: dict[str, Any]
    secret_keys: list[Any] = Field(
        default_factory=list, description="world_state keys only the GM sees (empty for others)"
    )
    archived: bool
    version: int
    created_at: datetime
    updated_at: datetime
    counts: dict[str, int] = Field(default_factory=dict, description="Characters, NPCs, locations, ...")
    versions: list[CampaignVersionView] = Field(
        default_factory=list, description="Earlier versions, newest first"
    )


class CampaignList(BaseModel):
    campaigns: list[CampaignSummary]


class CharacterView(_View):
    id: str
    campaign_id: str
    name: str
    owner: str
    player_name: str
    character_class: str
    level: int
    race: str
    abilities: dict[str, Any]
    hp_current: int
    hp_max: int
    hp_temp: int
    armor_class: int
    conditions: list[Any]
    inventory: list[Any]
    notes: str
    gm_notes: str = Field(default="", description="The GM's notes; empty for everyone else")
    updated_at: datetime


class NpcView(_View):
    id: str
    campaign_id: str
    name: str
    role: str
    location: str
    description: str
    traits: list[Any]
    motivations: list[Any]
    relationships: dict[str, Any]
    notes: str = Field(description="The GM's notes; empty for everyone else")
    secrets: list[Any] = Field(default_factory=list, description="GM-only; empty for everyone else")


class LocationView(_View):
    id: str
    campaign_id: str
    name: str
    region: str
    description: str
    notes: str = Field(description="The GM's notes; empty for everyone else")


class ItemView(_View):
    id: str
    campaign_id: str
    name: str
    category: str
    description: str
    properties: dict[str, Any]
    holder: str
    quantity: int
    gm_notes: str = Field(default="", description="The GM's notes; empty for everyone else")


class NoteView(_View):
    id: str
    campaign_id: str
    session_id: str | None
    title: str
    body: str
    tags: list[Any]
    visibility: str = Field(
        default="gm", description="'gm', 'players', or the user id of the one player who may read it"
    )
    author: str = Field(default="", description="The user who wrote it; empty for the local GM")
    created_at: datetime


class EntityList(BaseModel):
    """One page of a campaign's characters, NPCs, locations, items or notes."""

    kind: Literal["characters", "npcs", "locations", "items", "notes"]
    total: int = Field(description="How many match the filters, before limit and offset")
    items: list[dict[str, Any]]


class Combatant(BaseModel):
    """One entry of the initiative order."""

    id: str = Field(description="Stable within the session; a character's id when it is one")
    name: str
    initiative: int | float
    modifier: int = 0
    character_id: str | None = None
    hp: int | None = None
    max_hp: int | None = None
    armor_class: int | None = None
    conditions: list[str] = Field(default_factory=list)
    hidden: bool = Field(default=False, description="Hidden from players (an ambush, say)")
    defeated: bool = False


class InitiativeView(BaseModel):
    session_id: str
    campaign_id: str | None = None
    round_number: int
    active_turn: int
    current: Combatant | None
    order: list[Combatant]


class PlaySessionView(_View):
    id: str
    campaign_id: str
    number: int
    title: str
    started_at: datetime
    ended_at: datetime | None
    summary: str
    round_number: int
    active_turn: int
    initiative: list[Combatant]


class HpChange(BaseModel):
    target_id: str
    name: str
    amount: int
    kind: Literal["damage", "healing", "temp"]
    hp_before: int
    hp_after: int
    hp_max: int
    hp_temp: int
    conditions: list[str]
    conditions_added: list[str]
    conditions_removed: list[str]


class SearchHit(BaseModel):
    source: str
    section: str = Field(description="The section's slug; read it whole as rules://{source}/{section}")
    title: str
    kind: str
    path: str
    snippet: str
    score: float = Field(
        description="Relevance relative to the best hit of this search: 1.0 for the best, between 0 and 1 "
        "for the rest; the same scale on SQLite and PostgreSQL"
    )
    uri: str


class SearchResults(BaseModel):
    query: str
    total: int
    hits: list[SearchHit]


class SourceView(_View):
    slug: str
    title: str
    origin: str = Field(description="Where it was imported from (a file path); empty for players")
    section_count: int
    gm_only: bool = Field(default=False, description="GM material: players never see it")
    imported_at: datetime
    kinds: dict[str, int] = Field(default_factory=dict)


class SourceList(BaseModel):
    sources: list[SourceView]
