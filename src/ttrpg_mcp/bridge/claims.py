"""Campaigns from either door: the administrator claims a campaign the bridge has no members for.

A campaign's content lives in the MCP content store, whoever made it (ARCHITECTURE decision 5);
the bridge's ``campaigns`` table only records who sits at its table, under the same id. A
campaign created over stdio (Claude Desktop on the same data directory) therefore exists in the
content store with nobody at the bridge able to open it. The bridge's administrator (its first
account, or one made with ``ttrpg-bridge user add --admin``) sees such campaigns and claims one
as its GM; from then on it is a campaign like any other, with invites to bring the players in.

Like ``bridge/campaigns.py``, each function takes a unit of work and does no I/O of its own;
the list of the content store's campaigns is fetched by the caller (through the MCP pool, or a
``ttrpg-mcp`` child for the admin command) and passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge import campaigns
from ttrpg_mcp.bridge.campaigns import CampaignRecord
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.store.models import Campaign, Membership, User, utcnow

__all__ = ["UnclaimedCampaign", "claim_campaign", "is_admin", "require_admin", "unclaimed_campaigns"]


class UnclaimedCampaign(BaseModel):
    """A campaign of the content store that nobody on this bridge is a member of."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    system: str = ""
    archived: bool = False


def is_admin(db: Session, user_id: str) -> bool:
    user = db.get(User, user_id)
    return user is not None and user.is_admin and not user.disabled


def require_admin(db: Session, user_id: str) -> None:
    """``forbidden`` unless ``user_id`` is an enabled administrator."""
    if not is_admin(db, user_id):
        raise BridgeError("forbidden", "only the bridge's administrator may do this", {"user_id": user_id})


def _member_counts(db: Session, campaign_ids: list[str]) -> dict[str, int]:
    rows = db.execute(
        select(Membership.campaign_id, func.count())
        .where(Membership.campaign_id.in_(campaign_ids))
        .group_by(Membership.campaign_id)
    )
    return {str(campaign_id): int(count) for campaign_id, count in rows}


def unclaimed_campaigns(db: Session, content: Iterable[Mapping[str, Any]]) -> list[UnclaimedCampaign]:
    """Of the content store's campaigns (``list_campaigns`` entries), those with no member here."""
    listed = [entry for entry in content if isinstance(entry.get("id"), str)]
    counts = _member_counts(db, [entry["id"] for entry in listed])
    return [
        UnclaimedCampaign(
            id=entry["id"],
            name=str(entry.get("name") or entry["id"]),
            system=str(entry.get("system") or ""),
            archived=bool(entry.get("archived", False)),
        )
        for entry in listed
        if counts.get(entry["id"], 0) == 0
    ]


def claim_campaign(db: Session, campaign_id: str, name: str, user_id: str) -> CampaignRecord:
    """Make ``user_id`` the GM of a content-store campaign that has no members on the bridge.

    The caller has checked that the campaign exists in the content store; the bridge's record
    takes the same id. A campaign with members is refused (``conflict``): its GM invites people.
    """
    record = db.get(Campaign, campaign_id)
    if record is None:
        return campaigns.create_campaign(db, campaign_id, name, user_id)
    if _member_counts(db, [campaign_id]).get(campaign_id, 0) > 0:
        raise BridgeError(
            "conflict",
            f"campaign {campaign_id!r} already has members: ask its GM for an invite",
            {"campaign_id": campaign_id},
        )
    if db.get(User, user_id) is None:
        raise BridgeError("not_found", f"no user {user_id!r}", {"user_id": user_id})
    db.add(Membership(campaign_id=campaign_id, user_id=user_id, role="gm", joined_at=utcnow()))
    db.flush()
    return campaigns.get_campaign(db, campaign_id)
