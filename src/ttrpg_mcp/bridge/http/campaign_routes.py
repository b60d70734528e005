"""The campaign API under ``/api/campaigns``: create, list, show, invite, join, change roles, remove,
and, for the bridge's administrator, list and claim the campaigns nobody here is a member of.

Campaign content has one source of truth, the MCP server's store (ARCHITECTURE decision 5), so
creating a campaign is two steps: the MCP server's ``create_campaign`` tool makes it (through
the bridge's MCP pool, as ``app.state.bridge.pool``, in an MCP session of the request's own that
is released when it ends), then the bridge records it under the id the tool returned, with the
caller as its GM. If the tool refuses, nothing is recorded; if the
bridge's record then fails, the MCP campaign stays behind unlisted, which is harmless.

Every route needs an access token (``Authorization: Bearer``), checked by :func:`current_user`.
Each route's permission check and its change run in one unit of work, so a role cannot change
between the check and the write. Membership changes are then announced to the live table through
``app.state.bridge.on_membership_changed(campaign_id, user_id, role_or_None)`` when the bridge
has that hook, so that a removed member's connections leave and a new role applies at once.

Errors are :class:`~ttrpg_mcp.bridge.errors.BridgeError`\\ s, answered with the HTTP API's one
error body by the handler in :mod:`ttrpg_mcp.bridge.http.auth_routes`.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import anyio
import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge import audit, campaigns, claims, revocations
from ttrpg_mcp.bridge.auth import agent_grants, api_keys
from ttrpg_mcp.bridge.auth.service import AuthenticatedUser
from ttrpg_mcp.bridge.campaigns import CampaignSummary, InviteView, MemberView
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.http.auth_routes import error_responses, get_auth
from ttrpg_mcp.bridge.permissions import Action, Role, require
from ttrpg_mcp.bridge.store import BridgeStore
from ttrpg_mcp.bridge.tool_errors import tool_error
from ttrpg_mcp.server.secrecy import Viewer

__all__ = [
    "CampaignDetail",
    "CampaignList",
    "CreateCampaignRequest",
    "CreateInviteRequest",
    "JoinRequest",
    "RoleChange",
    "UnclaimedList",
    "current_user",
    "router",
]

log = structlog.get_logger("ttrpg_mcp.bridge.http")

_AUTH_ERRORS = ("unauthenticated", "invalid_token", "token_expired")
_MCP_ERRORS = (
    "tool_error",
    "mcp_error",
    "mcp_timeout",
    "mcp_child_crashed",
    "mcp_unavailable",
    "shutting_down",
)

MembershipHook = Callable[[str, str, Role | None], Awaitable[None]]


class CreateCampaignRequest(BaseModel):
    """A new campaign; the fields go to the MCP server's ``create_campaign`` tool."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    system: str = Field(default="", max_length=100, description="Game system, e.g. 'D&D 5e'.")
    setting: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=10_000)


class CampaignDetail(BaseModel):
    """A campaign with the caller's role in it and its members."""

    id: str
    name: str
    role: Role
    archived: bool
    created_at: datetime
    created_by: str | None
    member_count: int
    members: list[MemberView]


class CampaignList(BaseModel):
    """The caller's campaigns, newest first."""

    campaigns: list[CampaignSummary]


class CreateInviteRequest(BaseModel):
    """An invite code that seats ``uses`` people with ``role`` for ``expires_in_seconds``."""

    model_config = ConfigDict(extra="forbid")

    role: Role = "player"
    uses: int = Field(default=1, ge=1, le=campaigns.MAX_INVITE_USES)
    expires_in_seconds: int = Field(
        default=campaigns.DEFAULT_INVITE_TTL_SECONDS,
        ge=campaigns.MIN_INVITE_TTL_SECONDS,
        le=campaigns.MAX_INVITE_TTL_SECONDS,
    )


