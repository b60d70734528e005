"""What a viewer can reach: the campaigns and characters behind ``resources/list`` and completions.

An MCP client shows a menu of concrete resources to attach and completes ids as the user types;
both must list only what the asking viewer may open. The bridge asks on behalf of one seat at
one table, so a viewer with a campaign reaches that campaign alone (a player sees every
character sheet of their table, redacted on read); the local GM (a stdio client, no
``_meta``) reaches every campaign that is not archived; a viewer without a campaign who is not
the local GM reaches nothing (the bridge's shared catalog asks this way, and must learn no
campaign's name).

Pure queries over the content store; no MCP types, so the same answers serve listing and
completion.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ttrpg_mcp.server.secrecy import GM, Viewer
from ttrpg_mcp.server.store.models import Campaign, Character, PlaySession

__all__ = [
    "MAX_ENTRIES",
    "CampaignEntry",
    "CharacterEntry",
    "SessionEntry",
    "campaigns_for",
    "characters_for",
    "matches",
    "sessions_for",
]

# A menu longer than this helps nobody; completion narrows it by prefix long before.
MAX_ENTRIES = 500


@dataclass(frozen=True)
class CampaignEntry:
    """A campaign as a menu shows it."""

    id: str
    name: str
    system: str
    setting: str


@dataclass(frozen=True)
class CharacterEntry:
    """A character as a menu shows it."""

    id: str
    name: str
    campaign_id: str
    campaign_name: str
    character_class: str
    level: int
    player_name: str


@dataclass(frozen=True)
class SessionEntry:
    """A play session as a menu shows it."""

    id: str
    number: int
    title: str


def _campaign_ids(viewer: Viewer) -> list[str] | None:
    """The campaigns ``viewer`` reaches: a list, or ``None`` for every live campaign."""
    if viewer.campaign_id is not None:
        return [viewer.campaign_id]
    if viewer.role == GM and viewer.user_id is None:  # the local GM
        return None
    return []


def campaigns_for(db: Session, viewer: Viewer) -> list[CampaignEntry]:
    """The campaigns ``viewer`` reaches, most recently changed first."""
    ids = _campaign_ids(viewer)
    query = select(Campaign).order_by(Campaign.updated_at.desc()).limit(MAX_ENTRIES)
    live = Campaign.archived.is_(False)
    query = query.where(live if ids is None else Campaign.id.in_(ids))
    return [CampaignEntry(c.id, c.name, c.system, c.setting) for c in db.scalars(query)]


def characters_for(db: Session, viewer: Viewer, campaign_id: str | None = None) -> list[CharacterEntry]:
    """The characters of the campaigns ``viewer`` reaches (of ``campaign_id`` alone, when given)."""
    campaigns = {c.id: c.name for c in campaigns_for(db, viewer)}
    if campaign_id is not None:
        campaigns = {key: name for key, name in campaigns.items() if key == campaign_id}
    if not campaigns:
        return []
    query = (
        select(Character)
        .where(Character.campaign_id.in_(list(campaigns)))
        .order_by(Character.name)
        .limit(MAX_ENTRIES)
    )
    return [
        CharacterEntry(
            c.id, c.name, c.campaign_id, campaigns[c.campaign_id], c.character_class, c.level, c.player_name
        )
        for c in db.scalars(query)
    ]


def sessions_for(db: Session, viewer: Viewer, campaign_id: str | None) -> list[SessionEntry]:
    """The play sessions of ``campaign_id`` (newest first), if ``viewer`` reaches it."""
    if campaign_id is None or campaign_id not in {c.id for c in campaigns_for(db, viewer)}:
        return []
    query = (
        select(PlaySession)
        .where(PlaySession.campaign_id == campaign_id)
        .order_by(PlaySession.number.desc())
        .limit(MAX_ENTRIES)
    )
    return [SessionEntry(s.id, s.number, s.title) for s in db.scalars(query)]


def matches(prefix: str, *labels: str) -> bool:
    """Whether ``prefix`` starts any label or any word of one, ignoring case (empty: all match)."""
    needle = prefix.strip().casefold()
    if not needle:
        return True
    for label in labels:
        folded = label.casefold()
        if folded.startswith(needle) or any(word.startswith(needle) for word in folded.split()):
            return True
    return False
