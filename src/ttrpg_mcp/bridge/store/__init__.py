"""The bridge's own store: identity and collaboration, on SQLite by default or PostgreSQL.

Campaign content lives in the MCP server's store (ARCHITECTURE decision 5); this one holds
what only the bridge knows: users and their refresh tokens and registration invites, and in
later releases memberships, the event log and shared table state.
"""

from __future__ import annotations

from ttrpg_mcp.bridge.store.database import BridgeStore, affected_rows
from ttrpg_mcp.bridge.store.models import Base, RefreshToken, RegistrationInvite, User, utcnow

__all__ = ["Base", "BridgeStore", "RefreshToken", "RegistrationInvite", "User", "affected_rows", "utcnow"]