class JoinRequest(BaseModel):
    """Join a campaign with an invite code."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64)


class RoleChange(BaseModel):
    """A member's new role."""

    model_config = ConfigDict(extra="forbid")

    role: Role


class UnclaimedList(BaseModel):
    """Campaigns of the content store (made over stdio, say) that have no member on this bridge."""

    campaigns: list[claims.UnclaimedCampaign]


_access_bearer = HTTPBearer(
    scheme_name="accessToken",
    description="An access token from login, register or refresh.",
    auto_error=False,
)


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_access_bearer)],
) -> AuthenticatedUser:
    """The user of the request's access token; ``unauthenticated``, ``invalid_token`` or ``token_expired``."""
    if credentials is None:
        raise BridgeError("unauthenticated", "send the access token as 'Authorization: Bearer <token>'")
    return await get_auth(request).verify_access(credentials.credentials)


def _store(request: Request) -> BridgeStore:
    return get_auth(request).store


async def _announce(request: Request, campaign_id: str, user_id: str, role: Role | None) -> None:
    bridge = getattr(request.app.state, "bridge", None)
    hook: MembershipHook | None = getattr(bridge, "on_membership_changed", None)
    if hook is not None:
        await hook(campaign_id, user_id, role)


def _role(db: Session, campaign_id: str, user: AuthenticatedUser) -> Role:
    """The caller's role in the campaign, narrowed by the API key they came with, if any."""
    return api_keys.scoped_role(
        user.scope, campaign_id, campaigns.require_role(db, campaign_id, user.user_id)
    )


def _audit(
    db: Session,
    campaign_id: str,
    user: AuthenticatedUser,
    action: str,
    target: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record a campaign's HTTP action in the same unit of work as the change."""
    audit.record(
        db,
        campaign_id=campaign_id,
        user_id=user.user_id,
        action=action,
        target=target,
        result="ok",
        detail=detail,
    )


def _unscoped(user: AuthenticatedUser, doing: str) -> None:
    """Refuse ``doing`` to a key limited to one campaign: it may not reach beyond it."""
    if user.scope is not None and user.scope.campaign_id is not None:
        raise BridgeError("forbidden", f"an API key limited to one campaign may not {doing}")


def _detail(
    db: Session, campaign_id: str, user_id: str, user: AuthenticatedUser | None = None
) -> CampaignDetail:
    role = campaigns.require_role(db, campaign_id, user_id) if user is None else _role(db, campaign_id, user)
    record = campaigns.get_campaign(db, campaign_id)
    members = campaigns.members(db, campaign_id)
    return CampaignDetail(
        id=record.id,
        name=record.name,
        role=role,
        archived=record.archived,
        created_at=record.created_at,
        created_by=record.created_by,
        member_count=len(members),
        members=members,
    )


async def _content_tool(
    request: Request, user: AuthenticatedUser, name: str, arguments: dict[str, Any], viewer: Viewer
) -> dict[str, Any]:
    """One MCP tool call in an MCP session of the request's own, released when it ends."""
    pool = request.app.state.bridge.pool
    session_id = f"http:{user.user_id}:{secrets.token_hex(4)}"
    try:
        result: dict[str, Any] = await pool.request(
            "tools/call", {"name": name, "arguments": arguments}, session_id=session_id, viewer=viewer
        )
    finally:
        with anyio.CancelScope(shield=True):
            await pool.release_session(session_id)
    return result


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])


