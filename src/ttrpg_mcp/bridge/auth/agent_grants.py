"""Agents authorized by OAuth: registered clients, consents (grants), codes and tokens in the store.

An MCP client (Claude, another agent) gets at a campaign the way OAuth 2.1 has it: it registers
(RFC 7591), sends its person to the consent page with a PKCE challenge, and trades the code it
gets back for an access and a refresh token. Each approval is an :class:`AgentGrant`: one user,
one campaign, one role (never above the user's own there), one client. Everything issued
descends from a grant, and a grant revoked (by its user, by the campaign's GM, by RFC 7009
revocation, or by reuse detection) ends every code and token of it at once, since each is
checked against its grant whenever it is presented.

Secrets are random and kept only as their SHA-256 (:mod:`.digests`): codes, access and refresh
tokens, client secrets and pending request ids. They carry a readable mark (``ttoa_`` for access
tokens, ``ttor_`` for refresh tokens, ``ttoc_`` for codes) so a presented credential is routed
to the right check without a store read.

Refresh tokens and codes work once. A spent one presented again means someone else holds a
copy, so the grant is revoked (OAuth 2.0 Security BCP 4.14 for refresh tokens, RFC 6749 4.1.2
for codes), committed before the refusal so the caller's rollback cannot undo it.

Every function takes the unit of work first and does no I/O of its own.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mcp.server.auth.provider import construct_redirect_uri
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from ttrpg_mcp.bridge import campaigns, revocations
from ttrpg_mcp.bridge.auth.api_keys import KeyScope
from ttrpg_mcp.bridge.auth.digests import secret_digest
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.permissions import ROLES, Role
from ttrpg_mcp.bridge.store.database import affected_rows
from ttrpg_mcp.bridge.store.models import (
    AgentGrant,
    Campaign,
    OAuthClient,
    OAuthCode,
    OAuthPendingRequest,
    OAuthToken,
    User,
    utcnow,
)

__all__ = [
    "ACCESS_MARK",
    "CODE_TTL",
    "GRANT_MARK",
    "PENDING_TTL",
    "REFRESH_MARK",
    "AgentIdentity",
    "CodeRecord",
    "GrantView",
    "IssuedTokens",
    "PendingView",
    "TokenRecord",
    "approve",
    "check_access_token",
    "client_info",
    "deny",
    "grants_of_campaign",
    "grants_of_user",
    "is_access_token",
    "is_grant_id",
    "issue_tokens",
    "load_access",
    "load_code",
    "load_refresh",
    "pending_view",
    "purge_expired",
    "purge_unused_clients",
    "register_client",
    "revoke_grant",
    "revoke_token",
    "spend_code",
    "spend_refresh",
    "start_request",
]

ACCESS_MARK = "ttoa_"
# The ids of grants; they stand as the key_id of an agent's KeyScope.
GRANT_MARK = "grt_"
REFRESH_MARK = "ttor_"
_CODE_MARK = "ttoc_"
_REQUEST_MARK = "ttoq_"
# A code is traded within seconds of the redirect; five minutes covers slow clients.
CODE_TTL = timedelta(minutes=5)
# Long enough to sign in (or create an account) on the consent page, short enough to go stale.
PENDING_TTL = timedelta(minutes=15)
_RANK: dict[str, int] = {"spectator": 0, "player": 1, "gm": 2}


def _secret(mark: str) -> str:
    # 256 bits: well above the 160 RFC 6749 10.10 asks of codes.
    return mark + secrets.token_urlsafe(32)


def is_access_token(token: str) -> bool:
    """Whether a presented bearer credential is one of these access tokens."""
    return token.startswith(ACCESS_MARK)


def is_grant_id(key_id: str) -> bool:
    """Whether a scope's ``key_id`` names a grant (an OAuth agent) rather than an API key."""
    return key_id.startswith(GRANT_MARK)


# -- clients ---------------------------------------------------------------------------------------


