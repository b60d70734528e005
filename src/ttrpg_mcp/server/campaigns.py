"""Campaigns and their version history.

Every save keeps the campaign as it was in ``campaign_versions`` and bumps ``version``, so
a bad edit (by a player, a GM or an AI assistant) is one ``rollback_campaign`` away. A
rollback is itself a save: it can be undone the same way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from ttrpg_mcp.server.errors import ConflictError, InvalidInputError, NotFoundError
from ttrpg_mcp.server.ids import new_id
from ttrpg_mcp.server.secrecy import LOCAL_GM, Viewer, redact_campaign
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
EDITABLE_FIELDS = (
    "name",
    "system",
    "setting",
    "description",
    "house_rules",
    "world_state",
    "secret_keys",
    "archived",
)
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


def _notes_seen_by(viewer: Viewer, campaign_id: str) -> ColumnElement[bool]:
    """The SQL twin of ``secrecy.can_read_note``, for counting without loading every note."""
    if viewer.is_gm_of(campaign_id):
        return Note.campaign_id == campaign_id
    readable = [Note.visibility == "players"]
    if viewer.user_id:
        readable += [Note.visibility == viewer.user_id, Note.author == viewer.user_id]
    return (Note.campaign_id == campaign_id) & or_(*readable)


def _view(
    db: Session, campaign: Campaign, *, with_versions: bool = False, viewer: Viewer = LOCAL_GM
) -> CampaignView:
    counts = {}
    for label, model in (
        ("characters", Character),
        ("npcs", Npc),
        ("locations", Location),
        ("items", Item),
        ("notes", Note),
        ("sessions", PlaySession),
    ):
        where = _notes_seen_by(viewer, campaign.id) if model is Note else model.campaign_id == campaign.id
        counts[label] = db.scalar(select(func.count()).where(where)) or 0
    view = CampaignView.model_validate(redact_campaign(_fields(campaign), viewer))
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


def _fields(campaign: Campaign) -> dict[str, Any]:
    return {column: getattr(campaign, column) for column in Campaign.__table__.columns.keys()}  # noqa: SIM118  # a ColumnCollection, not a dict


def create_campaign(
    db: Session,
    *,
    name: str,
    system: str = "",
    setting: str = "",
    description: str = "",
    house_rules: list[str] | None = None,
    world_state: dict[str, Any] | None = None,
    secret_keys: list[str] | None = None,
) -> CampaignView:
    campaign = Campaign(
        id=new_id("campaign"),
        name=_require_text(name, "name"),
        system=system.strip(),
        setting=setting.strip(),
        description=description,
        house_rules=list(house_rules or []),
        world_state=dict(world_state or {}),
        secret_keys=_secret_keys(secret_keys or []),
        archived=False,
        version=1,
    )
    db.add(campaign)
    db.flush()
    return _view(db, campaign)


def _secret_keys(keys: list[Any]) -> list[str]:
    cleaned: list[str] = []
    for key in keys:
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"secret_keys lists world_state keys (strings), not {key!r}")
        if key not in cleaned:
            cleaned.append(key)
    return cleaned


def get_campaign(
    db: Session, campaign_id: str, *, with_versions: bool = True, viewer: Viewer = LOCAL_GM
) -> CampaignView:
    """The campaign as ``viewer`` may see it (secret world-state keys only for its GM)."""
    return _view(db, load_campaign(db, campaign_id), with_versions=with_versions, viewer=viewer)


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
    viewer: Viewer = LOCAL_GM,
) -> CampaignView:
    """Apply ``changes``; ``world_state`` merges key by key and a ``None`` value removes a key.

    Only the campaign's GM may change ``secret_keys`` or a secret world-state key: anyone else
    could otherwise learn a secret exists, or overwrite it, by writing to it.
    """
    campaign = load_campaign(db, campaign_id)
    if not viewer.is_gm_of(campaign_id):
        touched = set(changes.get("world_state") or ()) & set(campaign.secret_keys)
        if "secret_keys" in changes or touched:
            raise InvalidInputError(
                "only the campaign's GM may change secret_keys or a secret world_state key"
            )
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
        if field == "secret_keys":
            value = _secret_keys(given)
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
    return _view(db, campaign, with_versions=True, viewer=viewer)


def rollback_campaign(
    db: Session, campaign_id: str, version: int, *, viewer: Viewer = LOCAL_GM
) -> CampaignView:
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
    if not viewer.is_gm_of(campaign_id) and (campaign.secret_keys or saved.snapshot.get("secret_keys")):
        # A rollback rewrites world_state and secret_keys whole: it could reveal a secret.
        raise InvalidInputError(
            "only the campaign's GM may roll back a campaign with secret world_state keys"
        )
    _record_version(db, campaign, f"before rollback to version {version}")
    for field in EDITABLE_FIELDS:
        if field in saved.snapshot:
            setattr(campaign, field, saved.snapshot[field])
    campaign.version += 1
    db.flush()
    return _view(db, campaign, with_versions=True, viewer=viewer)
