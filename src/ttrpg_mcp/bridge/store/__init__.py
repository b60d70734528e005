"""The bridge's own store: identity and collaboration, on SQLite by default or PostgreSQL.

Campaign content lives in the MCP server's store (ARCHITECTURE decision 5); this one holds
what only the bridge knows: users and their refresh tokens and registration invites, and for
each campaign its members, invites, shared table state, canvas, dice log and event log.
"""

from __future__ import annotations

from ttrpg_mcp.bridge.store.database import BridgeStore, affected_rows
from ttrpg_mcp.bridge.store.models import (
    ApiKey,
    AuditEntry,
    Base,
    Campaign,
    CampaignEvent,
    CampaignInvite,
    CanvasStroke,
    DiceLogEntry,
    Membership,
    RefreshToken,
    RegistrationInvite,
    RequestReply,
    Revocation,
    SharedStateRow,
    User,
    utcnow,
)

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "BridgeStore",
    "Campaign",
    "CampaignEvent",
    "CampaignInvite",
    "CanvasStroke",
    "DiceLogEntry",
    "Membership",
    "RefreshToken",
    "RegistrationInvite",
    "RequestReply",
    "Revocation",
    "SharedStateRow",
    "User",
    "affected_rows",
    "utcnow",
]