@router.post(
    "",
    status_code=201,
    summary="Create a campaign (in the MCP server too); the caller becomes its GM.",
    responses=error_responses(*_AUTH_ERRORS, "invalid_message", "conflict", *_MCP_ERRORS),
)
async def create_campaign(body: CreateCampaignRequest, user: CurrentUser, request: Request) -> CampaignDetail:
    _unscoped(user, "create campaigns")
    pool = request.app.state.bridge.pool
    # One MCP session per HTTP request, released when it ends: in isolation mode the request
    # leases a child, which must not outlive it (nor be stopped under a concurrent request).
    session_id = f"http:{user.user_id}:{secrets.token_hex(4)}"
    try:
        result: dict[str, Any] = await pool.request(
            "tools/call",
            {"name": "create_campaign", "arguments": body.model_dump()},
            session_id=session_id,
            timeout=None,
            # The creator becomes the new campaign's GM.
            viewer=Viewer("gm", user.user_id),
        )
    finally:
        with anyio.CancelScope(shield=True):
            await pool.release_session(session_id)
    if result.get("isError"):
        raise tool_error("create_campaign", result)
    created = result.get("structuredContent") or {}
    campaign_id, name = created.get("id"), created.get("name", body.name)
    if not isinstance(campaign_id, str) or not isinstance(name, str):
        raise BridgeError("mcp_error", "create_campaign answered without a campaign id", {"result": created})

    def record(db: Session) -> CampaignDetail:
        campaigns.create_campaign(db, campaign_id, name, user.user_id)
        _audit(db, campaign_id, user, "campaign_created", campaign_id)
        return _detail(db, campaign_id, user.user_id)

    detail = await _store(request).run(record)
    log.info("campaign_created", campaign_id=campaign_id, user_id=user.user_id)
    return detail


@router.get(
    "",
    summary="The caller's campaigns, each with the caller's role.",
    responses=error_responses(*_AUTH_ERRORS),
)
async def list_campaigns(user: CurrentUser, request: Request) -> CampaignList:
    listed = await _store(request).run(
        lambda db: campaigns.list_campaigns_for(db, user.user_id), readonly=True
    )
    if user.scope is not None and user.scope.campaign_id is not None:
        listed = [summary for summary in listed if summary.id == user.scope.campaign_id]
    # A bridge serving HTTP alone (no live table) has nobody online.
    rooms = getattr(request.app.state.bridge, "rooms", None)
    systems = await _systems(request, user) if listed else {}
    return CampaignList(
        campaigns=[
            summary.model_copy(
                update={
                    "system": systems.get(summary.id, ""),
                    "online": 0 if rooms is None else len(await rooms.everyone(summary.id)),
                }
            )
            for summary in listed
        ]
    )


async def _systems(request: Request, user: AuthenticatedUser) -> dict[str, str]:
    """Each campaign's game system, from the content store; none when the MCP server cannot answer.

    The lobby stays usable while the MCP children restart: the system is a nicety, not a reason
    to refuse the list.
    """
    try:
        result = await _content_tool(
            request, user, "list_campaigns", {"include_archived": True}, Viewer("spectator", user.user_id)
        )
    except BridgeError as error:
        log.info("campaign_systems_unavailable", code=error.code)
        return {}
    listed = (result.get("structuredContent") or {}).get("campaigns") or []
    return {
        str(entry["id"]): str(entry.get("system") or "")
        for entry in listed
        if isinstance(entry, dict) and "id" in entry
    }


@router.post(
    "/join",
    summary="Join a campaign with an invite code; a member keeps the role they have.",
    responses=error_responses(*_AUTH_ERRORS, "invalid_message", "not_found", "forbidden", "conflict"),
)
async def join_campaign(body: JoinRequest, user: CurrentUser, request: Request) -> CampaignSummary:
    _unscoped(user, "join campaigns")

    def join(db: Session) -> tuple[CampaignSummary, Role]:
        summary, role = campaigns.join_with_code(db, body.code, user.user_id)
        _audit(db, summary.id, user, "invite_used", user.user_id, {"role": role})
        return summary, role

    summary, role = await _store(request).run(join)
    log.info("campaign_joined", campaign_id=summary.id, user_id=user.user_id, role=role)
    await _announce(request, summary.id, user.user_id, role)
    return summary


