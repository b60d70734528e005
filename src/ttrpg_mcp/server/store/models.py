"""The content store's tables: campaigns and everything in them, plus the rules index.

One source of truth for campaign content (ARCHITECTURE decision 5): the bridge changes a
campaign only through the MCP tools, which write here. Free-form structure (ability scores,
conditions, inventory, world state) lives in JSON columns so that game systems other than
the one a field was named for still fit without a migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "Campaign",
    "CampaignVersion",
    "Character",
    "ContentChange",
    "Item",
    "Location",
    "Note",
    "Npc",
    "PlaySession",
    "RollLogEntry",
    "RuleSection",
    "RuleSource",
    "utcnow",
]


def utcnow() -> datetime:
    """Timestamps are stored in UTC; callers render them as ISO 8601."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base; one metadata for the Alembic migrations to compare against."""

    # SQLAlchemy reads this mapping from the class itself; it is never mutated.
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}  # noqa: RUF012


class _Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Campaign(_Timestamps, Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    system: Mapped[str] = mapped_column(String(100), default="")
    setting: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    house_rules: Mapped[list[Any]] = mapped_column(default=list)
    world_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # world_state keys only the GM sees (see server.secrecy).
    secret_keys: Mapped[list[Any]] = mapped_column(default=list)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped by every save; the previous content is kept in CampaignVersion.
    version: Mapped[int] = mapped_column(Integer, default=1)


class CampaignVersion(Base):
    """A campaign as it was before one save: what ``rollback_campaign`` restores."""

    __tablename__ = "campaign_versions"
    __table_args__ = (UniqueConstraint("campaign_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict[str, Any]] = mapped_column()
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Character(_Timestamps, Base):
    __tablename__ = "characters"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The bridge user who plays this character; empty for GM-run characters.
    owner: Mapped[str] = mapped_column(String(100), default="", index=True)
    player_name: Mapped[str] = mapped_column(String(200), default="")
    character_class: Mapped[str] = mapped_column(String(100), default="")
    level: Mapped[int] = mapped_column(Integer, default=1)
    race: Mapped[str] = mapped_column(String(100), default="")
    abilities: Mapped[dict[str, Any]] = mapped_column(default=dict)
    hp_current: Mapped[int] = mapped_column(Integer, default=10)
    hp_max: Mapped[int] = mapped_column(Integer, default=10)
    hp_temp: Mapped[int] = mapped_column(Integer, default=0)
    armor_class: Mapped[int] = mapped_column(Integer, default=10)
    conditions: Mapped[list[Any]] = mapped_column(default=list)
    inventory: Mapped[list[Any]] = mapped_column(default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    # The GM's notes about the character: never shown to players, its owner included.
    gm_notes: Mapped[str] = mapped_column(Text, default="")


class Npc(_Timestamps, Base):
    __tablename__ = "npcs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(200), default="")
    location: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    traits: Mapped[list[Any]] = mapped_column(default=list)
    motivations: Mapped[list[Any]] = mapped_column(default=list)
    relationships: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notes: Mapped[str] = mapped_column(Text, default="")
    # GM-only, like ``notes`` (the GM's notes about the NPC).
    secrets: Mapped[list[Any]] = mapped_column(default=list)


class Location(_Timestamps, Base):
    __tablename__ = "locations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")


class Item(_Timestamps, Base):
    __tablename__ = "items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A character id, an NPC id, a location id, or empty for "the party's loot".
    holder: Mapped[str] = mapped_column(String(32), default="", index=True)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    # What only the GM knows of it (a curse, a true name).
    gm_notes: Mapped[str] = mapped_column(Text, default="")


class PlaySession(Base):
    """One evening at the table: its number, its notes, and its combat tracker."""

    __tablename__ = "play_sessions"
    __table_args__ = (UniqueConstraint("campaign_id", "number"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200), default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    summary: Mapped[str] = mapped_column(Text, default="")
    initiative: Mapped[list[Any]] = mapped_column(default=list)
    active_turn: Mapped[int] = mapped_column(Integer, default=0)
    round_number: Mapped[int] = mapped_column(Integer, default=0)


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("play_sessions.id", ondelete="SET NULL"), default=None, index=True
    )
    title: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    # "gm", "players" or one player's user id (see server.secrecy).
    visibility: Mapped[str] = mapped_column(String(100), default="gm")
    # The bridge user who wrote it; empty for the local GM.
    author: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RuleSource(Base):
    """One imported document collection (a book, the starter compendium, a folder of notes)."""

    __tablename__ = "rule_sources"

    slug: Mapped[str] = mapped_column(String(80), primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    origin: Mapped[str] = mapped_column(Text, default="")
    # A fingerprint of what was imported, so that an unchanged bundled compendium is not re-indexed.
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    section_count: Mapped[int] = mapped_column(Integer, default=0)
    # An adventure module or other GM material: hidden from players' searches and reads.
    gm_only: Mapped[bool] = mapped_column(Boolean, default=False)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)


class RuleSection(Base):
    """A searchable section; its text is mirrored into the ``rule_sections_fts`` FTS5 table by triggers."""

    __tablename__ = "rule_sections"
    __table_args__ = (
        UniqueConstraint("source", "slug"),
        Index("ix_rule_sections_kind", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(ForeignKey("rule_sources.slug", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    path: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text)


class ContentChange(Base):
    """One write to campaign content, recorded in the write's own transaction: the change feed.

    ``id`` is monotonic (SQLite's rowid under the write lock), so a follower that remembers the
    last id it handled reads exactly the changes after it. No foreign key: the log outlives
    what it describes, and a follower must still learn that something was deleted.
    """

    __tablename__ = "content_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(String(32), index=True)
    # campaign, character, npc, location, item, note, play_session or roll.
    entity_kind: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[str] = mapped_column(String(32), index=True)
    # The entity's version after this change (a campaign's own version; a count for the others).
    version: Mapped[int] = mapped_column(Integer, default=1)
    operation: Mapped[str] = mapped_column(String(10))  # created, updated or deleted
    # Who made it: a bridge user id from the request's _meta, else "local" (a stdio client).
    actor: Mapped[str] = mapped_column(String(100), default="local")
    actor_role: Mapped[str] = mapped_column(String(20), default="gm")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RollLogEntry(Base):
    """A roll made with the ``roll_dice`` tool for a campaign: what the table's dice log shows."""

    __tablename__ = "roll_log"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    expression: Mapped[str] = mapped_column(String(500))
    purpose: Mapped[str] = mapped_column(String(200), default="")
    # public, gm, blind or self, as at the table.
    visibility: Mapped[str] = mapped_column(String(10), default="public")
    result: Mapped[dict[str, Any]] = mapped_column()
    actor: Mapped[str] = mapped_column(String(100), default="local")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
