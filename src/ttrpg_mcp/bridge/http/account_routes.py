"""The account API: API keys, a person's data (export, delete) and the administrator's audit log.

* ``POST/GET /api/auth/api-keys`` and ``DELETE /api/auth/api-keys/{id}``: a user's API keys. The
  key itself is in the creation answer only. Revoking one closes, at once, every live
  connection opened with it or with a token issued for it (``Bridge.cut_connections``).
* ``GET /api/me/export``: one JSON document of everything held about or by the caller.
* ``DELETE /api/me`` with the password: the account goes; see ``bridge/accounts.py``.
* ``GET /api/admin/audit``: account events (sign-ins, keys, exports, deletions), administrator only.

Managing keys, exporting and deleting need a person, not a bot: a credential that came from an
API key is refused with ``forbidden``. Every action here is audited (``bridge/http/audit_trail``).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import structlog
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge import accounts, audit, claims, revocations
from ttrpg_mcp.bridge.auth import api_keys
from ttrpg_mcp.bridge.auth.passwords import MAX_PASSWORD_LENGTH
from ttrpg_mcp.bridge.auth.service import AuthenticatedUser
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.http.audit_trail import record_action
from ttrpg_mcp.bridge.http.auth_routes import error_responses, get_auth
from ttrpg_mcp.bridge.http.campaign_routes import CurrentUser
from ttrpg_mcp.bridge.permissions import Role

__all__ = [
    "FRESH_SIGN_IN_SECONDS",
    "AccountDeletion",
    "ApiKeyList",
    "ApiKeyView",
    "CreateApiKeyRequest",
    "CreatedApiKey",
    "DeleteAccountRequest",
    "router",
]

log = structlog.get_logger("ttrpg_mcp.bridge.http")

_AUTH_ERRORS = ("unauthenticated", "invalid_token", "token_expired")
# How recent a sign-in stands in for the password when deleting the account.
FRESH_SIGN_IN_SECONDS = 300
# Ten years: a bound, so an expiry is a date every database and client can hold.
_MAX_KEY_TTL = 10 * 365 * 86400


class CreateApiKeyRequest(BaseModel):
    """A new API key, optionally limited to one campaign and a role."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="API key", min_length=1, max_length=100, description="To tell keys apart.")
    campaign_id: str | None = Field(
        default=None, max_length=64, description="The one campaign it may act in."
    )
    role: Role | None = Field(default=None, description="The highest role it acts with (not above yours).")
    expires_in_seconds: int | None = Field(
        default=None, ge=60, le=_MAX_KEY_TTL, description="Omit for a key that lasts until revoked."
    )


class ApiKeyView(BaseModel):
    """A key as listings show it: never the key, never its hash."""

    id: str
    name: str
    prefix: str = Field(description="The key's first characters, e.g. ttk_AbCd1234.")
    campaign_id: str | None
    role: Role | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class CreatedApiKey(ApiKeyView):
    """A new key: the only answer that ever holds the key itself."""

    key: str = Field(repr=False, description="Send as 'Authorization: Bearer', ?token=, or login apiKey.")


class ApiKeyList(BaseModel):
    """A user's keys, newest first, revoked ones included."""

    keys: list[ApiKeyView]


class DeleteAccountRequest(BaseModel):
    """The password again, or a fresh sign-in: deleting an account cannot be undone."""

    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(
        default=None,
        repr=False,
        max_length=MAX_PASSWORD_LENGTH,
        description=f"Required unless the access token is under {FRESH_SIGN_IN_SECONDS} s old.",
    )


class CampaignOutcomeView(BaseModel):
    """What became of a campaign the deleted account was in."""

    campaign_id: str
    outcome: str = Field(description="'left', 'gm_passed' (to new_gm) or 'archived' (no one was left).")
    new_gm: str | None = None


class AccountDeletion(BaseModel):
    """The answer of a deletion."""

    deleted: bool
    campaigns: list[CampaignOutcomeView]


class AuditPage(BaseModel):
    """A page of account events, newest first."""

    entries: list[dict[str, Any]]


def _person(user: AuthenticatedUser, doing: str) -> None:
    if user.scope is not None:
        raise BridgeError("forbidden", f"an API key may not {doing}; sign in with a password")


def _content_path(request: Request) -> Path | str | None:
    """The content store the bridge's MCP children use by default (beside ``bridge.db``, or shared)."""
    return accounts.content_database_path(request.app.state.bridge.settings.content_store)


router = APIRouter(tags=["accounts"])