@router.get(
    "/unclaimed",
    summary="Campaigns of the content store with no member on this bridge (administrator only).",
    responses=error_responses(*_AUTH_ERRORS, "forbidden", *_MCP_ERRORS),
)
async def list_unclaimed(user: CurrentUser, request: Request) -> UnclaimedList:
    _unscoped(user, "list other campaigns")
    store = _store(request)
    await store.run(lambda db: claims.require_admin(db, user.user_id), readonly=True)
    result = await _content_tool(
        request, user, "list_campaigns", {"include_archived": True}, Viewer("gm", user.user_id)
    )
    if result.get("isError"):
        raise tool_error("list_campaigns", result)
    listed = (result.get("structuredContent") or {}).get("campaigns") or []
    found = await store.run(lambda db: claims.unclaimed_campaigns(db, listed), readonly=True)
    return UnclaimedList(campaigns=found)


@router.post(
    "/{campaign_id}/claim",
    summary="Become the GM of a content-store campaign nobody here is a member of (administrator only).",
    responses=error_responses(*_AUTH_ERRORS, "forbidden", "not_found", "conflict", *_MCP_ERRORS),
)
async def claim_campaign(campaign_id: str, user: CurrentUser, request: Request) -> CampaignDetail:
    _unscoped(user, "claim campaigns")
    store = _store(request)
    await store.run(lambda db: claims.require_admin(db, user.user_id), readonly=True)
    viewer = Viewer("gm", user.user_id, campaign_id)
    result = await _content_tool(request, user, "get_campaign", {"campaign_id": campaign_id}, viewer)
    content = result.get("structuredContent") or {}
    if result.get("isError") or content.get("id") != campaign_id:
        raise BridgeError(
            "not_found", f"no campaign {campaign_id!r} in the content store", {"campaign_id": campaign_id}
        )

    def record(db: Session) -> CampaignDetail:
        claims.require_admin(db, user.user_id)
        claims.claim_campaign(db, campaign_id, str(content.get("name") or campaign_id), user.user_id)
        _audit(db, campaign_id, user, "campaign_claimed", campaign_id)
        return _detail(db, campaign_id, user.user_id)

    detail = await store.run(record)
    log.info("campaign_claimed", campaign_id=campaign_id, user_id=user.user_id)
    await _announce(request, campaign_id, user.user_id, "gm")
    return detail


@router.get(
    "/{campaign_id}",
    summary="A campaign and its members (members only).",
    responses=error_responses(*_AUTH_ERRORS, "forbidden"),
)
async def get_campaign(campaign_id: str, user: CurrentUser, request: Request) -> CampaignDetail:
    return await _store(request).run(lambda db: _detail(db, campaign_id, user.user_id, user), readonly=True)


@router.post(
    "/{campaign_id}/invites",
    status_code=201,
    summary="Create an invite code with a role, a number of uses and an expiry (GM only).",
    responses=error_responses(*_AUTH_ERRORS, "invalid_message", "forbidden"),
)
async def create_invite(
    campaign_id: str, body: CreateInviteRequest, user: CurrentUser, request: Request
) -> InviteView:
    def invite(db: Session) -> InviteView:
        require(_role(db, campaign_id, user), Action.MANAGE_MEMBERS, "invite people")
        _audit(db, campaign_id, user, "invite_created", None, {"role": body.role, "uses": body.uses})
        return campaigns.create_invite(
            db, campaign_id, body.role, user.user_id, uses=body.uses, ttl_seconds=body.expires_in_seconds
        )

    created = await _store(request).run(invite)
    log.info("campaign_invite_created", campaign_id=campaign_id, user_id=user.user_id, role=body.role)
    return created


@router.patch(
    "/{campaign_id}/members/{user_id}",
    summary="Change a member's role (GM only); a campaign always keeps a GM.",
    responses=error_responses(*_AUTH_ERRORS, "invalid_message", "forbidden", "not_found", "conflict"),
)
async def change_role(
    campaign_id: str, user_id: str, body: RoleChange, user: CurrentUser, request: Request
) -> MemberView:
    def change(db: Session) -> MemberView:
        require(_role(db, campaign_id, user), Action.MANAGE_MEMBERS, "change roles")
        member = campaigns.set_role(db, campaign_id, user_id, body.role)
        _audit(db, campaign_id, user, "role_changed", user_id, {"role": body.role})
        return member

    member = await _store(request).run(change)
    log.info(
        "campaign_role_changed", campaign_id=campaign_id, user_id=user_id, role=body.role, by=user.user_id
    )
    await _announce(request, campaign_id, user_id, body.role)
    return member