def register_client(db: Session, metadata: dict[str, Any]) -> None:
    """Store a registered client: its metadata, and its secret only as a digest."""
    kept = dict(metadata)
    secret = kept.pop("client_secret", None)
    db.add(
        OAuthClient(
            client_id=kept["client_id"],
            client_name=kept.get("client_name"),
            secret_hash=None if secret is None else secret_digest(secret),
            metadata_json=kept,
            created_at=utcnow(),
        )
    )


def purge_unused_clients(db: Session, unused_for: timedelta) -> int:
    """Delete clients with no live grant and no sign of use for ``unused_for``; how many went.

    Dynamic registration is open to anyone, and a client that never gets a consent (or whose
    consents were all revoked or went with their accounts) would otherwise stay forever. A
    client's last use is its registration or its latest revocation; a live grant or an
    authorization still waiting on the consent page keeps it. Its revoked grants, and their
    spent codes and tokens, go with it (foreign keys cascade).
    """
    now = utcnow()
    cutoff = now - unused_for
    recently_used = select(AgentGrant.id).where(
        AgentGrant.client_id == OAuthClient.client_id,
        or_(AgentGrant.revoked_at.is_(None), AgentGrant.revoked_at >= cutoff),
    )
    waiting = select(OAuthPendingRequest.id_hash).where(
        OAuthPendingRequest.client_id == OAuthClient.client_id, OAuthPendingRequest.expires_at > now
    )
    unused = select(OAuthClient.client_id).where(
        OAuthClient.created_at < cutoff, ~recently_used.exists(), ~waiting.exists()
    )
    result = db.execute(
        delete(OAuthClient)
        .where(OAuthClient.client_id.in_(unused))
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result)


def client_info(db: Session, client_id: str) -> tuple[dict[str, Any], str | None] | None:
    """A client's registered metadata and its secret's digest, or ``None`` for an unknown id."""
    row = db.get(OAuthClient, client_id)
    return None if row is None else (dict(row.metadata_json), row.secret_hash)


# -- consent ---------------------------------------------------------------------------------------


def start_request(
    db: Session,
    *,
    client_id: str,
    redirect_uri: str,
    redirect_uri_explicit: bool,
    code_challenge: str,
    state: str | None,
    scopes: list[str],
    resource: str | None,
) -> str:
    """Keep an authorization request until its person decides; returns the id the consent page gets."""
    now = utcnow()
    db.execute(
        delete(OAuthPendingRequest)
        .where(OAuthPendingRequest.expires_at <= now)
        .execution_options(synchronize_session=False)
    )
    request_id = _secret(_REQUEST_MARK)
    db.add(
        OAuthPendingRequest(
            id_hash=secret_digest(request_id),
            client_id=client_id,
            redirect_uri=redirect_uri,
            redirect_uri_explicit=redirect_uri_explicit,
            code_challenge=code_challenge,
            state=state,
            scopes=scopes,
            resource=resource,
            expires_at=now + PENDING_TTL,
        )
    )
    return request_id


def _pending(db: Session, request_id: str) -> tuple[OAuthPendingRequest, OAuthClient]:
    row = db.get(OAuthPendingRequest, secret_digest(request_id))
    if row is None or row.expires_at <= utcnow():
        raise BridgeError(
            "not_found", "no such authorization request; it may have expired, start again from the app"
        )
    client = db.get(OAuthClient, row.client_id)
    if client is None:
        raise BridgeError("not_found", "the client of this authorization request is gone")
    return row, client


@dataclass(frozen=True, slots=True)
class PendingView:
    """What the consent page shows: who asks, where the answer goes, what it may choose from."""

    client_id: str
    client_name: str
    client_uri: str | None
    redirect_uri: str
    scopes: list[str]
    expires_at: datetime
    campaigns: list[campaigns.CampaignSummary]


def pending_view(db: Session, request_id: str, user_id: str) -> PendingView:
    """A pending request as its person sees it, with the campaigns they could grant."""
    row, client = _pending(db, request_id)
    uri = client.metadata_json.get("client_uri")
    return PendingView(
        client_id=client.client_id,
        client_name=client.client_name or "An unnamed MCP client",
        client_uri=uri if isinstance(uri, str) else None,
        redirect_uri=row.redirect_uri,
        scopes=list(row.scopes),
        expires_at=row.expires_at,
        campaigns=[c for c in campaigns.list_campaigns_for(db, user_id) if not c.archived],
    )