@router.post(
    "/api/auth/api-keys",
    status_code=201,
    summary="Create an API key; the key is shown in this answer only.",
    responses=error_responses(*_AUTH_ERRORS, "invalid_message", "forbidden", "limit_reached"),
)
async def create_api_key(
    body: CreateApiKeyRequest, user: CurrentUser, request: Request, response: Response
) -> CreatedApiKey:
    _person(user, "create API keys")
    response.headers["Cache-Control"] = "no-store"

    def create(db: Session) -> CreatedApiKey:
        row, key = api_keys.create_key(
            db,
            user.user_id,
            body.name,
            campaign_id=body.campaign_id,
            role=body.role,
            ttl_seconds=body.expires_in_seconds,
        )
        audit.record(
            db,
            campaign_id=None,
            user_id=user.user_id,
            action="api_key_created",
            target=row.id,
            result="ok",
            detail={"prefix": row.prefix, "campaign_id": row.campaign_id, "role": row.role},
        )
        return CreatedApiKey(key=key, **api_keys.key_view(row))

    created = await get_auth(request).store.run(create)
    log.info("api_key_created", key_id=created.id, user_id=user.user_id)
    return created


@router.get(
    "/api/auth/api-keys",
    summary="The caller's API keys, newest first (never the keys themselves).",
    responses=error_responses(*_AUTH_ERRORS, "forbidden"),
)
async def list_api_keys(user: CurrentUser, request: Request) -> ApiKeyList:
    _person(user, "list API keys")
    rows = await get_auth(request).store.run(
        lambda db: [api_keys.key_view(row) for row in api_keys.list_keys(db, user.user_id)], readonly=True
    )
    return ApiKeyList(keys=[ApiKeyView.model_validate(row) for row in rows])


@router.delete(
    "/api/auth/api-keys/{key_id}",
    status_code=204,
    summary="Revoke an API key: it, and every connection and token it opened, stop working now.",
    responses=error_responses(*_AUTH_ERRORS, "forbidden", "not_found"),
)
async def revoke_api_key(key_id: str, user: CurrentUser, request: Request) -> None:
    _person(user, "revoke API keys")

    def revoke(db: Session) -> None:
        row = api_keys.revoke_key(db, user.user_id, key_id)
        audit.record(
            db,
            campaign_id=None,
            user_id=user.user_id,
            action="api_key_revoked",
            target=row.id,
            result="ok",
            detail={"prefix": row.prefix},
        )

    await get_auth(request).store.run(revoke)
    request.app.state.bridge.cut_connections(revocations.KEY_REVOKED, key_id=key_id)
    log.info("api_key_revoked", key_id=key_id, user_id=user.user_id)


@router.get(
    "/api/me/export",
    summary="Everything the bridge and the content store hold about or by the caller, as one document.",
    responses=error_responses(*_AUTH_ERRORS, "forbidden"),
)
async def export_me(user: CurrentUser, request: Request, response: Response) -> dict[str, Any]:
    _person(user, "export an account")
    response.headers["Cache-Control"] = "no-store"
    store = get_auth(request).store
    # Audited first, so the export lists its own entry.
    await record_action(store, "account_exported", user_id=user.user_id, target=user.user_id)
    document: dict[str, Any] = await anyio.to_thread.run_sync(
        accounts.export_everywhere, store, _content_path(request), user.user_id
    )
    return document


@router.delete(
    "/api/me",
    summary="Delete the caller's account (password or a fresh sign-in); their writing shows 'deleted user'.",
    responses=error_responses(*_AUTH_ERRORS, "invalid_credentials", "invalid_message", "forbidden"),
)
async def delete_me(body: DeleteAccountRequest, user: CurrentUser, request: Request) -> AccountDeletion:
    _person(user, "delete an account")
    auth = get_auth(request)
    if body.password is not None:
        await auth.check_password(user.name, body.password)
    elif user.token_issued_at is None or time.time() - user.token_issued_at > FRESH_SIGN_IN_SECONDS:
        raise BridgeError(
            "invalid_credentials",
            f"send the password, or sign in again (within {FRESH_SIGN_IN_SECONDS} s) first",
        )
    deletion = await anyio.to_thread.run_sync(
        accounts.delete_everywhere, auth.store, _content_path(request), user.user_id
    )
    bridge = request.app.state.bridge
    bridge.cut_connections(revocations.ACCOUNT_DELETED, user_id=user.user_id)
    for outcome in deletion.campaigns:
        await bridge.on_membership_changed(outcome.campaign_id, user.user_id, None)
        if outcome.new_gm is not None:
            await bridge.on_membership_changed(outcome.campaign_id, outcome.new_gm, "gm")
    log.info("account_deleted", campaigns=len(deletion.campaigns))
    return AccountDeletion.model_validate(deletion.to_dict())


@router.get(
    "/api/admin/audit",
    summary="Account events (sign-ins, keys, exports, deletions), newest first (administrator only).",
    responses=error_responses(*_AUTH_ERRORS, "forbidden"),
)
async def read_account_audit(
    user: CurrentUser,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, description="Only entries older than this id.")] = None,
) -> AuditPage:
    _person(user, "read the audit log")

    def page(db: Session) -> AuditPage:
        claims.require_admin(db, user.user_id)
        return AuditPage(entries=audit.account_entries(db, limit=limit, before=before))

    return await get_auth(request).store.run(page, readonly=True)