@router.delete(
    "/{campaign_id}/members/{user_id}",
    status_code=204,
    summary="Remove a member (GM only), or leave (anyone, for themself); a campaign always keeps a GM.",
    responses=error_responses(*_AUTH_ERRORS, "forbidden", "not_found", "conflict"),
)
async def remove_member(campaign_id: str, user_id: str, user: CurrentUser, request: Request) -> None:
    def remove(db: Session) -> None:
        role = _role(db, campaign_id, user)
        if user_id != user.user_id:
            require(role, Action.MANAGE_MEMBERS, "remove members")
        campaigns.remove_member(db, campaign_id, user_id)
        _audit(db, campaign_id, user, "member_removed", user_id)

    await _store(request).run(remove)
    log.info("campaign_member_removed", campaign_id=campaign_id, user_id=user_id, by=user.user_id)
    await _announce(request, campaign_id, user_id, None)


@router.delete(
    "/{campaign_id}/agents/{participant_id}",
    status_code=204,
    summary="Take an AI agent from the table now (GM only): its session ends, its key or grant is revoked.",
    responses=error_responses(*_AUTH_ERRORS, "forbidden", "not_found"),
)
async def remove_agent(campaign_id: str, participant_id: str, user: CurrentUser, request: Request) -> None:
    """An agent's key is scoped to this campaign, so revoking it touches no other table.

    The agent may sit on any node: its credentials come from the shared presence, and the
    ledger rows (its keys or grants, its seat) close its sessions wherever they are.
    """
    bridge = request.app.state.bridge
    role = await _store(request).run(lambda db: _role(db, campaign_id, user), readonly=True)
    require(role, Action.MANAGE_MEMBERS, "remove an agent from the table")
    keys = await bridge.agent_credentials(campaign_id, participant_id)
    reason = revocations.AGENT_REMOVED

    def revoke(db: Session) -> None:
        for key_id in keys:
            if agent_grants.is_grant_id(key_id):  # an OAuth agent: its authorization ends
                agent_grants.revoke_grant(db, key_id, by=user.user_id, campaign_id=campaign_id, reason=reason)
            else:
                api_keys.revoke_key(db, None, key_id, reason)
        revocations.record(db, revocations.seat_subject(campaign_id, participant_id), reason)
        _audit(db, campaign_id, user, "agent_removed", participant_id, {"keys": sorted(keys)})

    await _store(request).run(revoke)
    bridge.cut_agent(campaign_id, participant_id, reason)
    for key_id in keys:  # sessions of the same key on this node, at other seats or none yet
        bridge.cut_connections(reason, key_id=key_id)
    log.info("agent_removed", campaign_id=campaign_id, participant_id=participant_id, by=user.user_id)


class AuditPage(BaseModel):
    """A page of a campaign's audit log, newest first."""

    entries: list[dict[str, Any]]


@router.get(
    "/{campaign_id}/audit",
    summary="The campaign's audit log, newest first (GM only).",
    responses=error_responses("unauthenticated", "invalid_token", "token_expired", "forbidden", "not_found"),
)
async def read_audit(
    campaign_id: str,
    user: CurrentUser,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, description="Only entries older than this id.")] = None,
) -> AuditPage:
    def page(db: Session) -> AuditPage:
        require(_role(db, campaign_id, user), Action.MANAGE_MEMBERS, "read the audit log")
        return AuditPage(entries=audit.entries(db, campaign_id, limit=limit, before=before))

    return await _store(request).run(page, readonly=True)