def _answer(redirect_uri: str, **params: str | None) -> str:
    # The SDK's own helper, so the redirect is built exactly as its handlers build theirs.
    return construct_redirect_uri(redirect_uri, **params)


def approve(db: Session, request_id: str, user_id: str, campaign_id: str, role: str) -> str:
    """Grant the request for ``user_id`` in ``campaign_id`` with ``role``; returns where to send the browser.

    ``forbidden`` when the user is not a member there or ``role`` is above their own.
    """
    if role not in ROLES:
        raise BridgeError("invalid_message", f"no role {role!r}", {"field": "role"})
    row, client = _pending(db, request_id)
    own = campaigns.require_role(db, campaign_id, user_id)
    if _RANK[role] > _RANK[own]:
        raise BridgeError(
            "forbidden",
            f"an agent's role may not exceed yours ({own})",
            {"role": role, "your_role": own},
        )
    now = utcnow()
    grant = AgentGrant(
        id=f"{GRANT_MARK}{secrets.token_urlsafe(12)}",
        client_id=client.client_id,
        user_id=user_id,
        campaign_id=campaign_id,
        role=role,
        scopes=list(row.scopes),
        resource=row.resource,
        created_at=now,
    )
    db.add(grant)
    db.flush()
    code = _secret(_CODE_MARK)
    db.add(
        OAuthCode(
            code_hash=secret_digest(code),
            grant_id=grant.id,
            redirect_uri=row.redirect_uri,
            redirect_uri_explicit=row.redirect_uri_explicit,
            code_challenge=row.code_challenge,
            expires_at=now + CODE_TTL,
        )
    )
    db.delete(row)
    return _answer(row.redirect_uri, code=code, state=row.state)


def deny(db: Session, request_id: str) -> str:
    """Refuse the request; returns where to send the browser (``error=access_denied``)."""
    row, _client = _pending(db, request_id)
    db.delete(row)
    return _answer(
        row.redirect_uri, error="access_denied", error_description="the user denied access", state=row.state
    )


# -- codes and tokens ------------------------------------------------------------------------------


