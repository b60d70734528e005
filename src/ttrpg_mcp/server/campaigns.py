"""Campaigns and their version history.

Every save keeps the campaign as it was in ``campaign_versions`` and bumps ``version``, so
a bad edit (by a player, a GM or an AI assistant) is one ``rollback_campaign`` away. A
rollback is itself a save: it can be undone the same way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ttrpg_mcp.server.errors import ConflictError, InvalidInputError, NotFoundError
from ttrpg_mcp.server.ids import new_id
from ttrpg_mcp.server.store.models import (
    Campaign,
    CampaignVersion,
    Character,
    Item,
    Location,
    Note,
    Npc,
    PlaySession,
)
from ttrpg_mcp.server.views import CampaignList, CampaignSummary, CampaignVersionView, CampaignView

__all__ = [
    "EDITABLE_FIELDS",
    "create_campaign",
    "get_campaign",
    "list_campaigns",
    "load_campaign",
    "rollback_campaign",
    "save_campaign",
]

# The fields a save may change, and the ones a snapshot keeps and a rollback restores.
EDITABLE_FIELDS = ("name", "system", "setting", "description", "house_rules", "world_state", "archived")
_MAX_VERSIONS_SHOWN = 20


def _require_text(value: str, field: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidInputError(f"{field} must not be empty")
    return value


def load_campaign(db: Session, campaign_id: str) -> Campaign:
    """The campaign row, or a NotFoundError that names the id."""
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFoundError(f"no campaign with id {campaign_id!r} (list_campaigns shows the ids)")
    return campaign


def _snapshot(campaign: Campaign) -> dict[str, Any]:
    return {field: getattr(campaign, field) for field in EDITABLE_FIELDS}


def _view(db: Session, campaign: Campaign, *, with_versions: bool = False) -> CampaignView:
    counts = {}
    for label, model in (
        ("characters", Character),
        ("npcs", Npc),
        ("locations", Location),
        ("items", Item),
        ("notes", Note),
        ("sessions", PlaySession),
    ):
        counts[label] = db.scalar(select(func.count()).where(model.campaign_id == campaign.id)) or 0
    view = CampaignView.model_validate(campaign)
    view.counts = counts
    if with_versions:
        rows = db.scalars(
            select(CampaignVersion)
            .where(CampaignVersion.campaign_id == campaign.id)
            .order_by(CampaignVersion.version.desc())
            .limit(_MAX_VERSIONS_SHOWN)
        )
        view.versions = [CampaignVersionView.model_validate(row) for row in rows]
    return view


def create_campaign(
    db: Session,
    *,
    name: str,
    system: str = "",
    setting: str = "",
    description: str = "",
    house_rules: list[str] | None = None,
    world_state: dict[str, Any] | None = None,
) -> CampaignView:
    campaign = Campaign(
        id=new_id("campaign"),
        name=_require_text(name, "name"),
        system=system.strip(),
        setting=setting.strip(),
        description=description,
        house_rules=list(house_rules or []),
        world_state=dict(world_state or {}),
        archived=False,
        version=1,
    )
    db.add(campaign)
    db.flush()
    return _view(db, campaign)


def get_campaign(db: Session, campaign_id: str, *, with_versions: bool = True) -> CampaignView:
    return _view(db, load_campaign(db, campaign_id), with_versions=with_versions)


def list_campaigns(db: Session, *, include_archived: bool = False) -> CampaignList:
    query = select(Campaign).order_by(Campaign.updated_at.desc())
    if not include_archived:
        query = query.where(Campaign.archived.is_(False))
    return CampaignList(campaigns=[CampaignSummary.model_validate(c) for c in db.scalars(query)])


def _record_version(db: Session, campaign: Campaign, reason: str) -> None:
    db.add(
        CampaignVersion(
            campaign_id=campaign.id, version=campaign.version, snapshot=_snapshot(campaign), reason=reason
        )
    )


def save_campaign(
    db: Session,
    campaign_id: str,
    changes: dict[str, Any],
    *,
    expected_version: int | None = None,
    reason: str = "",
) -> CampaignView:
    """Apply ``changes``; ``world_state`` merges key by key and a ``None`` value removes a key."""
    campaign = load_campaign(db, campaign_id)
    if expected_version is not None and expected_version != campaign.version:
        raise ConflictError(
            f"campaign {campaign_id!r} is at version {campaign.version}, not {expected_version}: "
            "read it again and reapply the change"
        )
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInputError(f"cannot change {sorted(unknown)}; editable fields: {list(EDITABLE_FIELDS)}")
    if not changes:
        raise InvalidInputError("nothing to change: pass at least one field")
    _record_version(db, campaign, reason or "save")
    for field, given in changes.items():
        value = given
        if field == "name":
            value = _require_text(given, "name")
        if field == "world_state":
            merged = dict(campaign.world_state)
            for key, item in given.items():
                if item is None:
                    merged.pop(key, None)
                else:
                    merged[key] = item
            value = merged
        setattr(campaign, field, value)
    campaign.version += 1
    db.flush()
    return _view(db, campaign, with_versions=True)


def rollback_campaign(db: Session, campaign_id: str, version: int) -> CampaignView:
    """Restore the content the campaign had at ``version``, as a new version."""
    campaign = load_campaign(db, campaign_id)
    if version == campaign.version:
        raise InvalidInputError(f"campaign {campaign_id!r} is already at version {version}")
    saved = db.scalar(
        select(CampaignVersion).where(
            CampaignVersion.campaign_id == campaign_id, CampaignVersion.version == version
        )
    )
    if saved is None:
        known = db.scalars(
            select(CampaignVersion.version).where(CampaignVersion.campaign_id == campaign_id)
        ).all()
        raise NotFoundError(
            f"campaign {campaign_id!r} has no version {version}; known versions: {sorted(known)}"
        )
    _record_version(db, campaign, f"before rollback to version {version}")
    for field in EDITABLE_FIELDS:
        if field in saved.snapshot:
            setattr(campaign, field, saved.snapshot[field])
    campaign.version += 1
    db.flush()
    return _view(db, campaign, with_versions=True)