def _revoke(
    db: Session, grant_id: str, by: str | None = None, reason: str = revocations.AGENT_REVOKED
) -> None:
    """End a grant; the ledger row closes its sessions on every node (a grant id is a key subject)."""
    revoked = db.execute(
        update(AgentGrant)
        .where(AgentGrant.id == grant_id, AgentGrant.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_by=by)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(revoked):
        revocations.record(db, revocations.key_subject(grant_id), reason)


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """A live code of ``client_id``, for the token endpoint's checks (expiry, redirect, PKCE)."""

    grant_id: str
    scopes: list[str]
    expires_at: datetime
    code_challenge: str
    redirect_uri: str
    redirect_uri_explicit: bool
    resource: str | None
    user_id: str


def load_code(db: Session, client_id: str, code: str) -> CodeRecord | None:
    """The code's record when it is unspent and its grant live; ``None`` otherwise.

    A spent code presented again revokes its grant (committed here), since whoever presents it
    copied it.
    """
    row = db.get(OAuthCode, secret_digest(code))
    if row is None:
        return None
    grant = db.get(AgentGrant, row.grant_id)
    if grant is None or grant.client_id != client_id or grant.revoked_at is not None:
        return None
    if row.used_at is not None:
        _revoke(db, grant.id)
        db.commit()
        return None
    return CodeRecord(
        grant_id=grant.id,
        scopes=list(grant.scopes),
        expires_at=row.expires_at,
        code_challenge=row.code_challenge,
        redirect_uri=row.redirect_uri,
        redirect_uri_explicit=row.redirect_uri_explicit,
        resource=grant.resource,
        user_id=grant.user_id,
    )


def _spend(db: Session, model: type[OAuthCode] | type[OAuthToken], digest: str, grant_id: str) -> None:
    key = OAuthCode.code_hash if model is OAuthCode else OAuthToken.token_hash
    # One conditional UPDATE: of two requests racing with one code or token, one wins and the
    # other is the reuse it looks like.
    spent = db.execute(
        update(model)
        .where(key == digest, model.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if affected_rows(spent) != 1:
        _revoke(db, grant_id)
        db.commit()
        raise BridgeError(
            "invalid_token", "already used; the authorization has been revoked", {"reason": "reuse"}
        )


def spend_code(db: Session, code: str, grant_id: str) -> None:
    """Mark a code used; raises (and revokes its grant) when it already was."""
    _spend(db, OAuthCode, secret_digest(code), grant_id)


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """A new access and refresh token of a grant (shown to the client once, never stored)."""

    access_token: str
    refresh_token: str
    expires_in: int
    scopes: list[str]


def issue_tokens(db: Session, grant_id: str, access_ttl: int, refresh_ttl: int) -> IssuedTokens:
    """A new token pair for a live grant; ``invalid_token`` when it was revoked meanwhile."""
    grant = db.get(AgentGrant, grant_id)
    if grant is None or grant.revoked_at is not None:
        raise BridgeError("invalid_token", "the authorization has been revoked")
    now = utcnow()
    access, refresh = _secret(ACCESS_MARK), _secret(REFRESH_MARK)
    for secret, kind, ttl in ((access, "access", access_ttl), (refresh, "refresh", refresh_ttl)):
        db.add(
            OAuthToken(
                token_hash=secret_digest(secret),
                grant_id=grant_id,
                kind=kind,
                issued_at=now,
                expires_at=now + timedelta(seconds=ttl),
            )
        )
    return IssuedTokens(access, refresh, access_ttl, list(grant.scopes))


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A live token of a grant, as the SDK's token and revocation handlers need it."""

    grant_id: str
    client_id: str
    user_id: str
    scopes: list[str]
    expires_at: datetime
    resource: str | None


def _token(db: Session, token: str, kind: str) -> tuple[OAuthToken, AgentGrant] | None:
    row = db.get(OAuthToken, secret_digest(token))
    if row is None or row.kind != kind:
        return None
    grant = db.get(AgentGrant, row.grant_id)
    if grant is None or grant.revoked_at is not None:
        return None
    return row, grant


def _record(row: OAuthToken, grant: AgentGrant) -> TokenRecord:
    return TokenRecord(
        grant.id, grant.client_id, grant.user_id, list(grant.scopes), row.expires_at, grant.resource
    )


def load_refresh(db: Session, client_id: str, token: str) -> TokenRecord | None:
    """A live, unspent refresh token of ``client_id``; a spent one presented again revokes its grant."""
    found = _token(db, token, "refresh")
    if found is None or found[1].client_id != client_id:
        return None
    row, grant = found
    if row.used_at is not None:
        _revoke(db, grant.id)
        db.commit()
        return None
    return _record(row, grant)


def spend_refresh(db: Session, token: str, grant_id: str) -> None:
    """Mark a refresh token used; raises (and revokes its grant) when it already was."""
    _spend(db, OAuthToken, secret_digest(token), grant_id)


def load_access(db: Session, token: str) -> TokenRecord | None:
    """A live, unexpired access token's record, or ``None``."""
    found = _token(db, token, "access")
    if found is None or found[0].expires_at <= utcnow():
        return None
    return _record(*found)


def revoke_token(db: Session, token: str) -> None:
    """RFC 7009: revoking either token of a grant revokes the grant, so both stop working."""
    row = db.get(OAuthToken, secret_digest(token))
    if row is not None:
        _revoke(db, row.grant_id)


def purge_expired(db: Session) -> int:
    """Delete codes, tokens and pending requests past their expiry (they are refused anyway)."""
    now = utcnow()
    purged = 0
    for model in (OAuthCode, OAuthToken, OAuthPendingRequest):
        result = db.execute(
            delete(model).where(model.expires_at <= now).execution_options(synchronize_session=False)
        )
        purged += affected_rows(result)
    return purged


# -- the bearer check ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """Who an access token acts for, where, and as what: its user, narrowed by its grant."""

    user: User
    scope: KeyScope
    client_name: str
    expires_at: datetime


def check_access_token(db: Session, token: str) -> AgentIdentity:
    """The identity of a presented access token; ``invalid_token``/``token_expired`` otherwise.

    The grant's scope travels as a :class:`KeyScope` whose ``key_id`` is the grant's id, so the
    bridge narrows an agent exactly as it narrows an API key limited to one campaign and a role
    (and closes its connections by that id when the grant is revoked).
    """
    row = db.get(OAuthToken, secret_digest(token))
    if row is None or row.kind != "access":
        raise BridgeError("invalid_token", "unknown access token")
    grant = db.get(AgentGrant, row.grant_id)
    if grant is None or grant.revoked_at is not None:
        raise BridgeError("invalid_token", "this agent's authorization has been revoked")
    if row.expires_at <= utcnow():
        raise BridgeError("token_expired", "the access token has expired; refresh it")
    user = db.get(User, grant.user_id)
    if user is None or user.disabled:
        raise BridgeError("invalid_token", "the token's account is disabled or gone")
    client = db.get(OAuthClient, grant.client_id)
    role: Role = grant.role  # type: ignore[assignment]  # the CHECK constraint keeps it a Role
    return AgentIdentity(
        user=user,
        scope=KeyScope(grant.id, grant.campaign_id, role),
        client_name=(client.client_name if client and client.client_name else "MCP client"),
        expires_at=row.expires_at,
    )


# -- listing and revoking --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrantView:
    """An authorized agent as its person or the campaign's GM sees it."""

    id: str
    client_id: str
    client_name: str
    user_id: str
    user_name: str
    campaign_id: str
    campaign_name: str
    role: str
    created_at: datetime


def _views(db: Session, *conditions: Any) -> list[GrantView]:
    query = (
        select(AgentGrant, OAuthClient.client_name, User.display_name, Campaign.name)
        .join(OAuthClient, OAuthClient.client_id == AgentGrant.client_id)
        .join(User, User.id == AgentGrant.user_id)
        .join(Campaign, Campaign.id == AgentGrant.campaign_id)
        .where(AgentGrant.revoked_at.is_(None), *conditions)
        .order_by(AgentGrant.created_at.desc(), AgentGrant.id)
    )
    return [
        GrantView(
            id=grant.id,
            client_id=grant.client_id,
            client_name=client_name or "MCP client",
            user_id=grant.user_id,
            user_name=user_name,
            campaign_id=grant.campaign_id,
            campaign_name=campaign_name,
            role=grant.role,
            created_at=grant.created_at,
        )
        for grant, client_name, user_name, campaign_name in db.execute(query)
    ]


def grants_of_user(db: Session, user_id: str) -> list[GrantView]:
    """The agents a user has authorized and not revoked, newest first."""
    return _views(db, AgentGrant.user_id == user_id)


def grants_of_campaign(db: Session, campaign_id: str) -> list[GrantView]:
    """The agents authorized in a campaign, by anyone, newest first."""
    return _views(db, AgentGrant.campaign_id == campaign_id)


def revoke_grant(
    db: Session,
    grant_id: str,
    *,
    by: str,
    user_id: str | None = None,
    campaign_id: str | None = None,
    reason: str = revocations.AGENT_REVOKED,
) -> None:
    """Revoke a live grant of ``user_id`` or in ``campaign_id``; ``not_found`` for any other."""
    grant = db.get(AgentGrant, grant_id)
    if (
        grant is None
        or grant.revoked_at is not None
        or (user_id is not None and grant.user_id != user_id)
        or (campaign_id is not None and grant.campaign_id != campaign_id)
    ):
        raise BridgeError("not_found", "no such authorized agent", {"agent_id": grant_id})
    _revoke(db, grant_id, by, reason)
